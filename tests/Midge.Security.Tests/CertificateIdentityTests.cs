using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Midge.Security.Tests;

/// <summary>User names from client certificates, compared with what OpenSSL prints, and CRL checks.</summary>
public class CertificateIdentityTests
{
    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    [Theory]
    [InlineData("CN=alice, O=Example, C=GB", "CN=alice,O=Example,C=GB")]
    [InlineData("CN=\"a, b\", O=Example", "CN=a\\, b,O=Example")]
    [InlineData("E=alice@example.com, CN=alice", "emailAddress=alice@example.com,CN=alice")]
    [InlineData("CN=Zoë", "CN=Zo\\C3\\AB")]
    public void Subject_is_printed_as_openssl_rfc2253(string subject, string expected)
    {
        using var cert = SelfSigned(subject);
        Assert.Equal(expected, CertificateIdentity.Subject(cert));
        Assert.Equal(expected, OpenSslSubject(cert));
    }

    [Fact]
    public void Common_name_is_the_cn()
    {
        using var cert = SelfSigned("CN=device-17, OU=Sensors, O=Example");
        Assert.Equal("device-17", CertificateIdentity.CommonName(cert));
        using var noCn = SelfSigned("O=Example");
        Assert.Null(CertificateIdentity.CommonName(noCn));
    }

    [Fact]
    public void Crl_check_finds_revoked_serials_from_the_issuer_only()
    {
        using var ca = SelfSigned("CN=CA");
        using var other = SelfSigned("CN=Other CA");
        using var good = Issue(ca, "CN=good", 10);
        using var revoked = Issue(ca, "CN=revoked", 11);
        using var foreign = Issue(other, "CN=foreign", 11);
        var builder = new CertificateRevocationListBuilder();
        builder.AddEntry(revoked);
        var der = builder.Build(ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        var crls = RevocationLists.Parse(PemEncoding.WriteString("X509 CRL", der));
        var now = DateTimeOffset.UtcNow;
        Assert.Equal(RevocationStatus.Good, crls.Check(good, ca, now));
        Assert.Equal(RevocationStatus.Revoked, crls.Check(revoked, ca, now));
        Assert.Equal(RevocationStatus.NoCrl, crls.Check(foreign, other, now));
        // Same issuer name but a different key: the CRL's signature does not verify.
        using var impostor = SelfSigned("CN=CA");
        Assert.Equal(RevocationStatus.NoCrl, crls.Check(revoked, impostor, now));
        Assert.Equal(RevocationStatus.CrlNotTimeValid, crls.Check(revoked, ca, now.AddDays(2)));
        Assert.Throws<FormatException>(() => RevocationLists.Parse("not a crl"));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, byte serial)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        using var caKey = ca.GetECDsaPrivateKey()!;
        return request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [serial]);
    }

    private static string OpenSslSubject(X509Certificate2 cert)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("c.pem"), cert.ExportCertificatePem());
        var (code, output, err) = Proc.Run("openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", dir.File("c.pem"));
        Assert.True(code == 0, err);
        return output.Trim()["subject=".Length..];
    }
}
