using System.Net;
using System.Text;

namespace Midge.Transport.Tests;

/// <summary>The PROXY header parser (ProxyProtocol.cs) on whole headers, headers fed a byte at a time, and bad ones.</summary>
public class ProxyProtocolTests
{
    private static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>A version 2 header: signature, version/command, family, length, then <paramref name="block"/>.</summary>
    internal static byte[] V2(byte command, byte family, byte[] block, int? length = null)
    {
        int n = length ?? block.Length;
        return [.. Signature, (byte)(0x20 | command), family, (byte)(n >> 8), (byte)n, .. block];
    }

    internal static byte[] V2Inet(string source, int sourcePort, string destination, int destinationPort, byte[]? tlvs = null)
    {
        var s = IPAddress.Parse(source).GetAddressBytes();
        var d = IPAddress.Parse(destination).GetAddressBytes();
        byte family = s.Length == 4 ? (byte)0x11 : (byte)0x21;
        return V2(1, family, [.. s, .. d, (byte)(sourcePort >> 8), (byte)sourcePort, (byte)(destinationPort >> 8), (byte)destinationPort, .. tlvs ?? []]);
    }

    private static ProxyParse Parse(byte[] data, int version, out int length, out IPEndPoint? source, out string? error) =>
        ProxyProtocol.TryParse(data, version, out length, out source, out error);

    [Theory]
    [InlineData("PROXY TCP4 192.0.2.7 10.0.0.1 56324 1883\r\n", "192.0.2.7:56324")]
    [InlineData("PROXY TCP6 2001:db8::7 2001:db8::1 4000 1883\r\n", "[2001:db8::7]:4000")]
    [InlineData("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")]
    public void V1_names_the_client(string header, string client)
    {
        var bytes = Encoding.ASCII.GetBytes(header + "\x10MQTT");
        Assert.Equal(ProxyParse.Complete, Parse(bytes, 1, out int length, out var source, out _));
        Assert.Equal(header.Length, length);
        Assert.Equal(IPEndPoint.Parse(client), source);
        Assert.True(length <= ProxyProtocol.MaxV1Length);
    }

    [Fact]
    public void V1_unknown_keeps_the_socket_address()
    {
        var bytes = Encoding.ASCII.GetBytes("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest");
        Assert.Equal(ProxyParse.Complete, Parse(bytes, 1, out int length, out var source, out _));
        Assert.Equal(bytes.Length - 4, length);
        Assert.Null(source);
    }

