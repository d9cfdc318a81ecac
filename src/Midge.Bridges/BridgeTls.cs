using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Midge.Client;
using Midge.Config;

namespace Midge.Bridges;

/// <summary>The bridge's TLS options as the client library's.</summary>
internal static class BridgeTls
{
    public static MqttTlsOptions? Options(BridgeTlsConfig? tls, string host)
    {
        if (tls is null) return null;
        var options = new MqttTlsOptions
        {
            TargetHost = host,
            CaFile = tls.CaFile,
            CaPath = tls.CaPath,
            CertFile = tls.CertFile,
            KeyFile = tls.KeyFile,
            AllowNameMismatch = tls.Insecure,
            EnabledProtocols = tls.Protocols,
            ApplicationProtocols = tls.Alpn is null ? null : [tls.Alpn],
        };
        if (tls.RequireOcsp) options = options with { RemoteCertificateValidation = RevocationChecked(tls) };
        return options;
    }

    /// <summary>bridge_require_ocsp: the chain is built against the bridge's CA certificates with revocation checked
    /// online (OCSP, or the CRL the certificate names); a certificate whose status is unknown is refused.</summary>
    private static RemoteCertificateValidationCallback RevocationChecked(BridgeTlsConfig tls)
    {
        var roots = new X509Certificate2Collection();
        if (tls.CaFile is not null) roots.ImportFromPemFile(tls.CaFile);
        if (tls.CaPath is not null)
        {
            foreach (var file in Directory.EnumerateFiles(tls.CaPath))
            {
                try
                {
                    roots.ImportFromPemFile(file);
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                }
            }
        }
        return (_, certificate, _, errors) =>
        {
            if (certificate is null) return false;
            if (!tls.Insecure && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.Online;
            chain.ChainPolicy.RevocationFlag = X509RevocationFlag.EndCertificateOnly;
            return chain.Build(new X509Certificate2(certificate));
        };
    }
}
