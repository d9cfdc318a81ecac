using System.Net.Security;
using System.Security.Authentication;

namespace Midge.Config;

// TLS listener options (Mosquitto's certificate-based TLS). Kept apart from the rest of the grammar.
public static partial class ConfigParser
{
    /// <summary>One TLS option as read: its value and the line it came from.</summary>
    private readonly record struct TlsValue<T>(T Value, ConfigSource Source);

    private sealed partial class ListenerBuilder
    {
        public TlsValue<string>? CertFile, KeyFile, CaFile, CaPath, CrlFile, Ciphers, Ciphers13;
        public TlsValue<bool>? RequireCertificate, UseIdentityAsUsername, UseSubjectAsUsername;
        public TlsValue<SslProtocols>? TlsVersion;
        public List<TlsCipherSuite>? CipherList, Cipher13List;

        /// <summary>Any TLS option was given (Mosquitto opens the default listener for these too).</summary>
        public bool TlsUsed => CertFile is not null || KeyFile is not null || CaFile is not null || CaPath is not null
            || CrlFile is not null || Ciphers is not null || Ciphers13 is not null || RequireCertificate is not null
            || UseIdentityAsUsername is not null || UseSubjectAsUsername is not null || TlsVersion is not null;

        /// <summary>The first TLS option given, for errors about the listener as a whole.</summary>
        public ConfigSource? FirstTlsSource => new[]
        {
            CertFile?.Source, KeyFile?.Source, CaFile?.Source, CaPath?.Source, CrlFile?.Source, Ciphers?.Source,
            Ciphers13?.Source, RequireCertificate?.Source, UseIdentityAsUsername?.Source, UseSubjectAsUsername?.Source,
            TlsVersion?.Source,
        }.Where(s => s is not null).OrderBy(s => s!.Value.File == Source.File ? 0 : 1).ThenBy(s => s!.Value.Line).FirstOrDefault();
    }

    /// <summary>Options .NET's TLS stack cannot honour, with the reason; they fail rather than being ignored.</summary>
    public static IReadOnlyDictionary<string, string> UnsupportedTlsOptions { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["psk_hint"] = ".NET's TLS stack has no TLS-PSK",
        ["psk_file"] = ".NET's TLS stack has no TLS-PSK",
        ["tls_engine"] = ".NET's TLS stack cannot load OpenSSL engines",
        ["tls_engine_kpass_sha1"] = ".NET's TLS stack cannot load OpenSSL engines",
        ["dhparamfile"] = ".NET's TLS stack takes no Diffie-Hellman parameters (it uses its own groups)",
    };

    private sealed partial class ParseState
    {
        /// <summary>Handles a TLS option; false when <paramref name="line"/> is not one.</summary>
        private bool ApplyTls(in Line line)
        {
            if (UnsupportedTlsOptions.TryGetValue(line.Name, out var why))
            {
                Fail(line.Source, $"option '{line.Name}' is not supported: {why}");
            }
            switch (line.Name)
            {
                case "certfile": { var l = ListenerFor(line); l.CertFile = TlsPath(l.CertFile, line); return true; }
                case "keyfile": { var l = ListenerFor(line); l.KeyFile = TlsPath(l.KeyFile, line); return true; }
                case "cafile": { var l = ListenerFor(line); l.CaFile = TlsPath(l.CaFile, line); return true; }
                case "capath": { var l = ListenerFor(line); l.CaPath = TlsPath(l.CaPath, line); return true; }
                case "crlfile": { var l = ListenerFor(line); l.CrlFile = TlsPath(l.CrlFile, line); return true; }
                case "require_certificate":
                    ListenerFor(line).RequireCertificate = new(line.Bool(), line.Source);
                    return true;
                case "use_identity_as_username":
                    ListenerFor(line).UseIdentityAsUsername = new(line.Bool(), line.Source);
                    return true;
                case "use_subject_as_username":
                    ListenerFor(line).UseSubjectAsUsername = new(line.Bool(), line.Source);
                    return true;
                case "tls_version":
                {
                    var v = line.Token();
                    var protocols = v switch
                    {
                        "tlsv1.3" => SslProtocols.Tls13,
                        "tlsv1.2" => SslProtocols.Tls12 | SslProtocols.Tls13,
                        // Mosquitto's tlsv1.1 is a minimum too; .NET no longer offers TLS 1.1.
                        "tlsv1.1" => SslProtocols.Tls12 | SslProtocols.Tls13,
                        _ => Fail<SslProtocols>(line.Source, $"'tls_version' must be tlsv1.3, tlsv1.2 or tlsv1.1, got '{v}'"),
                    };
                    if (v == "tlsv1.1")
                    {
                        Notice(line, "'tls_version tlsv1.1': TLS 1.1 is not offered by .NET; TLS 1.2 and 1.3 are");
                    }
                    ListenerFor(line).TlsVersion = new(protocols, line.Source);
                    return true;
                }
                case "ciphers":
                case "ciphers_tls1.3":
                {
                    bool tls13 = line.Name == "ciphers_tls1.3";
                    var text = line.Text();
                    if (!TlsCiphers.TryMap(text, tls13, out var suites, out var unmapped))
                    {
                        Fail(line.Source, $"'{line.Name}': cannot map '{unmapped}' to a .NET cipher suite; list " +
                            (tls13 ? "TLS 1.3 suite names such as TLS_AES_128_GCM_SHA256"
                                   : "OpenSSL suite names such as ECDHE-RSA-AES128-GCM-SHA256 (keywords like HIGH or DEFAULT cannot be mapped)"));
                    }
                    if (suites.Count == 0)
                    {
                        Fail(line.Source, $"'{line.Name}' names no cipher suite");
                    }
                    var l = ListenerFor(line);
                    if (tls13)
                    {
                        l.Ciphers13 = new(text, line.Source);
                        l.Cipher13List = suites;
                    }
                    else
                    {
                        l.Ciphers = new(text, line.Source);
                        l.CipherList = suites;
                    }
                    return true;
                }
                case "tls_keyform":
                {
                    var v = line.Token();
                    if (v == "engine")
                    {
                        Fail(line.Source, "option 'tls_keyform engine' is not supported: .NET's TLS stack cannot load OpenSSL engines");
                    }
                    if (v != "pem")
                    {
                        Fail(line.Source, $"'tls_keyform' must be pem or engine, got '{v}'");
                    }
                    ListenerFor(line);
                    return true;
                }
                default:
                    return false;
            }
        }

