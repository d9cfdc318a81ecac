using System.Buffers;
using Midge.Protocol.Internal;
using Midge.Protocol.Packets;

namespace Midge.Protocol;

/// <summary>Decodes one frame body into a packet, enforcing every validation rule of the specs.</summary>
/// <remarks>
/// Reason codes: structural errors are <see cref="ReasonCode.MalformedPacket"/>; rule violations the 5.0 spec
/// calls a Protocol Error are <see cref="ReasonCode.ProtocolError"/>; wildcards in a topic name are
/// <see cref="ReasonCode.TopicNameInvalid"/>; bad filters are <see cref="ReasonCode.TopicFilterInvalid"/>.
/// MQTT 3.1 ("MQIsdp") peers are decoded leniently where 3.1 defined no rule (fixed-header flags of
/// non-PUBLISH packets, connect flag bit 0), as Mosquitto does.
/// Rules that need session or direction state are the broker's: Topic Alias above the negotiated maximum,
/// a Subscription Identifier in a client's PUBLISH (MQTT-3.3.4-6), AUTH reason codes by direction, payload
/// format validation (0x99), packet sizes against Maximum Packet Size, client identifier length limits.
/// </remarks>
public static class PacketDecoder
{
    /// <summary>
    /// Decodes the frame. <paramref name="version"/> is the version negotiated by CONNECT (ignored when the
    /// frame is a CONNECT, which carries its own). Throws <see cref="MqttProtocolException"/> on malformed or
    /// protocol-violating input. Payloads are copied out of <paramref name="body"/> exactly once, so the caller
    /// may release the buffer after the call.
    /// </summary>
    public static MqttPacket Decode(byte header, in ReadOnlySequence<byte> body, ProtocolVersion version)
    {
        var type = (PacketType)(header >> 4);
        int flags = header & 0x0F;
        if (type == PacketType.Connect) return DecodeConnect(flags, body);

        var r = new MqttReader(body, version);
        switch (type)
        {
            case PacketType.Publish:
                return DecodePublish(ref r, flags, version);
            case PacketType.PubAck:
            case PacketType.PubRec:
            case PacketType.PubComp:
                CheckFlags(flags, 0, version);
                return DecodePublishAck(ref r, type, version);
            case PacketType.PubRel:
                CheckFlags(flags, 2, version);
                return DecodePublishAck(ref r, type, version);
            case PacketType.Subscribe:
                CheckFlags(flags, 2, version);
                return DecodeSubscribe(ref r, version);
            case PacketType.Unsubscribe:
                CheckFlags(flags, 2, version);
                return DecodeUnsubscribe(ref r, version);
            case PacketType.ConnAck:
                CheckFlags(flags, 0, version);
                return DecodeConnAck(ref r, version);
            case PacketType.SubAck:
                CheckFlags(flags, 0, version);
                return DecodeSubAck(ref r, version);
            case PacketType.UnsubAck:
                CheckFlags(flags, 0, version);
                return DecodeUnsubAck(ref r, version);
            case PacketType.PingReq:
                CheckFlags(flags, 0, version);
                r.ExpectEnd("PINGREQ");
                return PingReqPacket.Instance;
            case PacketType.PingResp:
                CheckFlags(flags, 0, version);
                r.ExpectEnd("PINGRESP");
                return PingRespPacket.Instance;
            case PacketType.Disconnect:
                CheckFlags(flags, 0, version);
                return DecodeDisconnect(ref r, version);
            case PacketType.Auth:
                if (version != ProtocolVersion.V500) Throw.Malformed("AUTH does not exist before MQTT 5", version);
                CheckFlags(flags, 0, version);
                return DecodeAuth(ref r, version);
            default:
                Throw.Malformed("reserved packet type 0", version);
                return null;
        }
    }

    /// <summary>MQTT-2.2.2-2 (3.1.1 and 5.0): reserved fixed-header flags must be as specified.</summary>
    private static void CheckFlags(int flags, int expected, ProtocolVersion version)
    {
        if (flags != expected && version != ProtocolVersion.V310)
            Throw.Malformed("invalid fixed header flags", version);
    }

