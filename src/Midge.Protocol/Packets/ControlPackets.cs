namespace Midge.Protocol.Packets;

public sealed class PingReqPacket : MqttPacket
{
    public static readonly PingReqPacket Instance = new();
    public override PacketType Type => PacketType.PingReq;
}

public sealed class PingRespPacket : MqttPacket
{
    public static readonly PingRespPacket Instance = new();
    public override PacketType Type => PacketType.PingResp;
}

public sealed class DisconnectPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.Disconnect;
    public ReasonCode ReasonCode { get; set; } = ReasonCode.NormalDisconnection;
}

public sealed class AuthPacket : MqttPacketWithProperties
{
    public override PacketType Type => PacketType.Auth;
    public ReasonCode ReasonCode { get; set; } = ReasonCode.Success;
}
