using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Midge.Transport;

/// <summary>What <see cref="ProxyProtocol.TryParse"/> made of the bytes so far.</summary>
internal enum ProxyParse
{
    /// <summary>A valid start: the header needs more bytes (all the bytes given belong to it).</summary>
    Incomplete,
    /// <summary>A whole header, <c>length</c> bytes long.</summary>
    Complete,
    /// <summary>Not a header of the listener's version; <c>error</c> says why.</summary>
    Invalid,
}

/// <summary>
/// The PROXY protocol header (HAProxy's proxy-protocol.txt), versions 1 (text) and 2 (binary), as a pure parser over
/// the first bytes of a connection. A listener takes the one version it is configured for
/// (<c>enable_proxy_protocol 1|2</c>). The parser looks at nothing past the header, decides as soon as a byte is
/// wrong, and says how long the header was, so the caller consumes exactly that and the rest stays MQTT (or TLS, or
/// HTTP). The caller never needs more than <see cref="MaxLength"/> bytes.
/// </summary>
internal static class ProxyProtocol
{
    /// <summary>Version 1's maximum: "PROXY TCP6 " and two full IPv6 addresses and ports, CRLF included.</summary>
    public const int MaxV1Length = 107;

    /// <summary>Version 2's fixed part: signature (12), version and command, family, length (2).</summary>
    public const int V2FixedLength = 16;

    /// <summary>The largest address block (addresses and TLVs) a version 2 header may carry here. The format allows
    /// 65,535; proxies send the addresses (at most 216 bytes for Unix sockets) and a few TLVs (HAProxy's SSL ones,
    /// a cloud's endpoint id), far below this.</summary>
    public const int MaxV2BlockLength = 2048;

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>The most bytes a header of <paramref name="version"/> can take.</summary>
    public static int MaxLength(int version) => version == 1 ? MaxV1Length : V2FixedLength + MaxV2BlockLength;

    /// <summary>
    /// Parses the start of a connection as a header of <paramref name="version"/>. On <see cref="ProxyParse.Complete"/>,
    /// <paramref name="length"/> is the header's size and <paramref name="source"/> the client's address, or null when the
    /// header carries none to use (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC or Unix addresses): then the socket's own address stands.
    /// </summary>
    public static ProxyParse TryParse(ReadOnlySpan<byte> data, int version, out int length, out IPEndPoint? source, out string? error)
    {
        length = 0;
        source = null;
        error = null;
        return version == 1 ? ParseV1(data, ref length, ref source, ref error) : ParseV2(data, ref length, ref source, ref error);
    }

    private static ProxyParse ParseV1(ReadOnlySpan<byte> data, ref int length, ref IPEndPoint? source, ref string? error)
    {
        int prefix = Math.Min(data.Length, V1Prefix.Length);
        if (!data[..prefix].SequenceEqual(V1Prefix[..prefix]))
        {
            error = data[..prefix].SequenceEqual(V2Signature[..Math.Min(prefix, V2Signature.Length)])
                ? "a version 2 header on a version 1 listener"
                : "not a PROXY protocol v1 header";
            return ProxyParse.Invalid;
        }
        int end = data[..Math.Min(data.Length, MaxV1Length)].IndexOf("\r\n"u8);
        if (end < 0)
        {
            if (data.Length >= MaxV1Length)
            {
                error = $"version 1 header longer than {MaxV1Length} bytes";
                return ProxyParse.Invalid;
            }
            int cr = data.IndexOf((byte)'\r');
            if (cr >= 0 && cr != data.Length - 1)
            {
                error = "CR without LF in the version 1 header";
                return ProxyParse.Invalid;
            }
            return ProxyParse.Incomplete;
        }
        length = end + 2;
        var line = data[V1Prefix.Length..end];
        if (line.StartsWith("UNKNOWN"u8) && (line.Length == 7 || line[7] == (byte)' '))
        {
            return ProxyParse.Complete; // the proxy does not know the client: the socket's address stands
        }
        if (!TryParseV1Addresses(line, out source))
        {
            error = "malformed version 1 header";
            return ProxyParse.Invalid;
        }
        return ProxyParse.Complete;
    }

