using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Channel;
using Midge.Security;

namespace Midge.Transport;

/// <summary>
/// The certificates, CAs and CRLs of every TLS listener, read at start-up and again on SIGHUP. Each handshake
/// takes the listener's current <see cref="TlsContext"/>, so a reload changes what new connections get while
/// connections already open keep theirs.
/// </summary>
public sealed class TlsCertificateStore
{
    private readonly Dictionary<(int Port, string? Bind), TlsListener> _listeners = [];

    /// <summary>Reads the files of every TLS listener. Throws <see cref="ConfigException"/> naming the option's
    /// file:line when a file cannot be read or used.</summary>
    public TlsCertificateStore(BrokerConfig config)
    {
        foreach (var l in config.Listeners)
        {
            if (l.Tls is { } tls) _listeners[(l.Port, l.BindAddress)] = new TlsListener(TlsContext.Load(tls));
        }
    }

    /// <summary>The listener's TLS state, or null for a plain listener.</summary>
    internal TlsListener? For(ListenerConfig listener) =>
        _listeners.TryGetValue((listener.Port, listener.BindAddress), out var l) ? l : null;

    /// <summary>
    /// Reads the files of a re-read configuration. Nothing changes until <see cref="Apply"/> is called on the
    /// result, so a bad file leaves every listener as it was. Listeners are not re-bound: TLS settings apply to
    /// listeners that were TLS listeners at start-up.
    /// </summary>
    public Action Prepare(BrokerConfig config)
    {
        var pending = new List<(TlsListener, TlsContext)>();
        foreach (var l in config.Listeners)
        {
            if (l.Tls is { } tls && _listeners.TryGetValue((l.Port, l.BindAddress), out var listener))
            {
                pending.Add((listener, TlsContext.Load(tls)));
            }
        }
        return () =>
        {
            foreach (var (listener, context) in pending) listener.Current = context;
        };
    }

    /// <summary>Re-reads and applies at once (<see cref="Prepare"/> then apply).</summary>
    public void Reload(BrokerConfig config) => Prepare(config)();
}

/// <summary>One TLS listener: its current context, swapped whole on reload.</summary>
internal sealed class TlsListener(TlsContext context)
{
    private TlsContext _current = context;

    public TlsContext Current
    {
        get => Volatile.Read(ref _current);
        set => Volatile.Write(ref _current, value);
    }

    /// <summary>Kestrel's per-connection TLS options: built from the context current at handshake time.</summary>
    public TlsHandshakeCallbackOptions HandshakeOptions(ILogger logger) => new()
    {
        OnConnection = callback =>
        {
            var context = Current;
            string remote = RemoteAddress.Format((object?)callback.Connection.RemoteEndPoint ?? callback.Connection.ConnectionId);
            var options = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = context.ServerCertificate,
                EnabledSslProtocols = context.Config.Protocols,
                ClientCertificateRequired = context.Config.AsksForClientCertificate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                    context.ValidateClient(certificate, chain, remote, logger),
            };
            if (context.CipherSuites is { } policy) options.CipherSuitesPolicy = policy;
            return ValueTask.FromResult(options);
        },
        HandshakeTimeout = TimeSpan.FromSeconds(10),
    };
}

