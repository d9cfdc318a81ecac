using System.Buffers;
using Midge.Protocol.Internal;
using Midge.Protocol.Packets;

namespace Midge.Protocol;

/// <summary>
/// What differs per receiver when one shared application message is sent to many subscribers
/// (<see cref="PacketEncoder.WritePublish"/>).
/// </summary>
public struct OutgoingPublish
{
    public QoS QoS;
    public ushort PacketId;
    public bool Retain;
    public bool Dup;
    /// <summary>MQTT 5: a topic alias to send (0 = none).</summary>
    public ushort TopicAlias;
    /// <summary>MQTT 5: send an empty topic name (the alias is already known to the receiver).</summary>
    public bool OmitTopic;
    /// <summary>MQTT 5: subscription identifiers to send (replacing any on the message).</summary>
    public uint[]? SubscriptionIdentifiers;
    /// <summary>MQTT 5: the remaining Message Expiry Interval to send (replacing the message's), or null to
    /// send none when the message had none.</summary>
    public uint? MessageExpiryInterval;
    /// <summary>How many leading characters of the message's topic this receiver does not see (the mount point of
    /// its listener); 0 = the whole topic. The topic is sliced as it is written: nothing is allocated for it.</summary>
    public int TopicStart;
}

/// <summary>Encodes packets into an <see cref="IBufferWriter{T}"/>.</summary>
/// <remarks>
/// Each packet is measured first, then written straight into <see cref="IBufferWriter{T}.GetSpan"/> (a PUBLISH
/// payload is copied after its header, in as many spans as the writer hands out). MQTT 5 acknowledgements use
/// their shortest form: reason code and property length are left out when the reason is Success and there are
/// no properties. For 3.x, properties are ignored. AUTH cannot be encoded for 3.x.
/// </remarks>
public static class PacketEncoder
{
    /// <summary>Writes any packet. For PUBLISH it writes the packet as it is (its own QoS, id, flags and
    /// properties).</summary>
    public static void Write(IBufferWriter<byte> writer, MqttPacket packet, ProtocolVersion version)
    {
        if (packet is PublishPacket publish)
        {
            WritePublishCore(writer, version, publish.Topic, publish.Payload.Span, publish.Properties, null, OwnFields(publish));
            return;
        }
        int remaining = Measure(packet, version, out int propSize);
        int total = 1 + MqttWriter.VarIntSize((uint)remaining) + remaining;
        var span = writer.GetSpan(total);
        var w = new MqttWriter(span);
        WriteBody(ref w, packet, version, remaining, propSize);
        writer.Advance(total);
    }

    /// <summary>The whole encoded size of <paramref name="packet"/> (fixed header included).</summary>
    public static int GetSize(MqttPacket packet, ProtocolVersion version)
    {
        int remaining = packet is PublishPacket publish
            ? MeasurePublish(version, publish.Topic, publish.Payload.Length, publish.Properties, null, OwnFields(publish), out _)
            : Measure(packet, version, out _);
        return 1 + MqttWriter.VarIntSize((uint)remaining) + remaining;
    }

    /// <summary>
    /// Writes a PUBLISH of a shared application message with per-receiver fields: the message's
    /// <paramref name="topic"/> (from <see cref="OutgoingPublish.TopicStart"/> on, or none with
    /// <see cref="OutgoingPublish.OmitTopic"/>), <paramref name="payload"/> and, for
    /// MQTT 5, its forwarded <paramref name="properties"/>, then Message Expiry Interval, Subscription Identifiers and
    /// Topic Alias from <paramref name="o"/>. For 3.x no properties are written.
    /// </summary>
    public static void WritePublish(IBufferWriter<byte> writer, ProtocolVersion version, string topic, ReadOnlySpan<byte> payload,
        PublishProperties? properties, in OutgoingPublish o) =>
        WritePublishCore(writer, version, ReceiverTopic(version, topic, o), payload, null, properties, o);

