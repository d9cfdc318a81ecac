using System.Buffers;
using System.Text.Json;
using Midge.Protocol.Packets;

namespace Midge.Protocol.Tests;

/// <summary>Test helpers: hex parsing, encode to bytes, frame + decode, segment-per-byte sequences, dumps.</summary>
internal static class Codec
{
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    public static string ToHex(ReadOnlySpan<byte> bytes)
    {
        var s = Convert.ToHexString(bytes);
        var sb = new System.Text.StringBuilder(s.Length * 3 / 2);
        for (int i = 0; i < s.Length; i += 2)
        {
            if (i > 0) sb.Append(' ');
            sb.Append(s, i, 2);
        }
        return sb.ToString();
    }

    public static byte[] Encode(MqttPacket packet, ProtocolVersion version)
    {
        var writer = new ArrayBufferWriter<byte>();
        PacketEncoder.Write(writer, packet, version);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Reads every frame of <paramref name="bytes"/> and decodes it; the input must be whole frames.</summary>
    public static List<MqttPacket> DecodeAll(ReadOnlySequence<byte> buffer, ProtocolVersion version)
    {
        var result = new List<MqttPacket>();
        while (buffer.Length > 0)
        {
            var status = FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _);
            if (status != FrameStatus.Complete) throw new InvalidOperationException("frame status " + status);
            result.Add(PacketDecoder.Decode(header, body, version));
        }
        return result;
    }

    public static MqttPacket Decode(byte[] bytes, ProtocolVersion version)
    {
        var packets = DecodeAll(new ReadOnlySequence<byte>(bytes), version);
        Assert.Single(packets);
        return packets[0];
    }

    public static MqttPacket DecodeSegmented(byte[] bytes, ProtocolVersion version)
    {
        var packets = DecodeAll(SegmentPerByte(bytes), version);
        Assert.Single(packets);
        return packets[0];
    }

    /// <summary>A sequence with one segment per byte (and an empty segment in front), so every read crosses
    /// a segment boundary.</summary>
    public static ReadOnlySequence<byte> SegmentPerByte(byte[] bytes)
    {
        if (bytes.Length == 0) return ReadOnlySequence<byte>.Empty;
        var first = new Segment(ReadOnlyMemory<byte>.Empty, 0);
        var last = first;
        for (int i = 0; i < bytes.Length; i++) last = last.Append(new[] { bytes[i] });
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    private static readonly JsonSerializerOptions DumpOptions = new() { WriteIndented = false };

    /// <summary>A structural dump of a packet (every public property, recursively) for equality checks.</summary>
    public static string Dump(MqttPacket packet) => packet.GetType().Name + JsonSerializer.Serialize(packet, packet.GetType(), DumpOptions);

    public static MqttProtocolException DecodeFails(byte[] bytes, ProtocolVersion version)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        var status = FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _);
        Assert.Equal(FrameStatus.Complete, status);
        Assert.Equal(0, buffer.Length);
        return Assert.Throws<MqttProtocolException>(() => PacketDecoder.Decode(header, body, version));
    }
}
