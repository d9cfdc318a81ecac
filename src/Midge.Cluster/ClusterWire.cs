using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Midge.Core.Messages;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Cluster;

/// <summary>
/// A message as it crosses between nodes: a format version, the publisher's client id and user name (No Local and
/// <c>check_retain_source</c> need them on the receiving node), then the message as an MQTT 5 PUBLISH, written and read
/// by the broker's own encoder and decoder: topic, payload, QoS, RETAIN, the forwarded properties and what is left of
/// the Message Expiry Interval (so the nodes' clocks need not agree). A session handed over to another node
/// (<see cref="SessionStateCodec"/>) carries its messages in the same form.
/// </summary>
internal static class ClusterWire
{
    /// <summary>Version 3 numbers a message per receiving node (<see cref="Numbering"/>); version 2, read still, had a
    /// single number (ignored now: such a message is routed unnumbered); version 1 had no flags byte.</summary>
    public const byte Version = 3;

    /// <summary>The publishing node's shared groups had the message (NATS was away): no node's group may have it.</summary>
    private const byte GroupsServed = 1;

    /// <summary>The publishing node waits for receiving nodes to confirm the message (its publisher's acknowledgement
    /// waits): the flags byte is followed by a <see cref="Numbering"/>.</summary>
    private const byte Numbered = 2;

    /// <summary>A receiving node's number for a message: its place in the stream of numbered messages from the
    /// publishing node to <paramref name="Node"/>, and <paramref name="Floor"/>, the lowest number the publishing node
    /// still holds for that node (it can send nothing below again: the receiving node waits for nothing below).</summary>
    public readonly record struct Number(string Node, long Seq, long Floor);

    /// <summary>Who wants to hear that a message is kept: the publishing node (in its run <paramref name="Epoch"/>: its
    /// numbers start again when it restarts) and each receiving node's number for the message.</summary>
    public sealed record Numbering(string Origin, long Epoch, Number[] Numbers)
    {
        /// <summary>The number for <paramref name="node"/>, if the message has one for it.</summary>
        public Number? For(string node)
        {
            foreach (var n in Numbers)
            {
                if (n.Node == node) return n;
            }
            return null;
        }
    }

    /// <summary>Writes <paramref name="message"/> as it crosses to another node.</summary>
    public static void Write(IBufferWriter<byte> output, Message message, long nowMs, bool groupsServed = false, Numbering? numbering = null)
    {
        WriteByte(output, Version);
        WriteByte(output, (byte)((groupsServed ? GroupsServed : 0) | (numbering is null ? 0 : Numbered)));
        if (numbering is not null)
        {
            WriteString(output, numbering.Origin);
            WriteInt64(output, numbering.Epoch);
            WriteUInt32(output, (uint)numbering.Numbers.Length);
            foreach (var n in numbering.Numbers)
            {
                WriteString(output, n.Node);
                WriteInt64(output, n.Seq);
                WriteInt64(output, n.Floor);
            }
        }
        WriteMessage(output, message, nowMs);
    }

    /// <summary>Reads a message another node wrote with <see cref="Write"/>.</summary>
    /// <exception cref="FormatException">The bytes are not a message this version writes.</exception>
    public static Message Read(ReadOnlySequence<byte> bytes, long nowMs) => Read(bytes, nowMs, out _, out _);

    /// <inheritdoc cref="Read(ReadOnlySequence{byte}, long)"/>
    public static Message Read(ReadOnlySequence<byte> bytes, long nowMs, out bool groupsServed, out Numbering? numbering)
    {
        var reader = new SequenceReader<byte>(bytes);
        if (!reader.TryRead(out byte version) || version is not (1 or 2 or Version)) throw new FormatException($"unknown cluster message format {version}");
        byte flags = version == 1 ? (byte)0 : ReadByte(ref reader);
        groupsServed = (flags & GroupsServed) != 0;
        numbering = null;
        if ((flags & Numbered) != 0 && version == 2)
        {
            _ = ReadString(ref reader);
            _ = ReadInt64(ref reader);
        }
        else if ((flags & Numbered) != 0)
        {
            var origin = ReadString(ref reader) ?? throw new FormatException("a numbered message without its node");
            long epoch = ReadInt64(ref reader);
            uint count = ReadUInt32(ref reader);
            if (count > reader.Remaining / 20) throw new FormatException("truncated cluster message");
            var numbers = new Number[count];
            for (int i = 0; i < numbers.Length; i++)
            {
                var node = ReadString(ref reader) ?? throw new FormatException("a number without its node");
                numbers[i] = new Number(node, ReadInt64(ref reader), ReadInt64(ref reader));
            }
            numbering = new Numbering(origin, epoch, numbers);
        }
        return ReadMessage(ref reader, nowMs);
    }

