using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Midge.Security;

/// <summary>
/// The user name a client certificate gives, as Mosquitto derives it: the first CN for
/// <c>use_identity_as_username</c>, the whole subject for <c>use_subject_as_username</c>, printed the way OpenSSL's
/// <c>X509_NAME_print_ex(..., XN_FLAG_RFC2253)</c> prints it (most specific first, <c>CN=client,O=Example,C=GB</c>).
/// </summary>
public static class CertificateIdentity
{
    private static readonly Dictionary<string, string> ShortNames = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "CN",
        ["2.5.4.6"] = "C",
        ["2.5.4.7"] = "L",
        ["2.5.4.8"] = "ST",
        ["2.5.4.9"] = "street",
        ["2.5.4.10"] = "O",
        ["2.5.4.11"] = "OU",
        ["2.5.4.12"] = "title",
        ["2.5.4.4"] = "SN",
        ["2.5.4.42"] = "GN",
        ["2.5.4.43"] = "initials",
        ["2.5.4.44"] = "generationQualifier",
        ["2.5.4.46"] = "dnQualifier",
        ["2.5.4.5"] = "serialNumber",
        ["2.5.4.17"] = "postalCode",
        ["2.5.4.41"] = "name",
        ["2.5.4.65"] = "pseudonym",
        ["2.5.4.15"] = "businessCategory",
        ["2.5.4.97"] = "organizationIdentifier",
        ["1.2.840.113549.1.9.1"] = "emailAddress",
        ["0.9.2342.19200300.100.1.25"] = "DC",
        ["0.9.2342.19200300.100.1.1"] = "UID",
    };

    private const string CommonNameOid = "2.5.4.3";

    /// <summary>The first common name in the subject (in encoded order, as OpenSSL finds it); null when there is
    /// none or it holds a NUL character.</summary>
    public static string? CommonName(X509Certificate2 certificate)
    {
        foreach (var (oid, value, _) in Attributes(certificate.SubjectName, reversed: false))
        {
            if (oid != CommonNameOid) continue;
            return value is null || value.Contains('\0', StringComparison.Ordinal) ? null : value;
        }
        return null;
    }

    /// <summary>The subject as an RFC 2253 string, as Mosquitto's use_subject_as_username gives it.</summary>
    public static string Subject(X509Certificate2 certificate) => FormatRfc2253(certificate.SubjectName);

    /// <summary>Formats a distinguished name as OpenSSL's XN_FLAG_RFC2253: RDNs most specific first separated by
    /// ',', multi-valued RDNs joined by '+', short attribute names, special and non-ASCII characters escaped.</summary>
    public static string FormatRfc2253(X500DistinguishedName name)
    {
        var sb = new StringBuilder();
        int lastRdn = -1;
        foreach (var (oid, value, rdn) in Attributes(name, reversed: true))
        {
            if (sb.Length > 0) sb.Append(rdn == lastRdn ? '+' : ',');
            lastRdn = rdn;
            if (ShortNames.TryGetValue(oid, out var shortName))
            {
                sb.Append(shortName).Append('=');
            }
            else
            {
                sb.Append(oid).Append('=');
            }
            if (value is null || !ShortNames.ContainsKey(oid))
            {
                // Unknown types and unknown attributes are dumped as '#' and the DER encoding in hex.
                sb.Append('#').Append(Convert.ToHexString(RawValue(name, rdn, oid)));
                continue;
            }
            Escape(sb, value);
        }
        return sb.ToString();
    }

    private static void Escape(StringBuilder sb, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        for (int i = 0; i < bytes.Length; i++)
        {
            byte b = bytes[i];
            bool first = i == 0, last = i == bytes.Length - 1;
            if (b is (byte)',' or (byte)'+' or (byte)'"' or (byte)'\\' or (byte)'<' or (byte)'>' or (byte)';'
                || (first && b is (byte)'#' or (byte)' ') || (last && b == (byte)' '))
            {
                sb.Append('\\').Append((char)b);
            }
            else if (b < 0x20 || b >= 0x7f)
            {
                sb.Append('\\').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append((char)b);
            }
        }
    }

    /// <summary>Attributes of a name: OID, string value (null when not a string type) and RDN index.</summary>
    private static IEnumerable<(string Oid, string? Value, int Rdn)> Attributes(X500DistinguishedName name, bool reversed)
    {
        var rdns = Rdns(name);
        for (int n = 0; n < rdns.Count; n++)
        {
            int i = reversed ? rdns.Count - 1 - n : n;
            foreach (var (oid, value, _) in rdns[i]) yield return (oid, value, i);
        }
    }

    private static byte[] RawValue(X500DistinguishedName name, int rdn, string oid)
    {
        foreach (var (o, _, raw) in Rdns(name)[rdn])
        {
            if (o == oid) return raw;
        }
        return [];
    }

    private static List<List<(string Oid, string? Value, byte[] Raw)>> Rdns(X500DistinguishedName name)
    {
        var result = new List<List<(string, string?, byte[])>>();
        var reader = new AsnReader(name.RawData, AsnEncodingRules.DER);
        var sequence = reader.ReadSequence();
        while (sequence.HasData)
        {
            var set = sequence.ReadSetOf(skipSortOrderValidation: true);
            var rdn = new List<(string, string?, byte[])>();
            while (set.HasData)
            {
                var ava = set.ReadSequence();
                string oid = ava.ReadObjectIdentifier();
                var tag = ava.PeekTag();
                byte[] raw = ava.PeekEncodedValue().ToArray();
                string? value = null;
                if (tag.TagClass == TagClass.Universal && IsString((UniversalTagNumber)tag.TagValue))
                {
                    value = ava.ReadCharacterString((UniversalTagNumber)tag.TagValue);
                }
                else
                {
                    ava.ReadEncodedValue();
                }
                rdn.Add((oid, value, raw));
            }
            result.Add(rdn);
        }
        return result;
    }

    private static bool IsString(UniversalTagNumber tag) => tag is UniversalTagNumber.UTF8String
        or UniversalTagNumber.PrintableString or UniversalTagNumber.IA5String or UniversalTagNumber.T61String
        or UniversalTagNumber.BMPString or UniversalTagNumber.UniversalString or UniversalTagNumber.NumericString
        or UniversalTagNumber.VisibleString;
}