        private TlsValue<string> TlsPath(TlsValue<string>? earlier, in Line line)
        {
            if (earlier is { } e)
            {
                Fail(line.Source, $"duplicate '{line.Name}' (already set at {e.Source})");
            }
            return new(line.Text(), line.Source);
        }

        /// <summary>The listener's <see cref="TlsConfig"/>, or null for plain TCP; fails on options that do not
        /// fit together, naming the line.</summary>
        private static TlsConfig? BuildTls(ListenerBuilder l)
        {
            if (!l.TlsUsed) return null;
            if (l.CertFile is null)
            {
                if (l.KeyFile is { } key) Fail(key.Source, "'keyfile' needs 'certfile' on the same listener");
                var first = l.FirstTlsSource ?? l.Source;
                Fail(first, $"TLS options on listener {l.Port} need 'certfile' and 'keyfile'");
            }
            var cert = l.CertFile.Value;
            if (l.KeyFile is not { } keyFile)
            {
                Fail(cert.Source, "'certfile' needs 'keyfile' on the same listener");
                return null;
            }
            bool hasCa = l.CaFile is not null || l.CaPath is not null;
            bool require = l.RequireCertificate?.Value == true;
            bool identity = l.UseIdentityAsUsername?.Value == true;
            bool subject = l.UseSubjectAsUsername?.Value == true;
            if (require && !hasCa)
            {
                Fail(l.RequireCertificate!.Value.Source, "'require_certificate true' needs 'cafile' or 'capath' to check client certificates against");
            }
            if ((identity || subject) && !hasCa)
            {
                var s = identity ? l.UseIdentityAsUsername!.Value : l.UseSubjectAsUsername!.Value;
                Fail(s.Source, $"'{(identity ? "use_identity_as_username" : "use_subject_as_username")} true' needs 'cafile' or 'capath' to check client certificates against");
            }
            if (l.CrlFile is { } crl && !hasCa)
            {
                Fail(crl.Source, "'crlfile' needs 'cafile' or 'capath'");
            }
            IReadOnlyList<TlsCipherSuite>? suites = null;
            if (l.CipherList is not null || l.Cipher13List is not null)
            {
                suites = [.. l.CipherList ?? TlsCiphers.DefaultTls12, .. l.Cipher13List ?? TlsCiphers.DefaultTls13];
            }
            return new TlsConfig
            {
                CertFile = cert.Value,
                CertFileSource = cert.Source,
                KeyFile = keyFile.Value,
                KeyFileSource = keyFile.Source,
                CaFile = l.CaFile?.Value,
                CaFileSource = l.CaFile?.Source ?? default,
                CaPath = l.CaPath?.Value,
                CaPathSource = l.CaPath?.Source ?? default,
                CrlFile = l.CrlFile?.Value,
                CrlFileSource = l.CrlFile?.Source ?? default,
                RequireCertificate = require,
                UseIdentityAsUsername = identity,
                // Mosquitto looks at use_identity_as_username first; the subject is used only without it.
                UseSubjectAsUsername = subject && !identity,
                Protocols = l.TlsVersion?.Value ?? (SslProtocols.Tls12 | SslProtocols.Tls13),
                CipherSuites = suites,
            };
        }
    }
}
