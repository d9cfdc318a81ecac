using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Midge.Protocol.Internal;

/// <summary>
/// Reads MQTT data types (section 1.5) from a frame body. A single-segment body is read straight from its
/// span; a multi-segment body goes through a <see cref="SequenceReader{T}"/>. Every shortfall throws a
/// Malformed Packet <see cref="MqttProtocolException"/> tagged with <see cref="Version"/>.
/// </summary>
internal ref struct MqttReader
{
    private readonly ReadOnlySpan<byte> _span;
    private int _pos;
    private SequenceReader<byte> _seq;
    private readonly bool _single;

    /// <summary>Attached to every exception thrown while reading (set once a CONNECT's level is known).</summary>
    public ProtocolVersion? Version;

    public MqttReader(in ReadOnlySequence<byte> body, ProtocolVersion? version)
    {
        Version = version;
        if (body.IsSingleSegment)
        {
            _span = body.FirstSpan;
            _single = true;
            _seq = default;
        }
        else
        {
            _span = default;
            _single = false;
            _seq = new SequenceReader<byte>(body);
        }
        _pos = 0;
    }

    /// <summary>Bytes not yet read.</summary>
    public readonly int Remaining => _single ? _span.Length - _pos : (int)_seq.Remaining;

    /// <summary>Bytes read so far.</summary>
    public readonly int Consumed => _single ? _pos : (int)_seq.Consumed;

    public readonly bool End => Remaining == 0;

    public byte ReadByte()
    {
        if (_single)
        {
            if ((uint)_pos >= (uint)_span.Length) Throw.Malformed("packet shorter than its fields", Version);
            return _span[_pos++];
        }
        if (!_seq.TryRead(out var b)) Throw.Malformed("packet shorter than its fields", Version);
        return b;
    }

    public ushort ReadUInt16()
    {
        if (_single)
        {
            if (_span.Length - _pos < 2) Throw.Malformed("packet shorter than its fields", Version);
            var v = BinaryPrimitives.ReadUInt16BigEndian(_span.Slice(_pos));
            _pos += 2;
            return v;
        }
        if (!_seq.TryReadBigEndian(out short s)) Throw.Malformed("packet shorter than its fields", Version);
        return (ushort)s;
    }

    public uint ReadUInt32()
    {
        if (_single)
        {
            if (_span.Length - _pos < 4) Throw.Malformed("packet shorter than its fields", Version);
            var v = BinaryPrimitives.ReadUInt32BigEndian(_span.Slice(_pos));
            _pos += 4;
            return v;
        }
        if (!_seq.TryReadBigEndian(out int i)) Throw.Malformed("packet shorter than its fields", Version);
        return (uint)i;
    }

    /// <summary>Variable Byte Integer (1.5.5): at most 4 bytes, minimal encoding.</summary>
    public uint ReadVarInt()
    {
        uint value = 0;
        for (int i = 0; i < 4; i++)
        {
            byte b = ReadByte();
            value |= (uint)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0) Throw.Malformed("variable byte integer not minimally encoded", Version);
                return value;
            }
        }
        Throw.Malformed("variable byte integer longer than 4 bytes", Version);
        return 0;
    }

    /// <summary>UTF-8 Encoded String (1.5.4): well-formed UTF-8, no U+0000.</summary>
    public string ReadString()
    {
        int len = ReadUInt16();
        if (len == 0) return "";
        if (len > Remaining) Throw.Malformed("string longer than the packet", Version);
        if (_single)
        {
            var s = DecodeUtf8(_span.Slice(_pos, len), Version);
            _pos += len;
            return s;
        }
        var unread = _seq.UnreadSpan;
        if (unread.Length >= len)
        {
            var s = DecodeUtf8(unread[..len], Version);
            _seq.Advance(len);
            return s;
        }
        byte[]? rented = null;
        Span<byte> tmp = len <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(len));
        tmp = tmp[..len];
        _seq.TryCopyTo(tmp);
        _seq.Advance(len);
        try
        {
            return DecodeUtf8(tmp, Version);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Binary Data (1.5.6): two-byte length then bytes, copied into a new array.</summary>
    public byte[] ReadBinary()
    {
        int len = ReadUInt16();
        return ReadBytes(len);
    }

    /// <summary>Copies the next <paramref name="len"/> bytes into a new array (empty array for 0).</summary>
    public byte[] ReadBytes(int len)
    {
        if (len == 0) return [];
        if (len > Remaining) Throw.Malformed("data longer than the packet", Version);
        var result = GC.AllocateUninitializedArray<byte>(len);
        if (_single)
        {
            _span.Slice(_pos, len).CopyTo(result);
            _pos += len;
        }
        else
        {
            _seq.TryCopyTo(result);
            _seq.Advance(len);
        }
        return result;
    }

    public void ExpectEnd(string what)
    {
        if (Remaining != 0) Throw.Malformed("unexpected bytes after " + what, Version);
    }

    private static string DecodeUtf8(ReadOnlySpan<byte> bytes, ProtocolVersion? version)
    {
        // MQTT-1.5.4-1: well-formed UTF-8 (no surrogates, no overlong forms); MQTT-1.5.4-2: no U+0000.
        if (!Utf8.IsValid(bytes)) Throw.Malformed("ill-formed UTF-8 string", version);
        if (bytes.IndexOf((byte)0) >= 0) Throw.Malformed("UTF-8 string contains U+0000", version);
        return Encoding.UTF8.GetString(bytes);
    }
}

/// <summary>Cold throw helpers.</summary>
internal static class Throw
{
    [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Malformed(string message, ProtocolVersion? version) =>
        throw new MqttProtocolException(ReasonCode.MalformedPacket, message, version);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ProtocolError(string message, ProtocolVersion? version) =>
        throw new MqttProtocolException(ReasonCode.ProtocolError, message, version);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Reason(ReasonCode reason, string message, ProtocolVersion? version) =>
        throw new MqttProtocolException(reason, message, version);
}