    private static ushort ReadPacketId(ref MqttReader r, ProtocolVersion? version)
    {
        ushort id = r.ReadUInt16();
        // MQTT-2.3.1-1 (3.1.1) / MQTT-2.2.1-3 (5.0): packet identifiers are non-zero.
        if (id == 0) Throw.ProtocolError("packet identifier 0", version);
        return id;
    }

    // ---- CONNECT ----

    private static ConnectPacket DecodeConnect(int flags, in ReadOnlySequence<byte> body)
    {
        var r = new MqttReader(body, null);
        if (flags != 0) Throw.Malformed("invalid CONNECT fixed header flags", null);

        string name = r.ReadString();
        byte rawLevel = r.ReadByte();
        byte level = (byte)(rawLevel & 0x7F);
        bool bridge = (rawLevel & 0x80) != 0;
        ProtocolVersion v;
        if (name == "MQTT" && level == 4) { v = ProtocolVersion.V311; name = "MQTT"; }
        else if (name == "MQTT" && level == 5) { v = ProtocolVersion.V500; name = "MQTT"; }
        else if (name == "MQIsdp" && level == 3) { v = ProtocolVersion.V310; name = "MQIsdp"; }
        else
        {
            throw new MqttProtocolException(ReasonCode.UnsupportedProtocolVersion,
                $"unsupported protocol name/level \"{name}\"/{rawLevel}",
                level == 5 ? ProtocolVersion.V500 : ProtocolVersion.V311)
            { RawProtocolLevel = rawLevel };
        }
        r.Version = v;

        byte cf = r.ReadByte();
        // MQTT-3.1.2-3: the reserved flag must be 0 (3.1 left it unused).
        if ((cf & 0x01) != 0 && v != ProtocolVersion.V310) Throw.Malformed("reserved connect flag set", v);
        bool cleanStart = (cf & 0x02) != 0;
        bool willFlag = (cf & 0x04) != 0;
        int willQos = (cf >> 3) & 0x03;
        bool willRetain = (cf & 0x20) != 0;
        bool passwordFlag = (cf & 0x40) != 0;
        bool userNameFlag = (cf & 0x80) != 0;
        // MQTT-3.1.2-14 (3.1.1) / MQTT-3.1.2-12 (5.0): Will QoS 3 is malformed.
        if (willQos == 3) Throw.Malformed("will QoS 3", v);
        // MQTT-3.1.2-11/-13/-15 (3.1.1), MQTT-3.1.2-11/-13 (5.0): no will, no will QoS nor will retain.
        if (!willFlag && (willQos != 0 || willRetain)) Throw.Malformed("will QoS or retain without will flag", v);
        // MQTT-3.1.2-22 (3.1.1): a password needs a user name (5.0 allows it alone).
        if (passwordFlag && !userNameFlag && v != ProtocolVersion.V500) Throw.Malformed("password flag without user name flag", v);

        var packet = new ConnectPacket
        {
            ProtocolName = name,
            ProtocolVersion = v,
            IsBridge = bridge,
            CleanStart = cleanStart,
            KeepAlive = r.ReadUInt16(),
        };
        if (v == ProtocolVersion.V500)
        {
            packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.Connect);
            if (packet.Properties is { AuthenticationData: not null, AuthenticationMethod: null })
                Throw.ProtocolError("Authentication Data without Authentication Method", v);
        }

        packet.ClientId = r.ReadString();

        if (willFlag)
        {
            var will = new WillMessage { QoS = (QoS)willQos, Retain = willRetain };
            if (v == ProtocolVersion.V500) will.Properties = PropertyCodec.Read(ref r, PropertyTarget.Will);
            will.Topic = r.ReadString();
            if (!Topics.IsValidTopicName(will.Topic)) Throw.Reason(ReasonCode.TopicNameInvalid, "invalid will topic", v);
            will.Payload = r.ReadBinary();
            packet.Will = will;
        }
        if (userNameFlag) packet.UserName = r.ReadString();
        if (passwordFlag) packet.Password = r.ReadBinary();
        r.ExpectEnd("CONNECT payload");

