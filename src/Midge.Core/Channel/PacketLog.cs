using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Channel;

/// <summary>
/// Mosquitto 2.0's per-packet lines (<c>log_type debug</c>, <c>-v</c>): "Received PUBLISH from c (d0, q1, r0, m1,
/// 't', ... (5 bytes))", "Sending PUBACK to c (m1, rc0)", the filters of a SUBSCRIBE and an UNSUBSCRIBE, the will
/// of a CONNECT. The transport calls <see cref="Received"/> for each packet it decoded and <see cref="Sending"/>
/// for each it encodes, only after <see cref="IsEnabled"/> said yes, so that with debug off nothing is formatted.
/// A client is named by its client id, or before CONNECT succeeded by its address (as Mosquitto does).
/// Event ids 5xxx.
/// </summary>
public static partial class PacketLog
{
    /// <summary>
    /// Whether the lines are wanted: the configuration (re-read on SIGHUP) has <c>log_type debug</c>, and the logger
    /// takes debug lines. With debug off this is one field read and a test, so the caller checks it on every
    /// packet (or once per received buffer) rather than keeping a copy that a reload would leave stale.
    /// </summary>
    public static bool IsEnabled(Broker broker) =>
        (broker.Config.LogTypes & LogTypes.Debug) != 0 && broker.Logger.IsEnabled(LogLevel.Debug);

    /// <summary>A packet read from <paramref name="client"/>. A CONNECT has no line of its own: Mosquitto says
    /// "New client connected ..." (notice) and then the will (<see cref="Connected"/>).</summary>
    public static void Received(Broker broker, string client, MqttPacket packet)
    {
        var logger = broker.Logger;
        switch (packet)
        {
            case ConnectPacket:
                break;
            case PublishPacket p:
                ReceivedPublish(logger, client, Bit(p.Dup), (int)p.QoS, Bit(p.Retain), p.PacketId, p.Topic, p.Payload.Length);
                break;
            case PublishAckPacket { Type: PacketType.PubAck or PacketType.PubComp } ack:
                ReceivedAckWithReason(logger, Name(ack.Type), client, ack.PacketId, (int)ack.ReasonCode);
                break;
            case PublishAckPacket ack:
                ReceivedAck(logger, Name(ack.Type), client, ack.PacketId);
                break;
            case AuthPacket auth:
                ReceivedAuth(logger, client, (int)auth.ReasonCode, auth.Properties?.AuthenticationMethod ?? "");
                break;
            default:
                ReceivedPacket(logger, Name(packet.Type), client); // SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT
                break;
        }
    }

    /// <summary>A packet about to be written to <paramref name="client"/> (<paramref name="version"/>: the
    /// connection's, which decides how a CONNACK's code is written).</summary>
    public static void Sending(Broker broker, string client, ProtocolVersion version, MqttPacket packet)
    {
        var logger = broker.Logger;
        switch (packet)
        {
            case ConnAckPacket connack:
                int code = version == ProtocolVersion.V500
                    ? (int)connack.ReasonCode
                    : (int)(connack.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(connack.ReasonCode));
                SendingConnAck(logger, client, Bit(connack.SessionPresent), code);
                break;
            case PublishPacket p:
                SendingPublish(logger, client, Bit(p.Dup), (int)p.QoS, Bit(p.Retain), p.PacketId, p.Topic, p.Payload.Length);
                break;
            case PublishAckPacket { Type: PacketType.PubAck or PacketType.PubRec } ack:
                SendingAckWithReason(logger, Name(ack.Type), client, ack.PacketId, (int)ack.ReasonCode);
                break;
            case PublishAckPacket ack:
                SendingAck(logger, Name(ack.Type), client, ack.PacketId);
                break;
            case DisconnectPacket disconnect:
                SendingDisconnect(logger, client, (int)disconnect.ReasonCode);
                break;
            case AuthPacket auth:
                SendingAuth(logger, client, (int)auth.ReasonCode, auth.Properties?.AuthenticationMethod ?? "");
                break;
            default:
                SendingPacket(logger, Name(packet.Type), client); // SUBACK, UNSUBACK, PINGRESP
                break;
        }
    }

    /// <summary>A message about to be written to <paramref name="client"/> with the fields of this delivery (its
    /// topic as the client sees it, before any topic alias).</summary>
    public static void SendingPublish(Broker broker, string client, Message message, in OutgoingPublish fields) =>
        SendingPublish(broker.Logger, client, Bit(fields.Dup), (int)fields.QoS, Bit(fields.Retain), fields.PacketId,
            message.Topic[fields.TopicStart..], message.PayloadLength);

    /// <summary>After a CONNECT was accepted: its will, or that it has none.</summary>
    public static void Connected(Broker broker, WillMessage? will)
    {
        if (will is null)
        {
            NoWill(broker.Logger);
            return;
        }
        Will(broker.Logger, will.Payload.Length, Bit(will.Retain), (int)will.QoS);
        Filter(broker.Logger, will.Topic);
    }