    /// <summary>The whole encoded size of what <see cref="WritePublish"/> would write.</summary>
    public static int GetPublishSize(ProtocolVersion version, string topic, int payloadLength, PublishProperties? properties,
        in OutgoingPublish o)
    {
        int remaining = MeasurePublish(version, ReceiverTopic(version, topic, o), payloadLength, null, properties, o, out _);
        return 1 + MqttWriter.VarIntSize((uint)remaining) + remaining;
    }

    // ---- PUBLISH ----

    private static OutgoingPublish OwnFields(PublishPacket p) => new()
    {
        QoS = p.QoS,
        PacketId = p.PacketId,
        Retain = p.Retain,
        Dup = p.Dup,
    };

    private static ReadOnlySpan<char> ReceiverTopic(ProtocolVersion version, string topic, in OutgoingPublish o)
    {
        if (o.OmitTopic && version == ProtocolVersion.V500) return "";
        return topic.AsSpan(o.TopicStart);
    }

    /// <summary>Remaining length of a PUBLISH; <paramref name="propSize"/> is the property content size. A packet
    /// written as it is brings its <paramref name="own"/> properties; a shared message its
    /// <paramref name="forwarded"/> ones, and <paramref name="o"/> the per-receiver ones.</summary>
    private static int MeasurePublish(ProtocolVersion version, ReadOnlySpan<char> topic, int payloadLength, MqttProperties? own,
        PublishProperties? forwarded, in OutgoingPublish o, out int propSize)
    {
        int size = MqttWriter.StringSize(topic) + (o.QoS != QoS.AtMostOnce ? 2 : 0) + payloadLength;
        propSize = 0;
        if (version == ProtocolVersion.V500)
        {
            propSize = PropertyCodec.ContentSize(own) + (forwarded?.EncodedSize ?? 0);
            if (o.TopicAlias != 0) propSize += 3;
            if (o.MessageExpiryInterval.HasValue) propSize += 5;
            if (o.SubscriptionIdentifiers is { } ids)
            {
                foreach (var id in ids) propSize += 1 + MqttWriter.VarIntSize(id);
            }
            size += MqttWriter.VarIntSize((uint)propSize) + propSize;
        }
        CheckRemaining(size);
        return size;
    }

    private static void WritePublishCore(IBufferWriter<byte> writer, ProtocolVersion version, ReadOnlySpan<char> topic, ReadOnlySpan<byte> payload,
        MqttProperties? own, PublishProperties? forwarded, in OutgoingPublish o)
    {
        if (o.QoS > QoS.ExactlyOnce) throw new ArgumentException("QoS must be 0, 1 or 2");
        int remaining = MeasurePublish(version, topic, payload.Length, own, forwarded, o, out int propSize);
        int headerTotal = 1 + MqttWriter.VarIntSize((uint)remaining) + remaining - payload.Length;
        var w = new MqttWriter(writer.GetSpan(headerTotal));
        byte fixedHeader = (byte)(((int)PacketType.Publish << 4) | ((int)o.QoS << 1));
        if (o.Dup) fixedHeader |= 0x08;
        if (o.Retain) fixedHeader |= 0x01;
        w.WriteByte(fixedHeader);
        w.WriteVarInt((uint)remaining);
        w.WriteString(topic);
        if (o.QoS != QoS.AtMostOnce) w.WriteUInt16(o.PacketId);
        if (version == ProtocolVersion.V500)
        {
            w.WriteVarInt((uint)propSize);
            PropertyCodec.WriteContent(ref w, own);
            forwarded?.WriteTo(ref w);
            if (o.MessageExpiryInterval is { } expiry)
                PropertyCodec.WriteUInt32Property(ref w, PropertyId.MessageExpiryInterval, expiry);
            if (o.SubscriptionIdentifiers is { } ids)
            {
                foreach (var id in ids) PropertyCodec.WriteSubscriptionIdentifier(ref w, id);
            }
            if (o.TopicAlias != 0) PropertyCodec.WriteUInt16Property(ref w, PropertyId.TopicAlias, o.TopicAlias);
        }
        writer.Advance(headerTotal);
        if (payload.Length != 0) writer.Write(payload);
    }

    // ---- every other packet ----

