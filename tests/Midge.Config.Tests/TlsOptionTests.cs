using System.Net.Security;
using System.Security.Authentication;

namespace Midge.Config.Tests;

/// <summary>TLS listener options: values, defaults, and the combinations refused with file:line.</summary>
public class TlsOptionTests
{
    private const string Base = "listener 8883\ncertfile /etc/s.crt\nkeyfile /etc/s.key\n";

    private static TlsConfig Tls(string extra) =>
        ConfigParser.Parse(Base + extra, "m.conf").Listeners.Single().Tls ?? throw new InvalidOperationException("no TLS");

    private static string Error(string text) =>
        Assert.Throws<ConfigException>(() => ConfigParser.Parse(text, "m.conf")).Message;

    [Fact]
    public void Plain_listener_has_no_tls() => Assert.Null(ConfigParser.Parse("listener 1883\n", "m.conf").Listeners[0].Tls);

    [Fact]
    public void Defaults_are_tls12_and_tls13_without_client_certificates()
    {
        var tls = Tls("");
        Assert.Equal("/etc/s.crt", tls.CertFile);
        Assert.Equal("/etc/s.key", tls.KeyFile);
        Assert.Equal(new ConfigSource("m.conf", 2), tls.CertFileSource);
        Assert.Equal(SslProtocols.Tls12 | SslProtocols.Tls13, tls.Protocols);
        Assert.False(tls.RequireCertificate);
        Assert.False(tls.AsksForClientCertificate);
        Assert.Null(tls.CipherSuites);
    }

    [Fact]
    public void Mutual_tls_options_are_read()
    {
        var tls = Tls("cafile /etc/ca.pem\ncapath /etc/cas\ncrlfile /etc/crl.pem\nrequire_certificate true\nuse_identity_as_username true\ntls_keyform pem\n");
        Assert.Equal("/etc/ca.pem", tls.CaFile);
        Assert.Equal("/etc/cas", tls.CaPath);
        Assert.Equal("/etc/crl.pem", tls.CrlFile);
        Assert.True(tls.RequireCertificate);
        Assert.True(tls.UseIdentityAsUsername);
        Assert.True(tls.UsesCertificateIdentity);
    }

    [Fact]
    public void Identity_wins_over_subject_as_in_mosquitto()
    {
        var tls = Tls("cafile /ca\nuse_subject_as_username true\nuse_identity_as_username true\n");
        Assert.True(tls.UseIdentityAsUsername);
        Assert.False(tls.UseSubjectAsUsername);
    }

    [Theory]
    [InlineData("tlsv1.3", SslProtocols.Tls13)]
    [InlineData("tlsv1.2", SslProtocols.Tls12 | SslProtocols.Tls13)]
    [InlineData("tlsv1.1", SslProtocols.Tls12 | SslProtocols.Tls13)]
    public void Tls_version_is_a_minimum(string value, SslProtocols expected) =>
        Assert.Equal(expected, Tls($"tls_version {value}\n").Protocols);

    [Fact]
    public void Openssl_cipher_names_map_to_dotnet_suites()
    {
        var tls = Tls("ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:!aNULL:@STRENGTH\nciphers_tls1.3 TLS_AES_128_GCM_SHA256\n");
        Assert.Equal([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_AES_128_GCM_SHA256], tls.CipherSuites);
    }

    [Fact]
    public void Ciphers_alone_keep_the_default_tls13_suites()
    {
        var tls = Tls("ciphers TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n");
        Assert.Equal([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, .. TlsCiphers.DefaultTls13], tls.CipherSuites);
    }

    [Fact]
    public void Tls_options_before_any_listener_apply_to_the_default_listener()
    {
        var c = ConfigParser.Parse("port 8883\ncertfile /s.crt\nkeyfile /s.key\nlistener 1883\n", "m.conf");
        Assert.Equal(2, c.Listeners.Count);
        Assert.Null(c.Listeners.Single(l => l.Port == 1883).Tls);
        Assert.Equal(8883, c.Listeners.Single(l => l.Tls is not null).Port);
    }

    [Theory]
    [InlineData("listener 8883\ncertfile /s.crt\n", "m.conf:2: 'certfile' needs 'keyfile' on the same listener")]
    [InlineData("listener 8883\nkeyfile /s.key\n", "m.conf:2: 'keyfile' needs 'certfile' on the same listener")]
    [InlineData("listener 8883\ncafile /ca.pem\n", "m.conf:2: TLS options on listener 8883 need 'certfile' and 'keyfile'")]
    [InlineData(Base + "require_certificate true\n", "m.conf:4: 'require_certificate true' needs 'cafile' or 'capath' to check client certificates against")]
    [InlineData(Base + "use_identity_as_username true\n", "m.conf:4: 'use_identity_as_username true' needs 'cafile' or 'capath' to check client certificates against")]
    [InlineData(Base + "crlfile /crl.pem\n", "m.conf:4: 'crlfile' needs 'cafile' or 'capath'")]
    [InlineData(Base + "tls_version tlsv1.0\n", "m.conf:4: 'tls_version' must be tlsv1.3, tlsv1.2 or tlsv1.1, got 'tlsv1.0'")]
    [InlineData(Base + "tls_keyform der\n", "m.conf:4: 'tls_keyform' must be pem or engine, got 'der'")]
    [InlineData(Base + "tls_keyform engine\n", "m.conf:4: option 'tls_keyform engine' is not supported: .NET's TLS stack cannot load OpenSSL engines")]
    [InlineData(Base + "certfile /other.crt\n", "m.conf:4: duplicate 'certfile' (already set at m.conf:2)")]
    [InlineData(Base + "ciphers ECDHE-RSA-AES128-GCM-SHA256:HIGH\n", "m.conf:4: 'ciphers': cannot map 'HIGH' to a .NET cipher suite; list OpenSSL suite names such as ECDHE-RSA-AES128-GCM-SHA256 (keywords like HIGH or DEFAULT cannot be mapped)")]
    [InlineData(Base + "ciphers_tls1.3 ECDHE-RSA-AES128-GCM-SHA256\n", "m.conf:4: 'ciphers_tls1.3': cannot map 'ECDHE-RSA-AES128-GCM-SHA256' to a .NET cipher suite; list TLS 1.3 suite names such as TLS_AES_128_GCM_SHA256")]
    public void Bad_combinations_fail_with_file_and_line(string text, string message) => Assert.Equal(message, Error(text));

    [Theory]
    [InlineData("psk_hint hint", "psk_hint", ".NET's TLS stack has no TLS-PSK")]
    [InlineData("psk_file /etc/psk", "psk_file", ".NET's TLS stack has no TLS-PSK")]
    [InlineData("tls_engine pkcs11", "tls_engine", ".NET's TLS stack cannot load OpenSSL engines")]
    [InlineData("tls_engine_kpass_sha1 abc", "tls_engine_kpass_sha1", ".NET's TLS stack cannot load OpenSSL engines")]
    [InlineData("dhparamfile /etc/dh.pem", "dhparamfile", ".NET's TLS stack takes no Diffie-Hellman parameters (it uses its own groups)")]
    public void Options_dotnet_cannot_honour_fail_saying_why(string line, string option, string why) =>
        Assert.Equal($"m.conf:2: option '{option}' is not supported: {why}", Error($"listener 1883\n{line}\n"));
}
