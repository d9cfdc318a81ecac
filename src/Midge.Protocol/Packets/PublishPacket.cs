namespace Midge.Protocol.Packets;

/// <summary>
/// A PUBLISH as received. The broker shares one instance (and its payload) between every subscriber; what
/// differs per subscriber (packet id, QoS, retain, DUP, topic alias, subscription identifiers, remaining
/// expiry) is passed to <see cref="PacketEncoder.WritePublish"/> at encode time.
/// </summary>
public sealed class PublishPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.Publish;
    public string Topic { get; set; } = "";
    public ReadOnlyMemory<byte> Payload { get; set; }
    public QoS QoS { get; set; }
    public bool Retain { get; set; }
    public bool Dup { get; set; }
    /// <summary>0 for QoS 0.</summary>
    public ushort PacketId { get; set; }
}

/// <summary>PUBACK, PUBREC, PUBREL or PUBCOMP: a packet id, and for MQTT 5 a reason code and properties.</summary>
public sealed class PublishAckPacket : MqttPacketWithProperties
{
    public PublishAckPacket(PacketType type, ushort packetId, ReasonCode reasonCode = ReasonCode.Success)
    {
        if (type is not (PacketType.PubAck or PacketType.PubRec or PacketType.PubRel or PacketType.PubComp))
            throw new ArgumentOutOfRangeException(nameof(type));
        Type = type;
        PacketId = packetId;
        ReasonCode = reasonCode;
    }

    public override PacketType Type { get; }
    public ushort PacketId { get; set; }
    public ReasonCode ReasonCode { get; set; }
}
