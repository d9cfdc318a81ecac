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
    /// <summary>Version 2 has a flags byte after the version (bit 0: <see cref="GroupsServed"/>); version 1, read still,
    /// had none.</summary>
    public const byte Version = 2;

    /// <summary>The publishing node's shared groups had the message (NATS was away): no node's group may have it.</summary>
    private const byte GroupsServed = 1;

    /// <summary>The publishing node waits for the receiving nodes to confirm the message (its publisher's
    /// acknowledgement waits): the flags byte is followed by the publishing node's name and its number for the
    /// message (<see cref="Confirmation"/>).</summary>
    private const byte Confirm = 2;

    /// <summary>Who wants to hear that a message is kept: the publishing node, and its number for the message.</summary>
    public readonly record struct Confirmation(string Node, long Seq);

    /// <summary>Writes <paramref name="message"/> as it crosses to another node.</summary>
    public static void Write(IBufferWriter<byte> output, Message message, long nowMs, bool groupsServed = false, Confirmation? confirm = null)
    {
        WriteByte(output, Version);
        WriteByte(output, (byte)((groupsServed ? GroupsServed : 0) | (confirm is null ? 0 : Confirm)));
        if (confirm is { } c)
        {
            WriteString(output, c.Node);
            WriteInt64(output, c.Seq);
        }
        WriteMessage(output, message, nowMs);
    }

    /// <summary>Reads a message another node wrote with <see cref="Write"/>.</summary>
    /// <exception cref="FormatException">The bytes are not a message this version writes.</exception>
    public static Message Read(ReadOnlySequence<byte> bytes, long nowMs) => Read(bytes, nowMs, out _, out _);

    /// <inheritdoc cref="Read(ReadOnlySequence{byte}, long)"/>
    public static Message Read(ReadOnlySequence<byte> bytes, long nowMs, out bool groupsServed, out Confirmation? confirm)
    {
        var reader = new SequenceReader<byte>(bytes);
        if (!reader.TryRead(out byte version) || version is not (1 or Version)) throw new FormatException($"unknown cluster message format {version}");
        byte flags = version == Version ? ReadByte(ref reader) : (byte)0;
        groupsServed = (flags & GroupsServed) != 0;
        confirm = null;
        if ((flags & Confirm) != 0)
        {
            var node = ReadString(ref reader) ?? throw new FormatException("a confirmation without a node");
            confirm = new Confirmation(node, ReadInt64(ref reader));
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