    /// <summary>Remaining length; <paramref name="propSize"/> is the main property list's content size.</summary>
    private static int Measure(MqttPacket packet, ProtocolVersion version, out int propSize)
    {
        bool v5 = version == ProtocolVersion.V500;
        propSize = v5 && packet is MqttPacketWithProperties withProps ? PropertyCodec.ContentSize(withProps.Properties) : 0;
        int size;
        switch (packet)
        {
            case ConnectPacket c:
                size = MqttWriter.StringSize(ProtocolNameFor(version)) + 1 + 1 + 2 + MqttWriter.StringSize(c.ClientId);
                if (v5) size += PropertyListSize(propSize);
                if (c.Will is { } will)
                {
                    if (v5) size += PropertyListSize(PropertyCodec.ContentSize(will.Properties));
                    size += MqttWriter.StringSize(will.Topic) + 2 + will.Payload.Length;
                }
                if (c.UserName is not null) size += MqttWriter.StringSize(c.UserName);
                if (c.Password is not null) size += 2 + c.Password.Length;
                break;
            case ConnAckPacket:
                size = 2 + (v5 ? PropertyListSize(propSize) : 0);
                break;
            case PublishAckPacket ack:
                size = 2;
                if (v5 && (ack.ReasonCode != ReasonCode.Success || propSize != 0))
                    size += 1 + (propSize != 0 ? PropertyListSize(propSize) : 0);
                break;
            case SubscribePacket s:
                size = 2 + (v5 ? PropertyListSize(propSize) : 0);
                foreach (var sub in s.Subscriptions) size += MqttWriter.StringSize(sub.Filter) + 1;
                break;
            case SubAckPacket sa:
                size = 2 + (v5 ? PropertyListSize(propSize) : 0) + sa.ReasonCodes.Count;
                break;
            case UnsubscribePacket u:
                size = 2 + (v5 ? PropertyListSize(propSize) : 0);
                foreach (var f in u.Filters) size += MqttWriter.StringSize(f);
                break;
            case UnsubAckPacket ua:
                size = 2 + (v5 ? PropertyListSize(propSize) + ua.ReasonCodes.Count : 0);
                break;
            case PingReqPacket:
            case PingRespPacket:
                size = 0;
                break;
            case DisconnectPacket d:
                size = v5 && (d.ReasonCode != ReasonCode.NormalDisconnection || propSize != 0)
                    ? 1 + (propSize != 0 ? PropertyListSize(propSize) : 0)
                    : 0;
                break;
            case AuthPacket a:
                if (!v5) throw new ArgumentException("AUTH exists only in MQTT 5", nameof(packet));
                size = a.ReasonCode != ReasonCode.Success || propSize != 0
                    ? 1 + (propSize != 0 ? PropertyListSize(propSize) : 0)
                    : 0;
                break;
            default:
                throw new ArgumentException($"cannot encode {packet.GetType().Name}", nameof(packet));
        }
        CheckRemaining(size);
        return size;
    }

