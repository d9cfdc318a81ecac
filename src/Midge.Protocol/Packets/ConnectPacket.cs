namespace Midge.Protocol.Packets;

public sealed class ConnectPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.Connect;

    /// <summary>"MQTT" for 3.1.1/5.0, "MQIsdp" for 3.1.</summary>
    public string ProtocolName { get; set; } = "MQTT";
    public ProtocolVersion ProtocolVersion { get; set; } = ProtocolVersion.V311;
    /// <summary>Bridge marker: the protocol level byte had bit 7 set (Mosquitto's <c>try_private</c>, e.g.
    /// 0x84). Decoded from, and encoded into, the level byte.</summary>
    public bool IsBridge { get; set; }
    /// <summary>Clean Session (3.x) / Clean Start (5.0).</summary>
    public bool CleanStart { get; set; } = true;
    public ushort KeepAlive { get; set; }
    public string ClientId { get; set; } = "";
    public string? UserName { get; set; }
    public byte[]? Password { get; set; }
    /// <summary>The will message, or null when the Will Flag is 0.</summary>
    public WillMessage? Will { get; set; }
}

public sealed class WillMessage
{
    public string Topic { get; set; } = "";
    public ReadOnlyMemory<byte> Payload { get; set; }
    public QoS QoS { get; set; }
    public bool Retain { get; set; }
    /// <summary>MQTT 5 will properties (Will Delay Interval, Message Expiry, Content Type, ...).</summary>
    public MqttProperties? Properties { get; set; }
}

public sealed class ConnAckPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.ConnAck;
    public bool SessionPresent { get; set; }
    /// <summary>The MQTT 5 reason code; for 3.x it is mapped with <see cref="ReasonCodes.ToV3ConnAck"/> on encode
    /// unless <see cref="V3ReturnCode"/> is set.</summary>
    public ReasonCode ReasonCode { get; set; }
    /// <summary>Explicit 3.x return code (decoded from a 3.x CONNACK, or forced on encode).</summary>
    public ConnectReturnCode? V3ReturnCode { get; set; }
}