        if (packet.ClientId.Length == 0)
        {
            // 3.1: the client identifier is 1 to 23 characters; MQTT-3.1.3-8 (3.1.1): a zero-byte identifier
            // needs Clean Session 1. 5.0 lets the server assign one.
            if (v == ProtocolVersion.V310 || (v == ProtocolVersion.V311 && !cleanStart))
                Throw.Reason(ReasonCode.ClientIdentifierNotValid, "empty client identifier", v);
        }
        return packet;
    }

    // ---- CONNACK ----

    private static ConnAckPacket DecodeConnAck(ref MqttReader r, ProtocolVersion version)
    {
        byte ackFlags = r.ReadByte();
        byte code = r.ReadByte();
        var packet = new ConnAckPacket();
        if (version == ProtocolVersion.V500)
        {
            // MQTT-3.2.2-1: bits 7-1 reserved.
            if ((ackFlags & 0xFE) != 0) Throw.Malformed("reserved CONNACK flags set", version);
            if (!ConnAckCodes.Contains(code)) Throw.ProtocolError($"invalid CONNACK reason code 0x{code:X2}", version);
            packet.SessionPresent = (ackFlags & 1) != 0;
            packet.ReasonCode = (ReasonCode)code;
            // MQTT-3.2.2-6: Session Present must be 0 with a failure reason code.
            if (packet.SessionPresent && code >= 0x80) Throw.ProtocolError("Session Present with an error reason code", version);
            packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.ConnAck);
        }
        else
        {
            if (version == ProtocolVersion.V311)
            {
                // MQTT-3.2.2-1 (3.1.1): bits 7-1 reserved. In 3.1 the whole byte is unused.
                if ((ackFlags & 0xFE) != 0) Throw.Malformed("reserved CONNACK flags set", version);
                packet.SessionPresent = (ackFlags & 1) != 0;
            }
            if (code > 5) Throw.Malformed($"reserved CONNACK return code {code}", version);
            // MQTT-3.2.2-4: Session Present must be 0 with a non-zero return code.
            if (packet.SessionPresent && code != 0) Throw.ProtocolError("Session Present with a non-zero return code", version);
            packet.V3ReturnCode = (ConnectReturnCode)code;
            packet.ReasonCode = FromV3ConnAck((ConnectReturnCode)code);
        }
        r.ExpectEnd("CONNACK");
        return packet;
    }

    private static ReasonCode FromV3ConnAck(ConnectReturnCode code) => code switch
    {
        ConnectReturnCode.Accepted => ReasonCode.Success,
        ConnectReturnCode.UnacceptableProtocolVersion => ReasonCode.UnsupportedProtocolVersion,
        ConnectReturnCode.IdentifierRejected => ReasonCode.ClientIdentifierNotValid,
        ConnectReturnCode.BadUserNameOrPassword => ReasonCode.BadUserNameOrPassword,
        ConnectReturnCode.NotAuthorized => ReasonCode.NotAuthorized,
        _ => ReasonCode.ServerUnavailable,
    };

    // ---- PUBLISH and its acknowledgements ----

    private static PublishPacket DecodePublish(ref MqttReader r, int flags, ProtocolVersion version)
    {
        int qos = (flags >> 1) & 0x03;
        // MQTT-3.3.1-4: QoS 3 is malformed.
        if (qos == 3) Throw.Malformed("PUBLISH QoS 3", version);
        bool dup = (flags & 0x08) != 0;
        // MQTT-3.3.1-2: DUP must be 0 for QoS 0.
        if (dup && qos == 0) Throw.Malformed("DUP set on a QoS 0 PUBLISH", version);

        var packet = new PublishPacket
        {
            QoS = (QoS)qos,
            Dup = dup,
            Retain = (flags & 0x01) != 0,
            Topic = r.ReadString(),
        };
        if (qos != 0) packet.PacketId = ReadPacketId(ref r, version);
        if (version == ProtocolVersion.V500) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.Publish);

        var topic = packet.Topic;
        if (topic.Length == 0)
        {
            if (version != ProtocolVersion.V500) Throw.Reason(ReasonCode.TopicNameInvalid, "empty topic name", version);
            // MQTT 5.0 3.3.2.3.4: an empty topic name needs a Topic Alias.
            if (packet.Properties?.TopicAlias is null) Throw.ProtocolError("empty topic name without Topic Alias", version);
        }
        else if (topic.AsSpan().IndexOfAny('+', '#') >= 0)
        {
            // MQTT-3.3.2-2: no wildcards in a topic name.
            Throw.Reason(ReasonCode.TopicNameInvalid, "wildcard in topic name", version);
        }

        int payloadLength = r.Remaining;
        packet.Payload = payloadLength == 0 ? ReadOnlyMemory<byte>.Empty : r.ReadBytes(payloadLength);
        return packet;
    }

    private static PublishAckPacket DecodePublishAck(ref MqttReader r, PacketType type, ProtocolVersion version)
    {
        var packet = new PublishAckPacket(type, ReadPacketId(ref r, version));
        if (version == ProtocolVersion.V500 && !r.End)
        {
            // MQTT 5.0 3.4.2.1: the reason code (and then the properties) may be omitted.
            byte code = r.ReadByte();
            var valid = type is PacketType.PubAck or PacketType.PubRec ? PubAckCodes : PubRelCodes;
            if (!valid.Contains(code)) Throw.ProtocolError($"invalid {type} reason code 0x{code:X2}", version);
            packet.ReasonCode = (ReasonCode)code;
            if (!r.End) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.PubAck);
        }
        r.ExpectEnd("PUBACK/PUBREC/PUBREL/PUBCOMP");
        return packet;
    }

    // ---- SUBSCRIBE / UNSUBSCRIBE and their acknowledgements ----

    private static SubscribePacket DecodeSubscribe(ref MqttReader r, ProtocolVersion version)
    {
        var packet = new SubscribePacket { PacketId = ReadPacketId(ref r, version) };
        if (version == ProtocolVersion.V500) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.Subscribe);
        // MQTT-3.8.3-3 (3.1.1) / MQTT-3.8.3-2 (5.0): at least one filter.
        if (r.End) Throw.ProtocolError("SUBSCRIBE without topic filters", version);
        var list = packet.Subscriptions;
        while (!r.End)
        {
            string filter = r.ReadString();
            byte options = r.ReadByte();
            int qos = options & 0x03;
            TopicSubscription sub;
            if (version == ProtocolVersion.V500)
            {
                // MQTT-3.8.3-5: reserved bits 6-7 must be 0.
                if ((options & 0xC0) != 0) Throw.Malformed("reserved subscription option bits set", version);
                // MQTT 5.0 3.8.3.1: QoS 3 and Retain Handling 3 are Protocol Errors.
                if (qos == 3) Throw.ProtocolError("subscription QoS 3", version);
                int retainHandling = (options >> 4) & 0x03;
                if (retainHandling == 3) Throw.ProtocolError("Retain Handling 3", version);
                sub = new TopicSubscription(filter, (QoS)qos)
                {
                    NoLocal = (options & 0x04) != 0,
                    RetainAsPublished = (options & 0x08) != 0,
                    RetainHandling = (RetainHandling)retainHandling,
                };
            }
            else
            {
                // MQTT-3.8.3-4 (3.1.1): reserved bits must be 0 and QoS 0, 1 or 2.
                if ((options & 0xFC) != 0 || qos == 3) Throw.Malformed("invalid requested QoS byte", version);
                sub = new TopicSubscription(filter, (QoS)qos);
            }
            CheckFilter(filter, version);
            // MQTT-3.8.3-4 (5.0): No Local on a shared subscription is a Protocol Error.
            if (sub.NoLocal && Topics.IsShared(filter)) Throw.ProtocolError("No Local on a shared subscription", version);
            list.Add(sub);
        }
        return packet;
    }

    private static void CheckFilter(string filter, ProtocolVersion version)
    {
        if (filter.Length == 0 || !Topics.IsValidSubscriptionFilter(filter))
            Throw.Reason(ReasonCode.TopicFilterInvalid, "invalid topic filter", version);
    }

    private static UnsubscribePacket DecodeUnsubscribe(ref MqttReader r, ProtocolVersion version)
    {
        var packet = new UnsubscribePacket { PacketId = ReadPacketId(ref r, version) };
        if (version == ProtocolVersion.V500) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.Unsubscribe);
        // MQTT-3.10.3-2: at least one filter.
        if (r.End) Throw.ProtocolError("UNSUBSCRIBE without topic filters", version);
        var list = packet.Filters;
        while (!r.End)
        {
            string filter = r.ReadString();
            CheckFilter(filter, version);
            list.Add(filter);
        }
        return packet;
    }

    private static SubAckPacket DecodeSubAck(ref MqttReader r, ProtocolVersion version)
    {
        var packet = new SubAckPacket { PacketId = ReadPacketId(ref r, version) };
        if (version == ProtocolVersion.V500) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.SubAck);
        if (r.End) Throw.ProtocolError("SUBACK without reason codes", version);
        var codes = version == ProtocolVersion.V500 ? SubAckCodes : V3SubAckCodes;
        while (!r.End)
        {
            byte code = r.ReadByte();
            // MQTT-3.9.3-2 (3.1.1): only 0x00, 0x01, 0x02 and 0x80.
            if (!codes.Contains(code)) Throw.ProtocolError($"invalid SUBACK code 0x{code:X2}", version);
            packet.ReasonCodes.Add((ReasonCode)code);
        }
        return packet;
    }

    private static UnsubAckPacket DecodeUnsubAck(ref MqttReader r, ProtocolVersion version)
    {
        var packet = new UnsubAckPacket { PacketId = ReadPacketId(ref r, version) };
        if (version != ProtocolVersion.V500)
        {
            r.ExpectEnd("UNSUBACK");
            return packet;
        }
        packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.UnsubAck);
        if (r.End) Throw.ProtocolError("UNSUBACK without reason codes", version);
        while (!r.End)
        {
            byte code = r.ReadByte();
            if (!UnsubAckCodes.Contains(code)) Throw.ProtocolError($"invalid UNSUBACK reason code 0x{code:X2}", version);
            packet.ReasonCodes.Add((ReasonCode)code);
        }
        return packet;
    }

    // ---- DISCONNECT / AUTH ----

    private static DisconnectPacket DecodeDisconnect(ref MqttReader r, ProtocolVersion version)
    {
        var packet = new DisconnectPacket();
        if (version == ProtocolVersion.V500 && !r.End)
        {
            // MQTT 5.0 3.14.2.1: a Remaining Length of 0 means reason 0x00 and no properties.
            byte code = r.ReadByte();
            // MQTT-3.14.2-1: one of the DISCONNECT reason codes.
            if (!DisconnectCodes.Contains(code)) Throw.ProtocolError($"invalid DISCONNECT reason code 0x{code:X2}", version);
            packet.ReasonCode = (ReasonCode)code;
            if (!r.End) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.Disconnect);
        }
        // MQTT-3.14.1-1 (3.1.1): no variable header or payload.
        r.ExpectEnd("DISCONNECT");
        return packet;
    }

    private static AuthPacket DecodeAuth(ref MqttReader r, ProtocolVersion version)
    {
        var packet = new AuthPacket();
        if (!r.End)
        {
            byte code = r.ReadByte();
            // MQTT-3.15.2-1: one of the AUTH reason codes.
            if (!AuthCodes.Contains(code)) Throw.ProtocolError($"invalid AUTH reason code 0x{code:X2}", version);
            packet.ReasonCode = (ReasonCode)code;
            if (!r.End) packet.Properties = PropertyCodec.Read(ref r, PropertyTarget.Auth);
        }
        r.ExpectEnd("AUTH");
        return packet;
    }

    // ---- Reason codes allowed per packet (MQTT 5.0 section 2.4 and each packet's table) ----

    private static ReadOnlySpan<byte> ConnAckCodes =>
        [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F];
    private static ReadOnlySpan<byte> PubAckCodes => [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    private static ReadOnlySpan<byte> PubRelCodes => [0x00, 0x92];
    private static ReadOnlySpan<byte> SubAckCodes => [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2];
    private static ReadOnlySpan<byte> V3SubAckCodes => [0x00, 0x01, 0x02, 0x80];
    private static ReadOnlySpan<byte> UnsubAckCodes => [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    private static ReadOnlySpan<byte> DisconnectCodes =>
        [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2];
    private static ReadOnlySpan<byte> AuthCodes => [0x00, 0x18, 0x19];
}