    private static void WriteBody(ref MqttWriter w, MqttPacket packet, ProtocolVersion version, int remaining, int propSize)
    {
        bool v5 = version == ProtocolVersion.V500;
        byte flags = packet.Type is PacketType.PubRel or PacketType.Subscribe or PacketType.Unsubscribe ? (byte)0x02 : (byte)0;
        w.WriteByte((byte)(((int)packet.Type << 4) | flags));
        w.WriteVarInt((uint)remaining);
        switch (packet)
        {
            case ConnectPacket c:
                WriteConnect(ref w, c, version, propSize);
                break;
            case ConnAckPacket ca:
                if (v5)
                {
                    w.WriteByte(ca.SessionPresent ? (byte)1 : (byte)0);
                    w.WriteByte((byte)ca.ReasonCode);
                    WritePropertyList(ref w, ca.Properties, propSize);
                }
                else
                {
                    // 3.1 has no Session Present flag (the byte is unused).
                    w.WriteByte(ca.SessionPresent && version == ProtocolVersion.V311 ? (byte)1 : (byte)0);
                    w.WriteByte((byte)(ca.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(ca.ReasonCode)));
                }
                break;
            case PublishAckPacket ack:
                w.WriteUInt16(ack.PacketId);
                if (remaining > 2) w.WriteByte((byte)ack.ReasonCode);
                if (remaining > 3) WritePropertyList(ref w, ack.Properties, propSize);
                break;
            case SubscribePacket s:
                w.WriteUInt16(s.PacketId);
                if (v5) WritePropertyList(ref w, s.Properties, propSize);
                foreach (var sub in s.Subscriptions)
                {
                    w.WriteString(sub.Filter);
                    int options = (int)sub.QoS;
                    if (v5)
                    {
                        if (sub.NoLocal) options |= 0x04;
                        if (sub.RetainAsPublished) options |= 0x08;
                        options |= (int)sub.RetainHandling << 4;
                    }
                    w.WriteByte((byte)options);
                }
                break;
            case SubAckPacket sa:
                w.WriteUInt16(sa.PacketId);
                if (v5) WritePropertyList(ref w, sa.Properties, propSize);
                foreach (var code in sa.ReasonCodes)
                {
                    // 3.x knows only granted QoS 0-2 and failure 0x80.
                    w.WriteByte(v5 || (byte)code <= 2 ? (byte)code : (byte)0x80);
                }
                break;
            case UnsubscribePacket u:
                w.WriteUInt16(u.PacketId);
                if (v5) WritePropertyList(ref w, u.Properties, propSize);
                foreach (var f in u.Filters) w.WriteString(f);
                break;
            case UnsubAckPacket ua:
                w.WriteUInt16(ua.PacketId);
                if (v5)
                {
                    WritePropertyList(ref w, ua.Properties, propSize);
                    foreach (var code in ua.ReasonCodes) w.WriteByte((byte)code);
                }
                break;
            case DisconnectPacket d:
                if (remaining > 0) w.WriteByte((byte)d.ReasonCode);
                if (remaining > 1) WritePropertyList(ref w, d.Properties, propSize);
                break;
            case AuthPacket a:
                if (remaining > 0) w.WriteByte((byte)a.ReasonCode);
                if (remaining > 1) WritePropertyList(ref w, a.Properties, propSize);
                break;
        }
    }

    private static void WriteConnect(ref MqttWriter w, ConnectPacket c, ProtocolVersion version, int propSize)
    {
        bool v5 = version == ProtocolVersion.V500;
        w.WriteString(ProtocolNameFor(version));
        w.WriteByte((byte)((byte)version | (c.IsBridge ? 0x80 : 0)));
        int flags = 0;
        if (c.CleanStart) flags |= 0x02;
        if (c.Will is { } will)
        {
            flags |= 0x04 | ((int)will.QoS << 3);
            if (will.Retain) flags |= 0x20;
        }
        if (c.Password is not null) flags |= 0x40;
        if (c.UserName is not null) flags |= 0x80;
        w.WriteByte((byte)flags);
        w.WriteUInt16(c.KeepAlive);
        if (v5) WritePropertyList(ref w, c.Properties, propSize);
        w.WriteString(c.ClientId);
        if (c.Will is { } wm)
        {
            if (v5) WritePropertyList(ref w, wm.Properties, PropertyCodec.ContentSize(wm.Properties));
            w.WriteString(wm.Topic);
            w.WriteBinary(wm.Payload.Span);
        }
        if (c.UserName is not null) w.WriteString(c.UserName);
        if (c.Password is not null) w.WriteBinary(c.Password);
    }

    private static string ProtocolNameFor(ProtocolVersion version) =>
        version == ProtocolVersion.V310 ? "MQIsdp" : "MQTT";

    private static int PropertyListSize(int contentSize) => MqttWriter.VarIntSize((uint)contentSize) + contentSize;

    private static void WritePropertyList(ref MqttWriter w, MqttProperties? properties, int contentSize)
    {
        w.WriteVarInt((uint)contentSize);
        PropertyCodec.WriteContent(ref w, properties);
    }

    private static void CheckRemaining(int size)
    {
        if ((uint)size > FrameReader.MaxRemainingLength)
            throw new ArgumentException("packet larger than the MQTT maximum of 268,435,455 bytes remaining length");
    }
}
