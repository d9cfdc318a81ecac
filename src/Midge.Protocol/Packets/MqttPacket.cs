namespace Midge.Protocol.Packets;

/// <summary>Base of every decoded or to-be-encoded control packet.</summary>
public abstract class MqttPacket
{
    public abstract PacketType Type { get; }
}

/// <summary>A packet that may carry MQTT 5 properties (null for 3.x or when none were sent).</summary>
public abstract class MqttPacketWithProperties : MqttPacket
{
    public MqttProperties? Properties { get; set; }

    public MqttProperties GetOrCreateProperties() => Properties ??= new MqttProperties();
}