    /// <summary>One filter of a SUBSCRIBE as it was asked for, before the broker decides on it.</summary>
    internal static void Subscribing(Broker broker, string filter, QoS qos)
    {
        if (IsEnabled(broker)) SubscribeFilter(broker.Logger, filter, (int)qos);
    }

    /// <summary>One filter of an UNSUBSCRIBE.</summary>
    internal static void Unsubscribing(Broker broker, string filter)
    {
        if (IsEnabled(broker)) Filter(broker.Logger, filter);
    }

    private static int Bit(bool value) => value ? 1 : 0;

    private static string Name(PacketType type) => type switch
    {
        PacketType.Connect => "CONNECT",
        PacketType.ConnAck => "CONNACK",
        PacketType.Publish => "PUBLISH",
        PacketType.PubAck => "PUBACK",
        PacketType.PubRec => "PUBREC",
        PacketType.PubRel => "PUBREL",
        PacketType.PubComp => "PUBCOMP",
        PacketType.Subscribe => "SUBSCRIBE",
        PacketType.SubAck => "SUBACK",
        PacketType.Unsubscribe => "UNSUBSCRIBE",
        PacketType.UnsubAck => "UNSUBACK",
        PacketType.PingReq => "PINGREQ",
        PacketType.PingResp => "PINGRESP",
        PacketType.Disconnect => "DISCONNECT",
        PacketType.Auth => "AUTH",
        _ => "UNKNOWN",
    };

    [LoggerMessage(5001, LogLevel.Debug, "Received {Packet} from {ClientId}")]
    private static partial void ReceivedPacket(ILogger logger, string packet, string clientId);

    [LoggerMessage(5002, LogLevel.Debug, "Received PUBLISH from {ClientId} (d{Dup}, q{QoS}, r{Retain}, m{PacketId}, '{Topic}', ... ({Length} bytes))")]
    private static partial void ReceivedPublish(ILogger logger, string clientId, int dup, int qoS, int retain, int packetId, string topic, int length);

    [LoggerMessage(5003, LogLevel.Debug, "Received {Packet} from {ClientId} (Mid: {PacketId}, RC:{ReasonCode})")]
    private static partial void ReceivedAckWithReason(ILogger logger, string packet, string clientId, int packetId, int reasonCode);

    [LoggerMessage(5004, LogLevel.Debug, "Received {Packet} from {ClientId} (Mid: {PacketId})")]
    private static partial void ReceivedAck(ILogger logger, string packet, string clientId, int packetId);

    [LoggerMessage(5005, LogLevel.Debug, "Received AUTH from {ClientId} (rc{ReasonCode}, {Method})")]
    private static partial void ReceivedAuth(ILogger logger, string clientId, int reasonCode, string method);

    [LoggerMessage(5011, LogLevel.Debug, "Sending {Packet} to {ClientId}")]
    private static partial void SendingPacket(ILogger logger, string packet, string clientId);

    [LoggerMessage(5012, LogLevel.Debug, "Sending PUBLISH to {ClientId} (d{Dup}, q{QoS}, r{Retain}, m{PacketId}, '{Topic}', ... ({Length} bytes))")]
    private static partial void SendingPublish(ILogger logger, string clientId, int dup, int qoS, int retain, int packetId, string topic, int length);

    [LoggerMessage(5013, LogLevel.Debug, "Sending {Packet} to {ClientId} (m{PacketId}, rc{ReasonCode})")]
    private static partial void SendingAckWithReason(ILogger logger, string packet, string clientId, int packetId, int reasonCode);

    [LoggerMessage(5014, LogLevel.Debug, "Sending {Packet} to {ClientId} (m{PacketId})")]
    private static partial void SendingAck(ILogger logger, string packet, string clientId, int packetId);

    [LoggerMessage(5015, LogLevel.Debug, "Sending CONNACK to {ClientId} ({SessionPresent}, {ReasonCode})")]
    private static partial void SendingConnAck(ILogger logger, string clientId, int sessionPresent, int reasonCode);

    [LoggerMessage(5016, LogLevel.Debug, "Sending DISCONNECT to {ClientId} (rc{ReasonCode})")]
    private static partial void SendingDisconnect(ILogger logger, string clientId, int reasonCode);

    [LoggerMessage(5017, LogLevel.Debug, "Sending AUTH to {ClientId} (rc{ReasonCode}, {Method})")]
    private static partial void SendingAuth(ILogger logger, string clientId, int reasonCode, string method);

    [LoggerMessage(5021, LogLevel.Debug, "Will message specified ({Length} bytes) (r{Retain}, q{QoS}).")]
    private static partial void Will(ILogger logger, int length, int retain, int qoS);

    [LoggerMessage(5022, LogLevel.Debug, "No will message specified.")]
    private static partial void NoWill(ILogger logger);

    /// <summary>The will's topic, or one filter of an UNSUBSCRIBE, on a line of its own after a tab.</summary>
    [LoggerMessage(5023, LogLevel.Debug, "\t{Filter}")]
    private static partial void Filter(ILogger logger, string filter);

    [LoggerMessage(5024, LogLevel.Debug, "\t{Filter} (QoS {QoS})")]
    private static partial void SubscribeFilter(ILogger logger, string filter, int qoS);
}
