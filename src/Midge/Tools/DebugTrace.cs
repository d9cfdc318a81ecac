using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Tools;

/// <summary>
/// <c>-d</c>: the packet log libmosquitto prints for mosquitto_pub and mosquitto_sub ("Client ID sending
/// PUBLISH (d0, q1, r0, m1, 'topic', ... (5 bytes))"), line for line, on stdout.
/// </summary>
/// <remarks>
/// For <c>midge sub</c> it also hands messages out the way libmosquitto does, in the same order as the log:
/// a QoS 0 message when it arrives, QoS 1 once its PUBACK is sent, QoS 2 once its PUBCOMP is sent (after the
/// server's PUBREL). <see cref="Deliver"/> is called on the client's read loop, outside the log's lock, so the
/// message's output lands between its own log lines and the next packet's, as mosquitto_sub prints it.
/// </remarks>
internal sealed class DebugTrace(Stream output, string clientId)
{
    private readonly Lock _sync = new();
    private readonly Dictionary<ushort, ReceivedMessage> _awaitingPubAck = [];
    private readonly Dictionary<ushort, ReceivedMessage> _awaitingPubComp = [];
    private readonly Dictionary<ushort, string> _aliases = [];
    private string _clientId = clientId.Length > 0 ? clientId : "(null)";
    private int _qos0Mid;
    private bool _stopped;

    /// <summary>Held while a line is written; sub prints its messages under it too.</summary>
    public Lock Sync => _sync;

    /// <summary>With <c>-d</c>: a trace of <paramref name="options"/>' client, attached to see every packet.</summary>
    public static DebugTrace? AttachIf(bool debug, Stream output, ref Midge.Client.MqttClientOptions options)
    {
        if (!debug) return null;
        var trace = new DebugTrace(output, options.ClientId);
        options = options with { PacketTrace = trace.OnPacket };
        return trace;
    }

    /// <summary>sub: a message to handle; false ends the session (count reached, --retained-only).</summary>
    public Func<ReceivedMessage, bool>? Deliver { get; set; }

    /// <summary>sub: the SUBACK, right after its log line.</summary>
    public Action<SubAckPacket>? SubAcked { get; set; }

    /// <summary>
    /// From now on only the DISCONNECT is logged and nothing is handed out: mosquitto_sub disconnects from inside
    /// its callback and reads nothing more, while our read loop may already have the next packets.
    /// </summary>
    public void Stop()
    {
        lock (_sync) _stopped = true;
    }

    public bool Stopped
    {
        get
        {
            lock (_sync) return _stopped;
        }
    }

    /// <summary>A line of the tool's own (mosquitto_sub's "Subscribed (mid: 1): 0"), in order with the log.</summary>
    public void WriteLine(string line)
    {
        lock (_sync) Write(line);
    }

    public void OnPacket(MqttPacket packet, bool outgoing)
    {
        ReceivedMessage? deliver = null;
        SubAckPacket? subAck = null;
        lock (_sync)
        {
            if (_stopped && !(outgoing && packet is DisconnectPacket)) return;
            if (outgoing) deliver = Sent(packet);
            else deliver = Received(packet, out subAck);
        }
        if (subAck is not null) SubAcked?.Invoke(subAck);
        if (deliver is not null && Deliver is { } handle && !handle(deliver)) Stop();
    }

    private ReceivedMessage? Sent(MqttPacket packet)
    {
        switch (packet)
        {
            case ConnectPacket:
                Log("sending CONNECT");
                break;
            case PublishPacket p:
                int mid = p.QoS == QoS.AtMostOnce ? ++_qos0Mid : p.PacketId;
                Log($"sending PUBLISH (d{Flag(p.Dup)}, q{(int)p.QoS}, r{Flag(p.Retain)}, m{mid}, '{p.Topic}', ... ({p.Payload.Length} bytes))");
                break;
            case PublishAckPacket { Type: PacketType.PubAck } ack:
                Log($"sending PUBACK (m{ack.PacketId}, rc{(int)ack.ReasonCode})");
                return _awaitingPubAck.Remove(ack.PacketId, out var acked) ? acked : null;
            case PublishAckPacket { Type: PacketType.PubRec } ack:
                Log($"sending PUBREC (m{ack.PacketId}, rc{(int)ack.ReasonCode})");
                break;
            case PublishAckPacket { Type: PacketType.PubRel } ack:
                Log($"sending PUBREL (m{ack.PacketId})");
                break;
            case PublishAckPacket { Type: PacketType.PubComp } ack:
                Log($"sending PUBCOMP (m{ack.PacketId})");
                return _awaitingPubComp.Remove(ack.PacketId, out var released) ? released : null;
            case SubscribePacket s:
                foreach (var t in s.Subscriptions)
                {
                    int options = (t.NoLocal ? 0x04 : 0) | (t.RetainAsPublished ? 0x08 : 0) | ((int)t.RetainHandling << 4);
                    Log($"sending SUBSCRIBE (Mid: {s.PacketId}, Topic: {t.Filter}, QoS: {(int)t.QoS}, Options: 0x{options:x2})");
                }
                break;
            case UnsubscribePacket u:
                foreach (var f in u.Filters) Log($"sending UNSUBSCRIBE (Mid: {u.PacketId}, Topic: {f})");
                break;
            case PingReqPacket:
                Log("sending PINGREQ");
                break;
            case DisconnectPacket:
                Log("sending DISCONNECT");
                break;
            case AuthPacket auth:
                Log($"sending AUTH ({(int)auth.ReasonCode})");
                break;
        }
        return null;
    }

