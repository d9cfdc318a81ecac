using System.Buffers;
using System.Text;
using Midge.Protocol;

namespace Midge.Persistence;

/// <summary>
/// The PUBLISH properties a stored message keeps (payload format, content type, response topic, correlation data,
/// user properties), as one compact blob: each property present is its MQTT 5 identifier, then its value: a byte for
/// the payload format, otherwise a length (7 bits a byte, low first, as MQTT's variable byte integer) and the bytes
/// (UTF-8 for a string); a user property is its name then its value. User properties keep their order and
/// duplicates. An empty blob is properties with none of these set; the other properties are not forwarded with a
/// message and are not kept (what is left of the Message Expiry Interval is kept as an expiry time).
/// </summary>
internal static class PropertiesCodec
{
    private const byte PayloadFormat = 0x01;
    private const byte ContentType = 0x03;
    private const byte ResponseTopic = 0x08;
    private const byte CorrelationData = 0x09;
    private const byte UserProperty = 0x26;

    public static byte[] Encode(MqttProperties properties)
    {
        var w = new ArrayBufferWriter<byte>(64);
        if (properties.PayloadFormatIndicator is { } format)
        {
            w.Write([PayloadFormat, format]);
        }
        WriteString(w, ContentType, properties.ContentType);
        WriteString(w, ResponseTopic, properties.ResponseTopic);
        if (properties.CorrelationData is { } data)
        {
            w.Write([CorrelationData]);
            WriteBytes(w, data);
        }
        foreach (var (name, value) in properties.UserProperties ?? [])
        {
            w.Write([UserProperty]);
            WriteBytes(w, Encoding.UTF8.GetBytes(name));
            WriteBytes(w, Encoding.UTF8.GetBytes(value));
        }
        return w.WrittenSpan.ToArray();
    }

    /// <exception cref="FormatException">The blob is not one this codec wrote.</exception>
    public static MqttProperties Decode(ReadOnlySpan<byte> blob)
    {
        var p = new MqttProperties();
        int at = 0;
        while (at < blob.Length)
        {
            byte id = blob[at++];
            switch (id)
            {
                case PayloadFormat:
                    p.PayloadFormatIndicator = blob[at++];
                    break;
                case ContentType:
                    p.ContentType = Encoding.UTF8.GetString(ReadBytes(blob, ref at));
                    break;
                case ResponseTopic:
                    p.ResponseTopic = Encoding.UTF8.GetString(ReadBytes(blob, ref at));
                    break;
                case CorrelationData:
                    p.CorrelationData = ReadBytes(blob, ref at).ToArray();
                    break;
                case UserProperty:
                    string name = Encoding.UTF8.GetString(ReadBytes(blob, ref at));
                    p.AddUserProperty(name, Encoding.UTF8.GetString(ReadBytes(blob, ref at)));
                    break;
                default:
                    throw new FormatException($"unknown property {id:x2} in a stored message");
            }
        }
        return p;
    }

    private static void WriteString(ArrayBufferWriter<byte> w, byte id, string? value)
    {
        if (value is null) return;
        w.Write([id]);
        WriteBytes(w, Encoding.UTF8.GetBytes(value));
    }

    private static void WriteBytes(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> bytes)
    {
        uint length = (uint)bytes.Length;
        while (length >= 0x80)
        {
            w.Write([(byte)(length | 0x80)]);
            length >>= 7;
        }
        w.Write([(byte)length]);
        w.Write(bytes);
    }

    private static ReadOnlySpan<byte> ReadBytes(ReadOnlySpan<byte> blob, ref int at)
    {
        int length = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = blob[at++];
            length |= (b & 0x7F) << shift;
            if (b < 0x80) break;
            if (shift > 21) throw new FormatException("a length too long in a stored message's properties");
        }
        var bytes = blob.Slice(at, length);
        at += length;
        return bytes;
    }
}