    /// <summary><c>TCP4|TCP6 SRC DST SPORT DPORT</c>, single spaces, the addresses of the family named.</summary>
    private static bool TryParseV1Addresses(ReadOnlySpan<byte> line, out IPEndPoint? source)
    {
        source = null;
        Span<char> text = stackalloc char[line.Length]; // under MaxV1Length
        for (int i = 0; i < line.Length; i++)
        {
            if (line[i] is < 0x20 or > 0x7E) return false;
            text[i] = (char)line[i];
        }
        Span<Range> parts = stackalloc Range[6];
        if (((ReadOnlySpan<char>)text).Split(parts, ' ') != 5) return false;
        var family = text[parts[0]];
        AddressFamily expected;
        if (family.SequenceEqual("TCP4")) expected = AddressFamily.InterNetwork;
        else if (family.SequenceEqual("TCP6")) expected = AddressFamily.InterNetworkV6;
        else return false;
        if (!TryParseAddress(text[parts[1]], expected, out var from) || !TryParseAddress(text[parts[2]], expected, out _)) return false;
        if (!TryParsePort(text[parts[3]], out int port) || !TryParsePort(text[parts[4]], out _)) return false;
        source = new IPEndPoint(from!, port);
        return true;
    }

    private static bool TryParseAddress(ReadOnlySpan<char> text, AddressFamily family, out IPAddress? address)
    {
        address = null;
        if (text.Length is 0 or > 45) return false;
        foreach (char c in text)
        {
            bool ok = family == AddressFamily.InterNetwork ? char.IsAsciiDigit(c) || c == '.' : char.IsAsciiHexDigit(c) || c is ':' or '.';
            if (!ok) return false;
        }
        if (family == AddressFamily.InterNetwork && text.Count('.') != 3) return false; // no "127.1" shorthand
        return IPAddress.TryParse(text, out address) && address.AddressFamily == family;
    }

    /// <summary>A decimal port, 0 to 65535, without leading zeros.</summary>
    private static bool TryParsePort(ReadOnlySpan<char> text, out int port)
    {
        port = 0;
        if (text.Length is 0 or > 5 || (text.Length > 1 && text[0] == '0')) return false;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= 65535;
    }

    private static ProxyParse ParseV2(ReadOnlySpan<byte> data, ref int length, ref IPEndPoint? source, ref string? error)
    {
        int signature = Math.Min(data.Length, V2Signature.Length);
        if (!data[..signature].SequenceEqual(V2Signature[..signature]))
        {
            error = data[..Math.Min(data.Length, V1Prefix.Length)].SequenceEqual(V1Prefix[..Math.Min(data.Length, V1Prefix.Length)])
                ? "a version 1 header on a version 2 listener"
                : "not a PROXY protocol v2 header";
            return ProxyParse.Invalid;
        }
        if (data.Length > 12 && data[12] >> 4 != 2)
        {
            error = $"version 2 header with version {data[12] >> 4}";
            return ProxyParse.Invalid;
        }
        if (data.Length > 12 && (data[12] & 0x0F) > 1)
        {
            error = $"version 2 header with unknown command {data[12] & 0x0F}";
            return ProxyParse.Invalid;
        }
        if (data.Length < V2FixedLength) return ProxyParse.Incomplete;
        int block = BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
        if (block > MaxV2BlockLength)
        {
            error = $"version 2 address block of {block} bytes (at most {MaxV2BlockLength})";
            return ProxyParse.Invalid;
        }
        bool local = (data[12] & 0x0F) == 0;
        int family = data[13] >> 4;
        int needed = family switch
        {
            1 => 12, // IPv4: source, destination, ports
            2 => 36, // IPv6
            3 => 216, // Unix: two paths
            _ => 0,
        };
        if (family > 3 || (data[13] & 0x0F) > 2)
        {
            error = $"version 2 header with unknown family/protocol 0x{data[13]:X2}";
            return ProxyParse.Invalid;
        }
        if (!local && block < needed)
        {
            error = $"version 2 address block of {block} bytes is too short for its family";
            return ProxyParse.Invalid;
        }
        if (data.Length < V2FixedLength + block) return ProxyParse.Incomplete;
        length = V2FixedLength + block;
        if (local) return ProxyParse.Complete; // the proxy's own connection (a health check): the socket's address stands
        var addresses = data.Slice(V2FixedLength, block);
        source = family switch
        {
            1 => new IPEndPoint(new IPAddress(addresses[..4]), BinaryPrimitives.ReadUInt16BigEndian(addresses[8..])),
            2 => new IPEndPoint(new IPAddress(addresses[..16]), BinaryPrimitives.ReadUInt16BigEndian(addresses[32..])),
            _ => null, // UNSPEC or Unix: nothing that is an IP address; TLVs (after the addresses) are skipped
        };
        return ProxyParse.Complete;
    }
}
