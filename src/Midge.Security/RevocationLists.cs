using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Midge.Security;

/// <summary>What a CRL check found.</summary>
public enum RevocationStatus
{
    Good,
    Revoked,
    /// <summary>No CRL in the file is from the certificate's issuer (OpenSSL refuses these too).</summary>
    NoCrl,
    /// <summary>The issuer's CRL is past its next update or not yet valid.</summary>
    CrlNotTimeValid,
}

/// <summary>
/// The certificate revocation lists of a <c>crlfile</c> (PEM, one or more <c>X509 CRL</c> blocks). A client
/// certificate is checked against the CRL of its issuer, whose signature must verify with the issuer's key; as with
/// Mosquitto (OpenSSL's X509_V_FLAG_CRL_CHECK), a certificate whose issuer has no CRL in the file is refused.
/// </summary>
public sealed class RevocationLists
{
    private readonly List<Crl> _crls;

    private RevocationLists(List<Crl> crls) => _crls = crls;

    public int Count => _crls.Count;

    /// <summary>Reads the PEM file. Throws <see cref="FormatException"/> naming what is wrong.</summary>
    public static RevocationLists Load(string path) => Parse(File.ReadAllText(path));

    public static RevocationLists Parse(string pem)
    {
        var crls = new List<Crl>();
        var text = pem.AsSpan();
        while (PemEncoding.TryFind(text, out var fields))
        {
            if (text[fields.Label].SequenceEqual("X509 CRL"))
            {
                crls.Add(Crl.Decode(Convert.FromBase64String(text[fields.Base64Data].ToString())));
            }
            text = text[fields.Location.End..];
        }
        if (crls.Count == 0) throw new FormatException("no '-----BEGIN X509 CRL-----' block found");
        return new RevocationLists(crls);
    }

    /// <summary>Checks <paramref name="certificate"/> against the CRLs of <paramref name="issuer"/>.</summary>
    public RevocationStatus Check(X509Certificate2 certificate, X509Certificate2 issuer, DateTimeOffset now)
    {
        var serial = new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: false, isBigEndian: true);
        bool found = false;
        foreach (var crl in _crls)
        {
            if (!crl.Issuer.AsSpan().SequenceEqual(certificate.IssuerName.RawData) || !crl.VerifiedBy(issuer)) continue;
            if (crl.ThisUpdate > now || (crl.NextUpdate is { } next && next < now)) return RevocationStatus.CrlNotTimeValid;
            found = true;
            if (crl.Revoked.Contains(serial)) return RevocationStatus.Revoked;
        }
        return found ? RevocationStatus.Good : RevocationStatus.NoCrl;
    }

    private sealed class Crl
    {
        public required byte[] Tbs { get; init; }
        public required string SignatureAlgorithm { get; init; }
        public required byte[] Signature { get; init; }
        public required byte[] Issuer { get; init; }
        public DateTimeOffset ThisUpdate { get; init; }
        public DateTimeOffset? NextUpdate { get; init; }
        public required HashSet<BigInteger> Revoked { get; init; }

        public static Crl Decode(byte[] der)
        {
            try
            {
                var outer = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
                var tbsBytes = outer.PeekEncodedValue().ToArray();
                var tbs = outer.ReadSequence();
                var algorithm = outer.ReadSequence().ReadObjectIdentifier();
                var signature = outer.ReadBitString(out _);

                if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer)) tbs.ReadInteger(); // version
                tbs.ReadSequence(); // signature algorithm (repeated)
                var issuer = tbs.ReadEncodedValue().ToArray();
                var thisUpdate = ReadTime(tbs);
                DateTimeOffset? nextUpdate = null;
                if (tbs.HasData && IsTime(tbs.PeekTag())) nextUpdate = ReadTime(tbs);
                var revoked = new HashSet<BigInteger>();
                if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
                {
                    var entries = tbs.ReadSequence();
                    while (entries.HasData)
                    {
                        var entry = entries.ReadSequence();
                        revoked.Add(entry.ReadInteger());
                    }
                }
                return new Crl
                {
                    Tbs = tbsBytes,
                    SignatureAlgorithm = algorithm,
                    Signature = signature,
                    Issuer = issuer,
                    ThisUpdate = thisUpdate,
                    NextUpdate = nextUpdate,
                    Revoked = revoked,
                };
            }
            catch (AsnContentException e)
            {
                throw new FormatException($"malformed CRL: {e.Message}", e);
            }
        }

        private static bool IsTime(Asn1Tag tag) =>
            tag.HasSameClassAndValue(Asn1Tag.UtcTime) || tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime);

        private static DateTimeOffset ReadTime(AsnReader reader) =>
            reader.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) ? reader.ReadUtcTime() : reader.ReadGeneralizedTime();

        public bool VerifiedBy(X509Certificate2 issuer)
        {
            HashAlgorithmName hash;
            bool rsa;
            switch (SignatureAlgorithm)
            {
                case "1.2.840.113549.1.1.5": hash = HashAlgorithmName.SHA1; rsa = true; break;
                case "1.2.840.113549.1.1.11": hash = HashAlgorithmName.SHA256; rsa = true; break;
                case "1.2.840.113549.1.1.12": hash = HashAlgorithmName.SHA384; rsa = true; break;
                case "1.2.840.113549.1.1.13": hash = HashAlgorithmName.SHA512; rsa = true; break;
                case "1.2.840.10045.4.3.2": hash = HashAlgorithmName.SHA256; rsa = false; break;
                case "1.2.840.10045.4.3.3": hash = HashAlgorithmName.SHA384; rsa = false; break;
                case "1.2.840.10045.4.3.4": hash = HashAlgorithmName.SHA512; rsa = false; break;
                default: return false;
            }
            try
            {
                if (rsa)
                {
                    using var key = issuer.GetRSAPublicKey();
                    return key is not null && key.VerifyData(Tbs, Signature, hash, RSASignaturePadding.Pkcs1);
                }
                using var ec = issuer.GetECDsaPublicKey();
                return ec is not null && ec.VerifyData(Tbs, Signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }
            catch (CryptographicException)
            {
                return false;
            }
        }
    }
}
