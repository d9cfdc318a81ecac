using System.Net.Security;
using System.Security.Authentication;

namespace Midge.Config;

/// <summary>
/// A TLS listener's settings, as Mosquitto's listener options give them (certfile, keyfile, cafile, capath,
/// crlfile, require_certificate, use_identity_as_username, use_subject_as_username, tls_version, ciphers,
/// ciphers_tls1.3). The parser checks that they fit together; the files are read by the transport at start-up
/// and again on SIGHUP, and any error there names the line that gave the file.
/// </summary>
public sealed record TlsConfig
{
    /// <summary>PEM server certificate, optionally followed by its intermediate certificates.</summary>
    public required string CertFile { get; init; }
    /// <summary>PEM private key (RSA or EC, PKCS#1, SEC1 or PKCS#8, not encrypted).</summary>
    public required string KeyFile { get; init; }
    /// <summary>PEM file of CA certificates trusted for client certificates.</summary>
    public string? CaFile { get; init; }
    /// <summary>Directory of PEM CA certificates trusted for client certificates.</summary>
    public string? CaPath { get; init; }
    /// <summary>PEM file of certificate revocation lists checked against client certificates.</summary>
    public string? CrlFile { get; init; }
    /// <summary>Clients must present a certificate signed by a trusted CA, or the handshake fails.</summary>
    public bool RequireCertificate { get; init; }
    /// <summary>The client certificate's CN is the user name; password checks are skipped.</summary>
    public bool UseIdentityAsUsername { get; init; }
    /// <summary>The client certificate's subject (RFC 2253, as OpenSSL prints it) is the user name.</summary>
    public bool UseSubjectAsUsername { get; init; }
    /// <summary>Protocol versions offered: TLS 1.2 and 1.3 unless tls_version says tlsv1.3.</summary>
    public SslProtocols Protocols { get; init; } = SslProtocols.Tls12 | SslProtocols.Tls13;
    /// <summary>Cipher suites from ciphers / ciphers_tls1.3; null = the platform's defaults.</summary>
    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; init; }

    /// <summary>The client certificate names the user (use_identity_as_username or use_subject_as_username).</summary>
    public bool UsesCertificateIdentity => UseIdentityAsUsername || UseSubjectAsUsername;

    /// <summary>Client certificates are asked for: required, or needed for the user name.</summary>
    public bool AsksForClientCertificate => RequireCertificate || UsesCertificateIdentity;

    public ConfigSource CertFileSource { get; init; }
    public ConfigSource KeyFileSource { get; init; }
    public ConfigSource CaFileSource { get; init; }
    public ConfigSource CaPathSource { get; init; }
    public ConfigSource CrlFileSource { get; init; }
}

/// <summary>
/// OpenSSL cipher names (as mosquitto.conf's <c>ciphers</c> takes them) mapped to .NET's
/// <see cref="TlsCipherSuite"/>. IANA names (<c>TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256</c>) are accepted too.
/// </summary>
public static class TlsCiphers
{
    private static readonly Dictionary<string, TlsCipherSuite> OpenSslNames = new(StringComparer.Ordinal)
    {
        ["ECDHE-ECDSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-RSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-ECDSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-RSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-ECDSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ["ECDHE-RSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["DHE-RSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
        ["DHE-RSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
        ["DHE-RSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["ECDHE-ECDSA-AES128-SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
        ["ECDHE-RSA-AES128-SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
        ["ECDHE-ECDSA-AES256-SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
        ["ECDHE-RSA-AES256-SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
        ["ECDHE-ECDSA-AES128-SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        ["ECDHE-RSA-AES128-SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        ["ECDHE-ECDSA-AES256-SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
        ["ECDHE-RSA-AES256-SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
        ["DHE-RSA-AES128-SHA256"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_128_CBC_SHA256,
        ["DHE-RSA-AES256-SHA256"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA256,
        ["DHE-RSA-AES128-SHA"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_128_CBC_SHA,
        ["DHE-RSA-AES256-SHA"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA,
        ["AES128-GCM-SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        ["AES256-GCM-SHA384"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
        ["AES128-SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
        ["AES256-SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA256,
        ["AES128-SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
        ["AES256-SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA,
    };

    /// <summary>The TLS 1.3 suites, OpenSSL's names being the IANA ones.</summary>
    public static IReadOnlyList<TlsCipherSuite> Tls13 { get; } =
    [
        TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_128_CCM_SHA256, TlsCipherSuite.TLS_AES_128_CCM_8_SHA256,
    ];

    /// <summary>OpenSSL's default TLS 1.3 suites, used when only <c>ciphers</c> is given.</summary>
    public static IReadOnlyList<TlsCipherSuite> DefaultTls13 { get; } =
        [TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_AES_128_GCM_SHA256];

    /// <summary>Forward-secret AEAD TLS 1.2 suites, used when only <c>ciphers_tls1.3</c> is given.</summary>
    public static IReadOnlyList<TlsCipherSuite> DefaultTls12 { get; } =
    [
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];

    /// <summary>Exclusions of classes no mapped suite belongs to; they change nothing in an explicit list.</summary>
    private static readonly HashSet<string> HarmlessExclusions = new(StringComparer.Ordinal)
    {
        "aNULL", "eNULL", "NULL", "EXPORT", "EXP", "LOW", "MD5", "RC4", "DES", "3DES", "SSLv2", "SSLv3", "PSK", "SRP",
        "DSS", "IDEA", "SEED", "CAMELLIA", "ARIA", "ADH", "AECDH", "kRSA", "aDSS",
    };

    /// <summary>
    /// Maps an OpenSSL cipher list (names separated by ':', ',' or spaces). Returns the name that cannot be
    /// mapped (a keyword such as HIGH or DEFAULT, an unknown suite) in <paramref name="unmapped"/>.
    /// </summary>
    public static bool TryMap(string list, bool tls13, out List<TlsCipherSuite> suites, out string? unmapped)
    {
        suites = [];
        unmapped = null;
        foreach (var name in list.Split([':', ',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (name == "@STRENGTH") continue;
            if (name[0] is '!' or '-' && HarmlessExclusions.Contains(name[1..])) continue;
            TlsCipherSuite suite;
            if (!tls13 && OpenSslNames.TryGetValue(name, out var mapped))
            {
                suite = mapped;
            }
            else if (name.StartsWith("TLS_", StringComparison.Ordinal)
                && Enum.TryParse(name, ignoreCase: false, out suite) && Enum.IsDefined(suite)
                && (!tls13 || Tls13.Contains(suite)))
            {
            }
            else
            {
                unmapped = name;
                return false;
            }
            if (!suites.Contains(suite)) suites.Add(suite);
        }
        return true;
    }
}
