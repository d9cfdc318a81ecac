using System.Diagnostics.CodeAnalysis;

namespace Midge.Protocol;

/// <summary>
/// Thrown by the decoder for malformed or protocol-violating input. <see cref="Reason"/> is what an MQTT 5
/// peer is told (CONNACK or DISCONNECT); a 3.x peer is simply disconnected (or, for CONNECT, given the mapped
/// CONNACK return code where the spec asks for one).
/// </summary>
public sealed class MqttProtocolException : Exception
{
    public MqttProtocolException(ReasonCode reason, string message, ProtocolVersion? version = null)
        : base(message)
    {
        Reason = reason;
        Version = version;
    }

    public ReasonCode Reason { get; }

    /// <summary>The protocol version when it was known at the point of failure (CONNECT decoding sets it as
    /// soon as the protocol level is read, so the broker can answer with the right CONNACK format).</summary>
    public ProtocolVersion? Version { get; }

    /// <summary>For CONNECT with an unsupported protocol name/level: the raw level byte seen.</summary>
    public byte? RawProtocolLevel { get; init; }

    [DoesNotReturn]
    public static void Throw(ReasonCode reason, string message, ProtocolVersion? version = null) =>
        throw new MqttProtocolException(reason, message, version);

    [DoesNotReturn]
    public static void Malformed(string message, ProtocolVersion? version = null) =>
        throw new MqttProtocolException(ReasonCode.MalformedPacket, message, version);

    [DoesNotReturn]
    public static void ProtocolError(string message, ProtocolVersion? version = null) =>
        throw new MqttProtocolException(ReasonCode.ProtocolError, message, version);
}