    [Fact]
    public void A_header_fed_a_byte_at_a_time_is_incomplete_until_its_last_byte()
    {
        foreach (var (bytes, version) in new[]
        {
            (Encoding.ASCII.GetBytes("PROXY TCP4 192.0.2.7 10.0.0.1 56324 1883\r\n"), 1),
            (V2Inet("2001:db8::7", 4000, "2001:db8::1", 1883, tlvs: [0x04, 0x00, 0x02, 0xAA, 0xBB]), 2),
        })
        {
            for (int n = 0; n < bytes.Length; n++)
            {
                Assert.Equal(ProxyParse.Incomplete, Parse(bytes[..n], version, out _, out _, out var error));
                Assert.Null(error);
            }
            Assert.Equal(ProxyParse.Complete, Parse(bytes, version, out int length, out _, out _));
            Assert.Equal(bytes.Length, length);
        }
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n")]
    [InlineData("\x10\x0c\x00\x04MQTT")]
    [InlineData("PROXY TCP4 192.0.2.7 10.0.0.1 56324\r\n")]
    [InlineData("PROXY TCP4 192.0.2.7  10.0.0.1 56324 1883\r\n")]
    [InlineData("PROXY TCP4 2001:db8::7 10.0.0.1 56324 1883\r\n")]
    [InlineData("PROXY TCP6 192.0.2.7 10.0.0.1 56324 1883\r\n")]
    [InlineData("PROXY TCP4 192.0.2.7 10.0.0.1 65536 1883\r\n")]
    [InlineData("PROXY TCP4 192.0.2.7 10.0.0.1 0123 1883\r\n")]
    [InlineData("PROXY TCP4 192.1 10.0.0.1 1 1883\r\n")]
    [InlineData("PROXY UDP4 192.0.2.7 10.0.0.1 1 1883\r\n")]
    [InlineData("PROXY TCP4 192.0.2.7\r10.0.0.1 1 1883\r\n")]
    [InlineData("proxy TCP4 192.0.2.7 10.0.0.1 1 1883\r\n")]
    public void V1_refuses_what_is_not_a_header(string text)
    {
        Assert.Equal(ProxyParse.Invalid, Parse(Encoding.Latin1.GetBytes(text), 1, out _, out _, out var error));
        Assert.NotNull(error);
    }

    [Fact]
    public void V1_longer_than_107_bytes_is_refused_at_107()
    {
        var bytes = Encoding.ASCII.GetBytes("PROXY UNKNOWN " + new string('x', 200));
        Assert.Equal(ProxyParse.Incomplete, Parse(bytes[..106], 1, out _, out _, out _));
        Assert.Equal(ProxyParse.Invalid, Parse(bytes[..107], 1, out _, out _, out var error));
        Assert.Contains("longer than 107", error);
    }

    [Fact]
    public void V2_names_the_client_and_skips_tlvs()
    {
        var header = V2Inet("192.0.2.7", 56324, "10.0.0.1", 1883, tlvs: [0x01, 0x00, 0x02, (byte)'h', (byte)'2']);
        byte[] bytes = [.. header, 0x10, 0x0C];
        Assert.Equal(ProxyParse.Complete, Parse(bytes, 2, out int length, out var source, out _));
        Assert.Equal(header.Length, length);
        Assert.Equal(IPEndPoint.Parse("192.0.2.7:56324"), source);

        Assert.Equal(ProxyParse.Complete, Parse(V2Inet("2001:db8::7", 4000, "::1", 1883), 2, out _, out source, out _));
        Assert.Equal(IPEndPoint.Parse("[2001:db8::7]:4000"), source);
    }

    [Fact]
    public void V2_local_and_unspec_keep_the_socket_address()
    {
        var local = V2(0, 0x00, []);
        Assert.Equal(ProxyParse.Complete, Parse(local, 2, out int length, out var source, out _));
        Assert.Equal(16, length);
        Assert.Null(source);
        // LOCAL with addresses (HAProxy's health checks may send them): skipped.
        var localWithAddresses = V2(0, 0x11, new byte[12]);
        Assert.Equal(ProxyParse.Complete, Parse(localWithAddresses, 2, out length, out source, out _));
        Assert.Equal(28, length);
        Assert.Null(source);
        Assert.Equal(ProxyParse.Complete, Parse(V2(1, 0x00, []), 2, out _, out source, out _));
        Assert.Null(source);
    }

    [Fact]
    public void V2_refuses_bad_headers()
    {
        var good = V2Inet("192.0.2.7", 1, "10.0.0.1", 2);
        var wrongVersion = good.ToArray();
        wrongVersion[12] = 0x11;
        var wrongCommand = good.ToArray();
        wrongCommand[12] = 0x22;
        var wrongFamily = good.ToArray();
        wrongFamily[13] = 0x41;
        var badSignature = good.ToArray();
        badSignature[5] ^= 1;
        foreach (var bytes in new[]
        {
            wrongVersion, wrongCommand, wrongFamily, badSignature,
            V2(1, 0x11, new byte[8]), // too short for IPv4 addresses
            V2(1, 0x21, new byte[12]), // too short for IPv6
            V2(1, 0x11, [], length: ProxyProtocol.MaxV2BlockLength + 1), // longer than the maximum: refused on its length
            Encoding.ASCII.GetBytes("PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n"), // v1 on a v2 listener
        })
        {
            Assert.Equal(ProxyParse.Invalid, Parse(bytes, 2, out _, out _, out var error));
            Assert.NotNull(error);
        }
        Assert.Equal(ProxyParse.Invalid, Parse(good, 1, out _, out _, out var v2OnV1));
        Assert.Contains("version 2 header on a version 1 listener", v2OnV1);
    }

    [Fact]
    public void V2_at_the_maximum_length_is_taken()
    {
        var block = new byte[ProxyProtocol.MaxV2BlockLength];
        block[0] = 192;
        var bytes = V2(1, 0x11, block);
        Assert.Equal(ProxyProtocol.MaxLength(2), bytes.Length);
        Assert.Equal(ProxyParse.Complete, Parse(bytes, 2, out int length, out var source, out _));
        Assert.Equal(bytes.Length, length);
        Assert.Equal(IPAddress.Parse("192.0.0.0"), source!.Address);
    }
}
