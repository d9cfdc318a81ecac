using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Midge.Integration.Tests;

/// <summary>
/// Certificates made for a test with .NET's CertificateRequest: CAs, a server certificate for 127.0.0.1 and
/// localhost, client certificates, and CRLs, written as PEM files into a temporary directory.
/// </summary>
public sealed class TestPki : IDisposable
{
    private static long _serial = DateTime.UtcNow.Ticks;

    public TestPki()
    {
        Directory = Path.Combine(Path.GetTempPath(), "midge-pki-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>A self-signed CA (EC P-256), written as NAME.pem.</summary>
    public X509Certificate2 CreateCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name} CA, O=Midge Tests", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(PathOf(name + ".pem"), ca.ExportCertificatePem());
        return ca;
    }

    /// <summary>A server certificate (RSA, PKCS#1 key) for 127.0.0.1 and localhost: NAME.pem and NAME.key.</summary>
    public X509Certificate2 CreateServer(X509Certificate2 ca, string name, string commonName = "localhost")
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var cert = Issue(request, ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10)).CopyWithPrivateKey(key);
        File.WriteAllText(PathOf(name + ".pem"), cert.ExportCertificatePem());
        File.WriteAllText(PathOf(name + ".key"), key.ExportRSAPrivateKeyPem());
        return cert;
    }

    /// <summary>A client certificate (EC, SEC1 key): NAME.pem and NAME.key.</summary>
    public X509Certificate2 CreateClient(X509Certificate2 ca, string name, string subject, bool expired = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        var notBefore = expired ? DateTimeOffset.UtcNow.AddDays(-10) : DateTimeOffset.UtcNow.AddDays(-1);
        var notAfter = expired ? DateTimeOffset.UtcNow.AddDays(-1) : DateTimeOffset.UtcNow.AddDays(10);
        var cert = Issue(request, ca, notBefore, notAfter).CopyWithPrivateKey(key);
        File.WriteAllText(PathOf(name + ".pem"), cert.ExportCertificatePem());
        File.WriteAllText(PathOf(name + ".key"), key.ExportECPrivateKeyPem());
        return cert;
    }

    /// <summary>A CRL of <paramref name="ca"/> revoking <paramref name="revoked"/>, written as NAME.pem.</summary>
    public void CreateCrl(X509Certificate2 ca, string name, params X509Certificate2[] revoked)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (var cert in revoked) builder.AddEntry(cert, DateTimeOffset.UtcNow.AddMinutes(-5));
        var der = builder.Build(ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(7), HashAlgorithmName.SHA256);
        File.WriteAllText(PathOf(name + ".pem"), PemEncoding.WriteString("X509 CRL", der));
    }

    private static X509Certificate2 Issue(CertificateRequest request, X509Certificate2 ca, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial));
        Array.Reverse(serial);
        serial[0] &= 0x7f;
        using var caKey = ca.GetECDsaPrivateKey()!;
        var issued = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), notBefore, notAfter, serial);
        return issued;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