/// <summary>What one TLS listener's files held when they were read.</summary>
internal sealed class TlsContext
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private TlsContext(TlsConfig config, SslStreamCertificateContext server, X509Certificate2Collection trust,
        RevocationLists? crls, CipherSuitesPolicy? ciphers)
    {
        Config = config;
        ServerCertificate = server;
        Trust = trust;
        Crls = crls;
        CipherSuites = ciphers;
    }

    public TlsConfig Config { get; }

    public SslStreamCertificateContext ServerCertificate { get; }

    /// <summary>CA certificates from cafile and capath.</summary>
    public X509Certificate2Collection Trust { get; }

    public RevocationLists? Crls { get; }

    public CipherSuitesPolicy? CipherSuites { get; }

    /// <summary>Reads the listener's files; throws <see cref="ConfigException"/> at the option's file:line.</summary>
    public static TlsContext Load(TlsConfig config)
    {
        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPemFile(config.CertFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new ConfigException(config.CertFileSource, $"cannot read certfile '{config.CertFile}': {e.Message}");
        }
        if (chain.Count == 0)
        {
            throw new ConfigException(config.CertFileSource, $"certfile '{config.CertFile}' holds no PEM certificate");
        }
        string keyText;
        try
        {
            keyText = File.ReadAllText(config.KeyFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(config.KeyFileSource, $"cannot read keyfile '{config.KeyFile}': {e.Message}");
        }
        if (keyText.Contains("ENCRYPTED", StringComparison.Ordinal))
        {
            throw new ConfigException(config.KeyFileSource, $"keyfile '{config.KeyFile}' is encrypted; Midge needs an unencrypted key");
        }
        X509Certificate2 server;
        try
        {
            using var leaf = chain[0];
            server = X509Certificate2.CreateFromPem(leaf.ExportCertificatePem(), keyText);
        }
        catch (CryptographicException e)
        {
            throw new ConfigException(config.KeyFileSource,
                $"keyfile '{config.KeyFile}' does not hold a usable private key for certfile '{config.CertFile}': {e.Message}");
        }
        var intermediates = new X509Certificate2Collection();
        for (int i = 1; i < chain.Count; i++) intermediates.Add(chain[i]);

        var trust = new X509Certificate2Collection();
        if (config.CaFile is { } caFile)
        {
            try
            {
                trust.ImportFromPemFile(caFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new ConfigException(config.CaFileSource, $"cannot read cafile '{caFile}': {e.Message}");
            }
            if (trust.Count == 0) throw new ConfigException(config.CaFileSource, $"cafile '{caFile}' holds no PEM certificate");
        }
        if (config.CaPath is { } caPath)
        {
            if (!Directory.Exists(caPath)) throw new ConfigException(config.CaPathSource, $"capath '{caPath}' is not a directory");
            foreach (var file in Directory.GetFiles(caPath).Order(StringComparer.Ordinal))
            {
                try
                {
                    trust.ImportFromPemFile(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
                {
                    // As OpenSSL's hashed directory lookup, files that are not certificates are passed over.
                }
            }
        }
        RevocationLists? crls = null;
        if (config.CrlFile is { } crlFile)
        {
            try
            {
                crls = RevocationLists.Load(crlFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                throw new ConfigException(config.CrlFileSource, $"cannot read crlfile '{crlFile}': {e.Message}");
            }
        }
        CipherSuitesPolicy? ciphers = null;
        if (config.CipherSuites is { } suites)
        {
            try
            {
                ciphers = new CipherSuitesPolicy(suites);
            }
            catch (PlatformNotSupportedException e)
            {
                throw new ConfigException(config.CertFileSource, $"'ciphers' cannot be applied on this platform: {e.Message}");
            }
        }
        var context = SslStreamCertificateContext.Create(server, intermediates, offline: true);
        return new TlsContext(config, context, trust, crls, ciphers);
    }

    /// <summary>Checks a client certificate against cafile/capath (and crlfile): chain to a configured CA, within
    /// its validity, allowed for client authentication, not revoked. No certificate is accepted unless
    /// require_certificate is set.</summary>
    public bool ValidateClient(System.Security.Cryptography.X509Certificates.X509Certificate? certificate, X509Chain? received,
        string remote, ILogger logger)
    {
        if (certificate is null)
        {
            if (!Config.RequireCertificate) return true;
            TlsLog.ClientRefused(logger, remote, "no client certificate");
            return false;
        }
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(Trust);
        policy.ExtraStore.AddRange(Trust);
        if (received is not null) policy.ExtraStore.AddRange(received.ChainPolicy.ExtraStore);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.ApplicationPolicy.Add(ClientAuthentication);
        if (!chain.Build(leaf))
        {
            var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct());
            TlsLog.ClientRefused(logger, remote, $"certificate '{leaf.Subject}' not accepted: {why}");
            return false;
        }
        if (Crls is { } crls)
        {
            var issuer = chain.ChainElements.Count > 1 ? chain.ChainElements[1].Certificate : leaf;
            var status = crls.Check(leaf, issuer, DateTimeOffset.UtcNow);
            if (status != RevocationStatus.Good)
            {
                TlsLog.ClientRefused(logger, remote, status switch
                {
                    RevocationStatus.Revoked => $"certificate '{leaf.Subject}' is revoked",
                    RevocationStatus.NoCrl => $"no CRL from '{leaf.Issuer}' in crlfile",
                    _ => $"the CRL of '{leaf.Issuer}' is expired or not yet valid",
                });
                return false;
            }
        }
        return true;
    }
}

internal static partial class TlsLog
{
    [LoggerMessage(150, LogLevel.Information, "TLS client {Remote} refused: {Reason}.")]
    public static partial void ClientRefused(ILogger logger, string remote, string reason);
}