    public static void WriteMessage(IBufferWriter<byte> output, Message message, long nowMs) =>
        WritePublish(output, message.OriginClientId, message.OriginUserName, message.Topic, message.Payload.Span, message.Properties,
            message.QoS, message.Retain, message.RemainingExpirySeconds(nowMs));

    public static Message ReadMessage(ref SequenceReader<byte> reader, long nowMs)
    {
        var (publish, origin, user) = ReadPublish(ref reader);
        return Message.FromPublish(publish, origin, nowMs, user);
    }

    /// <summary>A message as a session store keeps it (its expiry a wall-clock time).</summary>
    public static void WriteStored(IBufferWriter<byte> output, StoredMessage message, DateTimeOffset utcNow)
    {
        uint? expiry = message.ExpiresAt is { } at ? (uint)Math.Clamp(Math.Ceiling((at - utcNow).TotalSeconds), 0, uint.MaxValue) : null;
        WritePublish(output, message.OriginClientId, message.OriginUserName, message.Topic, message.Payload.Span,
            PublishProperties.From(message.Properties), message.QoS, message.Retain, expiry);
    }

    public static StoredMessage ReadStored(ref SequenceReader<byte> reader, DateTimeOffset utcNow)
    {
        var (publish, origin, user) = ReadPublish(ref reader);
        var p = publish.Properties;
        return new StoredMessage(publish.Topic, publish.Payload, publish.QoS, publish.Retain)
        {
            Properties = PublishProperties.From(p)?.ToMqttProperties(),
            OriginClientId = origin,
            OriginUserName = user,
            ExpiresAt = p?.MessageExpiryInterval is { } s ? utcNow.AddSeconds(s) : null,
        };
    }

    private static void WritePublish(IBufferWriter<byte> output, string? origin, string? user, string topic, ReadOnlySpan<byte> payload,
        PublishProperties? properties, QoS qos, bool retain, uint? expirySeconds)
    {
        WriteString(output, origin);
        WriteString(output, user);
        var fields = new OutgoingPublish
        {
            QoS = qos,
            PacketId = qos == QoS.AtMostOnce ? (ushort)0 : (ushort)1,
            Retain = retain,
            MessageExpiryInterval = expirySeconds,
        };
        PacketEncoder.WritePublish(output, ProtocolVersion.V500, topic, payload, properties, fields);
    }

    private static (PublishPacket Publish, string? Origin, string? User) ReadPublish(ref SequenceReader<byte> reader)
    {
        var origin = ReadString(ref reader);
        var user = ReadString(ref reader);
        var rest = reader.UnreadSequence;
        if (FrameReader.TryRead(ref rest, 0, out byte header, out var body, out int length) != FrameStatus.Complete)
        {
            throw new FormatException("truncated cluster message");
        }
        try
        {
            if (PacketDecoder.Decode(header, body, ProtocolVersion.V500) is not PublishPacket publish)
            {
                throw new FormatException("a cluster message must be a PUBLISH");
            }
            reader.Advance(length);
            return (publish, origin, user);
        }
        catch (MqttProtocolException e)
        {
            throw new FormatException($"malformed cluster message: {e.Message}", e);
        }
    }

    public static void WriteByte(IBufferWriter<byte> output, byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    public static void WriteUInt32(IBufferWriter<byte> output, uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(output.GetSpan(4), value);
        output.Advance(4);
    }

    public static void WriteInt64(IBufferWriter<byte> output, long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(output.GetSpan(8), value);
        output.Advance(8);
    }

    /// <summary>A string: its UTF-8 length (32 bits; <see cref="uint.MaxValue"/> for null), then its UTF-8.</summary>
    public static void WriteString(IBufferWriter<byte> output, string? value)
    {
        int length = value is null ? 0 : Encoding.UTF8.GetByteCount(value);
        var span = output.GetSpan(4 + length);
        BinaryPrimitives.WriteUInt32BigEndian(span, value is null ? uint.MaxValue : (uint)length);
        if (value is not null) Encoding.UTF8.GetBytes(value, span[4..]);
        output.Advance(4 + length);
    }

    public static byte ReadByte(ref SequenceReader<byte> reader) =>
        reader.TryRead(out byte value) ? value : throw new FormatException("truncated cluster message");

    public static uint ReadUInt32(ref SequenceReader<byte> reader) =>
        reader.TryReadBigEndian(out int value) ? (uint)value : throw new FormatException("truncated cluster message");

    public static long ReadInt64(ref SequenceReader<byte> reader) =>
        reader.TryReadBigEndian(out long value) ? value : throw new FormatException("truncated cluster message");

    public static string? ReadString(ref SequenceReader<byte> reader)
    {
        uint length = ReadUInt32(ref reader);
        if (length == uint.MaxValue) return null;
        if (reader.Remaining < length) throw new FormatException("truncated cluster message");
        var text = Encoding.UTF8.GetString(reader.UnreadSequence.Slice(0, length));
        reader.Advance(length);
        return text;
    }
}
