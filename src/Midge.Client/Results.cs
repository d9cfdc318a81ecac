using Midge.Protocol;

namespace Midge.Client;

/// <summary>The server's CONNACK.</summary>
public sealed record ConnectResult(ReasonCode ReasonCode, bool SessionPresent, MqttProperties? Properties)
{
    /// <summary>The 3.x return code as received (null for MQTT 5).</summary>
    public ConnectReturnCode? V3ReturnCode { get; init; }
    public bool IsSuccess => ReasonCode == ReasonCode.Success;
    /// <summary>The client id in use: the one sent, or the server's Assigned Client Identifier.</summary>
    public string ClientId { get; init; } = "";
}

/// <summary>How a publish ended: for QoS 0, written; QoS 1, PUBACK; QoS 2, PUBCOMP (or an error PUBREC).</summary>
public readonly record struct PublishResult(ReasonCode ReasonCode, ushort PacketId, MqttProperties? Properties = null)
{
    public bool IsSuccess => !ReasonCodes.IsError(ReasonCode);
}

/// <summary>SUBACK: one reason code (granted QoS or error) per filter, in order.</summary>
public sealed record SubscribeResult(IReadOnlyList<ReasonCode> ReasonCodes, MqttProperties? Properties);

/// <summary>UNSUBACK: MQTT 5 reason codes (3.x: Success for each filter).</summary>
public sealed record UnsubscribeResult(IReadOnlyList<ReasonCode> ReasonCodes, MqttProperties? Properties);

/// <summary>A message from the server, with its topic alias already resolved.</summary>
public sealed class ReceivedMessage
{
    public required string Topic { get; init; }
    public ReadOnlyMemory<byte> Payload { get; init; }
    public QoS QoS { get; init; }
    public bool Retain { get; init; }
    public bool Dup { get; init; }
    /// <summary>0 for QoS 0.</summary>
    public ushort PacketId { get; init; }
    /// <summary>MQTT 5 properties (null for 3.x or when none were sent).</summary>
    public MqttProperties? Properties { get; init; }

    /// <summary>The message a PUBLISH carries, under <paramref name="topic"/> (its topic alias resolved).</summary>
    public static ReceivedMessage From(Midge.Protocol.Packets.PublishPacket publish, string topic) => new()
    {
        Topic = topic,
        Payload = publish.Payload,
        QoS = publish.QoS,
        Retain = publish.Retain,
        Dup = publish.Dup,
        PacketId = publish.PacketId,
        Properties = publish.Properties,
    };
}

/// <summary>Why a connection ended.</summary>
public sealed class MqttDisconnectedEventArgs : EventArgs
{
    /// <summary>The reason code of the server's DISCONNECT (MQTT 5), of the client's own DISCONNECT, or the
    /// client's diagnosis (<see cref="ReasonCode.KeepAliveTimeout"/>, <see cref="ReasonCode.UnspecifiedError"/>
    /// for a closed socket).</summary>
    public ReasonCode ReasonCode { get; init; }
    /// <summary>True when the server sent DISCONNECT.</summary>
    public bool ByServer { get; init; }
    /// <summary>True when the application called DisconnectAsync or disposed the client.</summary>
    public bool ByClient { get; init; }
    public MqttProperties? Properties { get; init; }
    public Exception? Exception { get; init; }
    /// <summary>True when the client will try to reconnect.</summary>
    public bool WillReconnect { get; init; }
}

/// <summary>A client-side failure (not connected, disposed, limits of the server).</summary>
public class MqttClientException : Exception
{
    public MqttClientException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The server refused the connection.</summary>
public sealed class MqttConnectException : MqttClientException
{
    public MqttConnectException(ConnectResult result)
        : base($"Connection refused: {result.ReasonCode} (0x{(byte)result.ReasonCode:X2})") => Result = result;

    public ConnectResult Result { get; }
}

/// <summary>The connection was lost before an operation completed.</summary>
public sealed class MqttConnectionLostException : MqttClientException
{
    public MqttConnectionLostException(string message, Exception? inner = null) : base(message, inner) { }
}
