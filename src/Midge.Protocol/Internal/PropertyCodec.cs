namespace Midge.Protocol.Internal;

/// <summary>Where a property list sits; a property is allowed only where MQTT 5.0 section 2.2.2.2 says.</summary>
[Flags]
internal enum PropertyTarget : ushort
{
    None = 0,
    Connect = 1 << 0,
    ConnAck = 1 << 1,
    Publish = 1 << 2,
    Will = 1 << 3,
    /// <summary>PUBACK, PUBREC, PUBREL and PUBCOMP.</summary>
    PubAck = 1 << 4,
    Subscribe = 1 << 5,
    SubAck = 1 << 6,
    Unsubscribe = 1 << 7,
    UnsubAck = 1 << 8,
    Disconnect = 1 << 9,
    Auth = 1 << 10,
}

/// <summary>Reads and writes MQTT 5 property lists (section 2.2.2).</summary>
internal static class PropertyCodec
{
    private const PropertyTarget Acks = PropertyTarget.PubAck;
    private const PropertyTarget AllWithReasonString = PropertyTarget.ConnAck | Acks | PropertyTarget.SubAck
        | PropertyTarget.UnsubAck | PropertyTarget.Disconnect | PropertyTarget.Auth;
    private const PropertyTarget AllWithUserProperty = PropertyTarget.Connect | PropertyTarget.ConnAck
        | PropertyTarget.Publish | PropertyTarget.Will | Acks | PropertyTarget.Subscribe | PropertyTarget.SubAck
        | PropertyTarget.Unsubscribe | PropertyTarget.UnsubAck | PropertyTarget.Disconnect | PropertyTarget.Auth;
    private const PropertyTarget Message = PropertyTarget.Publish | PropertyTarget.Will;

    /// <summary>The table of section 2.2.2.2, indexed by property identifier.</summary>
    private static readonly PropertyTarget[] Allowed = BuildTable();

    private static PropertyTarget[] BuildTable()
    {
        var t = new PropertyTarget[0x2B];
        t[(int)PropertyId.PayloadFormatIndicator] = Message;
        t[(int)PropertyId.MessageExpiryInterval] = Message;
        t[(int)PropertyId.ContentType] = Message;
        t[(int)PropertyId.ResponseTopic] = Message;
        t[(int)PropertyId.CorrelationData] = Message;
        t[(int)PropertyId.SubscriptionIdentifier] = PropertyTarget.Publish | PropertyTarget.Subscribe;
        t[(int)PropertyId.SessionExpiryInterval] = PropertyTarget.Connect | PropertyTarget.ConnAck | PropertyTarget.Disconnect;
        t[(int)PropertyId.AssignedClientIdentifier] = PropertyTarget.ConnAck;
        t[(int)PropertyId.ServerKeepAlive] = PropertyTarget.ConnAck;
        t[(int)PropertyId.AuthenticationMethod] = PropertyTarget.Connect | PropertyTarget.ConnAck | PropertyTarget.Auth;
        t[(int)PropertyId.AuthenticationData] = PropertyTarget.Connect | PropertyTarget.ConnAck | PropertyTarget.Auth;
        t[(int)PropertyId.RequestProblemInformation] = PropertyTarget.Connect;
        t[(int)PropertyId.WillDelayInterval] = PropertyTarget.Will;
        t[(int)PropertyId.RequestResponseInformation] = PropertyTarget.Connect;
        t[(int)PropertyId.ResponseInformation] = PropertyTarget.ConnAck;
        t[(int)PropertyId.ServerReference] = PropertyTarget.ConnAck | PropertyTarget.Disconnect;
        t[(int)PropertyId.ReasonString] = AllWithReasonString;
        t[(int)PropertyId.ReceiveMaximum] = PropertyTarget.Connect | PropertyTarget.ConnAck;
        t[(int)PropertyId.TopicAliasMaximum] = PropertyTarget.Connect | PropertyTarget.ConnAck;
        t[(int)PropertyId.TopicAlias] = PropertyTarget.Publish;
        t[(int)PropertyId.MaximumQoS] = PropertyTarget.ConnAck;
        t[(int)PropertyId.RetainAvailable] = PropertyTarget.ConnAck;
        t[(int)PropertyId.UserProperty] = AllWithUserProperty;
        t[(int)PropertyId.MaximumPacketSize] = PropertyTarget.Connect | PropertyTarget.ConnAck;
        t[(int)PropertyId.WildcardSubscriptionAvailable] = PropertyTarget.ConnAck;
        t[(int)PropertyId.SubscriptionIdentifierAvailable] = PropertyTarget.ConnAck;
        t[(int)PropertyId.SharedSubscriptionAvailable] = PropertyTarget.ConnAck;
        return t;
    }

