using System.Buffers.Binary;
using System.Text;

namespace Midge.Protocol.Internal;

/// <summary>Writes MQTT data types (section 1.5) into a span sized beforehand by the encoder.</summary>
internal ref struct MqttWriter
{
    private readonly Span<byte> _span;
    private int _pos;

    public MqttWriter(Span<byte> span)
    {
        _span = span;
        _pos = 0;
    }

    public readonly int Written => _pos;

    public void WriteByte(byte value) => _span[_pos++] = value;

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_span.Slice(_pos), value);
        _pos += 2;
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_span.Slice(_pos), value);
        _pos += 4;
    }

    public void WriteVarInt(uint value)
    {
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            if (value != 0) b |= 0x80;
            _span[_pos++] = b;
        } while (value != 0);
    }

    /// <summary>Two-byte length then the UTF-8 bytes of <paramref name="value"/>.</summary>
    public void WriteString(ReadOnlySpan<char> value)
    {
        int len = Encoding.UTF8.GetBytes(value, _span.Slice(_pos + 2));
        if (len > ushort.MaxValue) throw new ArgumentException("string longer than 65,535 UTF-8 bytes");
        BinaryPrimitives.WriteUInt16BigEndian(_span.Slice(_pos), (ushort)len);
        _pos += 2 + len;
    }

    /// <summary>Two-byte length then the bytes.</summary>
    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue) throw new ArgumentException("binary data longer than 65,535 bytes");
        WriteUInt16((ushort)value.Length);
        WriteBytes(value);
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_span.Slice(_pos));
        _pos += value.Length;
    }

    public static int VarIntSize(uint value) => value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;

    public static int StringSize(ReadOnlySpan<char> value) => 2 + Encoding.UTF8.GetByteCount(value);
}