    private ReceivedMessage? Received(MqttPacket packet, out SubAckPacket? subAck)
    {
        subAck = null;
        switch (packet)
        {
            case ConnAckPacket c:
                if (c.Properties?.AssignedClientIdentifier is { Length: > 0 } assigned) _clientId = assigned;
                _aliases.Clear();
                if (!c.SessionPresent) _awaitingPubComp.Clear();
                Log($"received CONNACK ({(c.V3ReturnCode is { } v3 ? (int)v3 : (int)c.ReasonCode)})");
                break;
            case PublishPacket p:
                string topic = p.Topic;
                if (p.Properties?.TopicAlias is { } alias)
                {
                    if (topic.Length > 0) _aliases[alias] = topic;
                    else topic = _aliases.GetValueOrDefault(alias, "");
                }
                Log($"received PUBLISH (d{Flag(p.Dup)}, q{(int)p.QoS}, r{Flag(p.Retain)}, m{p.PacketId}, '{topic}', ... ({p.Payload.Length} bytes))");
                var message = ReceivedMessage.From(p, topic);
                switch (p.QoS)
                {
                    case QoS.AtMostOnce:
                        return message;
                    case QoS.AtLeastOnce:
                        _awaitingPubAck[p.PacketId] = message;
                        break;
                    default:
                        // A resent QoS 2 message whose PUBREL is still to come is not handed out twice.
                        _awaitingPubComp.TryAdd(p.PacketId, message);
                        break;
                }
                break;
            case PublishAckPacket { Type: PacketType.PubAck } ack:
                Log($"received PUBACK (Mid: {ack.PacketId}, RC:{(int)ack.ReasonCode})");
                break;
            case PublishAckPacket { Type: PacketType.PubRec } ack:
                Log($"received PUBREC (Mid: {ack.PacketId})");
                break;
            case PublishAckPacket { Type: PacketType.PubRel } ack:
                Log($"received PUBREL (Mid: {ack.PacketId})");
                break;
            case PublishAckPacket { Type: PacketType.PubComp } ack:
                Log($"received PUBCOMP (Mid: {ack.PacketId}, RC:{(int)ack.ReasonCode})");
                break;
            case SubAckPacket s:
                Log("received SUBACK");
                subAck = s;
                break;
            case UnsubAckPacket:
                Log("received UNSUBACK");
                break;
            case PingRespPacket:
                Log("received PINGRESP");
                break;
            case DisconnectPacket d:
                Write($"Received DISCONNECT ({(int)d.ReasonCode})");
                break;
            case AuthPacket auth:
                Log($"received AUTH ({(int)auth.ReasonCode})");
                break;
        }
        return null;
    }

    private static int Flag(bool value) => value ? 1 : 0;

    private void Log(string what) => Write($"Client {_clientId} {what}");

    /// <summary>Under <see cref="_sync"/>; stdout is shared with the messages mosquitto_sub prints.</summary>
    private void Write(string line)
    {
        try
        {
            output.Write(Encoding.UTF8.GetBytes(line + "\n"));
            output.Flush();
        }
        catch (IOException)
        {
            // stdout closed (a pipe whose reader went away): the log is lost, the client carries on.
        }
    }

    /// <summary>mosquitto_sub's line after a SUBACK: "Subscribed (mid: 1): 0, 128".</summary>
    public static string Subscribed(SubAckPacket s) =>
        $"Subscribed (mid: {s.PacketId}): {string.Join(", ", s.ReasonCodes.Select(c => ((int)c).ToString(CultureInfo.InvariantCulture)))}";
}