    /// <summary>
    /// Reads a property length and the properties. Returns null when the length is 0.
    /// Malformed Packet: unknown identifier, identifier not allowed in <paramref name="target"/>, length overrun.
    /// Protocol Error: a single-valued property twice, or a value out of its range.
    /// </summary>
    public static MqttProperties? Read(ref MqttReader r, PropertyTarget target)
    {
        uint length = r.ReadVarInt();
        if (length == 0) return null;
        if (length > (uint)r.Remaining) Throw.Malformed("property length exceeds the packet", r.Version);
        int end = r.Consumed + (int)length;
        var p = new MqttProperties();
        ulong seen = 0;
        while (r.Consumed < end)
        {
            // The identifier is a Variable Byte Integer; every defined identifier fits in one byte, so any byte
            // with the continuation bit is an unknown identifier anyway.
            byte id = r.ReadByte();
            if (id >= Allowed.Length || (Allowed[id] & target) == 0)
                Throw.Malformed($"property 0x{id:X2} is not allowed here", r.Version);
            bool repeatable = id == (byte)PropertyId.UserProperty
                || (id == (byte)PropertyId.SubscriptionIdentifier && target == PropertyTarget.Publish);
            if (!repeatable)
            {
                ulong bit = 1UL << id;
                if ((seen & bit) != 0) Throw.ProtocolError($"property 0x{id:X2} included more than once", r.Version);
                seen |= bit;
            }
            ReadOne(ref r, (PropertyId)id, target, p);
            if (r.Consumed > end) Throw.Malformed("property overruns the property length", r.Version);
        }
        return p;
    }

    private static void ReadOne(ref MqttReader r, PropertyId id, PropertyTarget target, MqttProperties p)
    {
        switch (id)
        {
            case PropertyId.PayloadFormatIndicator:
                p.PayloadFormatIndicator = ReadFlag(ref r, "Payload Format Indicator");
                break;
            case PropertyId.MessageExpiryInterval:
                p.MessageExpiryInterval = r.ReadUInt32();
                break;
            case PropertyId.ContentType:
                p.ContentType = r.ReadString();
                break;
            case PropertyId.ResponseTopic:
                var responseTopic = r.ReadString();
                // MQTT-3.3.2-14: the Response Topic is a Topic Name, so no wildcards and not empty.
                if (!Topics.IsValidTopicName(responseTopic))
                    Throw.ProtocolError("Response Topic is not a valid topic name", r.Version);
                p.ResponseTopic = responseTopic;
                break;
            case PropertyId.CorrelationData:
                p.CorrelationData = r.ReadBinary();
                break;
            case PropertyId.SubscriptionIdentifier:
                uint subId = r.ReadVarInt();
                if (subId == 0) Throw.ProtocolError("Subscription Identifier 0", r.Version);
                (p.SubscriptionIdentifiers ??= []).Add(subId);
                break;
            case PropertyId.SessionExpiryInterval:
                p.SessionExpiryInterval = r.ReadUInt32();
                break;
            case PropertyId.AssignedClientIdentifier:
                p.AssignedClientIdentifier = r.ReadString();
                break;
            case PropertyId.ServerKeepAlive:
                p.ServerKeepAlive = r.ReadUInt16();
                break;
            case PropertyId.AuthenticationMethod:
                p.AuthenticationMethod = r.ReadString();
                break;
            case PropertyId.AuthenticationData:
                p.AuthenticationData = r.ReadBinary();
                break;
            case PropertyId.RequestProblemInformation:
                p.RequestProblemInformation = ReadFlag(ref r, "Request Problem Information");
                break;
            case PropertyId.WillDelayInterval:
                p.WillDelayInterval = r.ReadUInt32();
                break;
            case PropertyId.RequestResponseInformation:
                p.RequestResponseInformation = ReadFlag(ref r, "Request Response Information");
                break;
            case PropertyId.ResponseInformation:
                p.ResponseInformation = r.ReadString();
                break;
            case PropertyId.ServerReference:
                p.ServerReference = r.ReadString();
                break;
            case PropertyId.ReasonString:
                p.ReasonString = r.ReadString();
                break;
            case PropertyId.ReceiveMaximum:
                ushort receiveMaximum = r.ReadUInt16();
                if (receiveMaximum == 0) Throw.ProtocolError("Receive Maximum 0", r.Version);
                p.ReceiveMaximum = receiveMaximum;
                break;
            case PropertyId.TopicAliasMaximum:
                p.TopicAliasMaximum = r.ReadUInt16();
                break;
            case PropertyId.TopicAlias:
                ushort alias = r.ReadUInt16();
                // MQTT-3.3.2-8: a Topic Alias of 0 is not permitted.
                if (alias == 0) Throw.Reason(ReasonCode.TopicAliasInvalid, "Topic Alias 0", r.Version);
                p.TopicAlias = alias;
                break;
            case PropertyId.MaximumQoS:
                p.MaximumQoS = ReadFlag(ref r, "Maximum QoS");
                break;
            case PropertyId.RetainAvailable:
                p.RetainAvailable = ReadFlag(ref r, "Retain Available");
                break;
            case PropertyId.UserProperty:
                string name = r.ReadString();
                string value = r.ReadString();
                (p.UserProperties ??= []).Add(new UserProperty(name, value));
                break;
            case PropertyId.MaximumPacketSize:
                uint maximumPacketSize = r.ReadUInt32();
                if (maximumPacketSize == 0) Throw.ProtocolError("Maximum Packet Size 0", r.Version);
                p.MaximumPacketSize = maximumPacketSize;
                break;
            case PropertyId.WildcardSubscriptionAvailable:
                p.WildcardSubscriptionAvailable = ReadFlag(ref r, "Wildcard Subscription Available");
                break;
            case PropertyId.SubscriptionIdentifierAvailable:
                p.SubscriptionIdentifierAvailable = ReadFlag(ref r, "Subscription Identifier Available");
                break;
            case PropertyId.SharedSubscriptionAvailable:
                p.SharedSubscriptionAvailable = ReadFlag(ref r, "Shared Subscription Available");
                break;
            default:
                Throw.Malformed($"unknown property 0x{(byte)id:X2}", r.Version);
                break;
        }
    }

