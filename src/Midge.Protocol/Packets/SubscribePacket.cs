namespace Midge.Protocol.Packets;

/// <summary>One topic filter of a SUBSCRIBE with its options.</summary>
public sealed record class TopicSubscription(string Filter, QoS QoS)
{
    public bool NoLocal { get; init; }
    public bool RetainAsPublished { get; init; }
    public RetainHandling RetainHandling { get; init; }
}

public sealed class SubscribePacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.Subscribe;
    public ushort PacketId { get; set; }
    public List<TopicSubscription> Subscriptions { get; set; } = [];
}

public sealed class SubAckPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.SubAck;
    public ushort PacketId { get; set; }
    /// <summary>Granted QoS (0, 1, 2) or failure (0x80, and the MQTT 5 error codes), one per filter.</summary>
    public List<ReasonCode> ReasonCodes { get; set; } = [];
}

public sealed class UnsubscribePacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.Unsubscribe;
    public ushort PacketId { get; set; }
    public List<string> Filters { get; set; } = [];
}

public sealed class UnsubAckPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.UnsubAck;
    public ushort PacketId { get; set; }
    /// <summary>MQTT 5 only (3.x UNSUBACK has no payload).</summary>
    public List<ReasonCode> ReasonCodes { get; set; } = [];
}