    /// <summary>A byte property whose only values are 0 and 1; anything else is a Protocol Error.</summary>
    private static byte ReadFlag(ref MqttReader r, string name)
    {
        byte b = r.ReadByte();
        if (b > 1) Throw.ProtocolError(name + " must be 0 or 1", r.Version);
        return b;
    }

    /// <summary>The size of the property list content (without its length prefix).</summary>
    public static int ContentSize(MqttProperties? p)
    {
        if (p is null) return 0;
        int size = 0;
        if (p.PayloadFormatIndicator.HasValue) size += 2;
        if (p.MessageExpiryInterval.HasValue) size += 5;
        if (p.ContentType is not null) size += 1 + MqttWriter.StringSize(p.ContentType);
        if (p.ResponseTopic is not null) size += 1 + MqttWriter.StringSize(p.ResponseTopic);
        if (p.CorrelationData is not null) size += 3 + p.CorrelationData.Length;
        if (p.SubscriptionIdentifiers is { } ids)
        {
            foreach (var id in ids) size += 1 + MqttWriter.VarIntSize(id);
        }
        if (p.SessionExpiryInterval.HasValue) size += 5;
        if (p.AssignedClientIdentifier is not null) size += 1 + MqttWriter.StringSize(p.AssignedClientIdentifier);
        if (p.ServerKeepAlive.HasValue) size += 3;
        if (p.AuthenticationMethod is not null) size += 1 + MqttWriter.StringSize(p.AuthenticationMethod);
        if (p.AuthenticationData is not null) size += 3 + p.AuthenticationData.Length;
        if (p.RequestProblemInformation.HasValue) size += 2;
        if (p.WillDelayInterval.HasValue) size += 5;
        if (p.RequestResponseInformation.HasValue) size += 2;
        if (p.ResponseInformation is not null) size += 1 + MqttWriter.StringSize(p.ResponseInformation);
        if (p.ServerReference is not null) size += 1 + MqttWriter.StringSize(p.ServerReference);
        if (p.ReasonString is not null) size += 1 + MqttWriter.StringSize(p.ReasonString);
        if (p.ReceiveMaximum.HasValue) size += 3;
        if (p.TopicAliasMaximum.HasValue) size += 3;
        if (p.TopicAlias.HasValue) size += 3;
        if (p.MaximumQoS.HasValue) size += 2;
        if (p.RetainAvailable.HasValue) size += 2;
        if (p.UserProperties is { } users)
        {
            foreach (var u in users) size += 1 + MqttWriter.StringSize(u.Name) + MqttWriter.StringSize(u.Value);
        }
        if (p.MaximumPacketSize.HasValue) size += 5;
        if (p.WildcardSubscriptionAvailable.HasValue) size += 2;
        if (p.SubscriptionIdentifierAvailable.HasValue) size += 2;
        if (p.SharedSubscriptionAvailable.HasValue) size += 2;
        return size;
    }

    /// <summary>Writes the property list content (without its length prefix), in identifier order.</summary>
    public static void WriteContent(ref MqttWriter w, MqttProperties? p)
    {
        if (p is null) return;
        if (p.PayloadFormatIndicator is { } pfi) WriteByteProperty(ref w, PropertyId.PayloadFormatIndicator, pfi);
        if (p.MessageExpiryInterval is { } mei) WriteUInt32Property(ref w, PropertyId.MessageExpiryInterval, mei);
        if (p.ContentType is { } ct) WriteStringProperty(ref w, PropertyId.ContentType, ct);
        if (p.ResponseTopic is { } rt) WriteStringProperty(ref w, PropertyId.ResponseTopic, rt);
        if (p.CorrelationData is { } cd) WriteBinaryProperty(ref w, PropertyId.CorrelationData, cd);
        if (p.SubscriptionIdentifiers is { } ids)
        {
            foreach (var id in ids) WriteSubscriptionIdentifier(ref w, id);
        }
        if (p.SessionExpiryInterval is { } sei) WriteUInt32Property(ref w, PropertyId.SessionExpiryInterval, sei);
        if (p.AssignedClientIdentifier is { } aci) WriteStringProperty(ref w, PropertyId.AssignedClientIdentifier, aci);
        if (p.ServerKeepAlive is { } ska) WriteUInt16Property(ref w, PropertyId.ServerKeepAlive, ska);
        if (p.AuthenticationMethod is { } am) WriteStringProperty(ref w, PropertyId.AuthenticationMethod, am);
        if (p.AuthenticationData is { } ad) WriteBinaryProperty(ref w, PropertyId.AuthenticationData, ad);
        if (p.RequestProblemInformation is { } rpi) WriteByteProperty(ref w, PropertyId.RequestProblemInformation, rpi);
        if (p.WillDelayInterval is { } wdi) WriteUInt32Property(ref w, PropertyId.WillDelayInterval, wdi);
        if (p.RequestResponseInformation is { } rri) WriteByteProperty(ref w, PropertyId.RequestResponseInformation, rri);
        if (p.ResponseInformation is { } ri) WriteStringProperty(ref w, PropertyId.ResponseInformation, ri);
        if (p.ServerReference is { } sr) WriteStringProperty(ref w, PropertyId.ServerReference, sr);
        if (p.ReasonString is { } rs) WriteStringProperty(ref w, PropertyId.ReasonString, rs);
        if (p.ReceiveMaximum is { } rm) WriteUInt16Property(ref w, PropertyId.ReceiveMaximum, rm);
        if (p.TopicAliasMaximum is { } tam) WriteUInt16Property(ref w, PropertyId.TopicAliasMaximum, tam);
        if (p.TopicAlias is { } ta) WriteUInt16Property(ref w, PropertyId.TopicAlias, ta);
        if (p.MaximumQoS is { } mq) WriteByteProperty(ref w, PropertyId.MaximumQoS, mq);
        if (p.RetainAvailable is { } ra) WriteByteProperty(ref w, PropertyId.RetainAvailable, ra);
        if (p.UserProperties is { } users)
        {
            foreach (var u in users)
            {
                w.WriteByte((byte)PropertyId.UserProperty);
                w.WriteString(u.Name);
                w.WriteString(u.Value);
            }
        }
        if (p.MaximumPacketSize is { } mps) WriteUInt32Property(ref w, PropertyId.MaximumPacketSize, mps);
        if (p.WildcardSubscriptionAvailable is { } wsa) WriteByteProperty(ref w, PropertyId.WildcardSubscriptionAvailable, wsa);
        if (p.SubscriptionIdentifierAvailable is { } sia) WriteByteProperty(ref w, PropertyId.SubscriptionIdentifierAvailable, sia);
        if (p.SharedSubscriptionAvailable is { } ssa) WriteByteProperty(ref w, PropertyId.SharedSubscriptionAvailable, ssa);
    }

    public static void WriteByteProperty(ref MqttWriter w, PropertyId id, byte value)
    {
        w.WriteByte((byte)id);
        w.WriteByte(value);
    }

    public static void WriteUInt16Property(ref MqttWriter w, PropertyId id, ushort value)
    {
        w.WriteByte((byte)id);
        w.WriteUInt16(value);
    }

    public static void WriteUInt32Property(ref MqttWriter w, PropertyId id, uint value)
    {
        w.WriteByte((byte)id);
        w.WriteUInt32(value);
    }

    public static void WriteStringProperty(ref MqttWriter w, PropertyId id, string value)
    {
        w.WriteByte((byte)id);
        w.WriteString(value);
    }

    public static void WriteBinaryProperty(ref MqttWriter w, PropertyId id, byte[] value)
    {
        w.WriteByte((byte)id);
        w.WriteBinary(value);
    }

    public static void WriteSubscriptionIdentifier(ref MqttWriter w, uint id)
    {
        w.WriteByte((byte)PropertyId.SubscriptionIdentifier);
        w.WriteVarInt(id);
    }
}
