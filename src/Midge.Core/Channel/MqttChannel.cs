using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Messages;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;

namespace Midge.Core.Channel;

/// <summary>
/// The per-connection MQTT state machine. It takes decoded packets (and timer ticks) and answers through
/// <see cref="IClientOutput"/>; it does no I/O, so every protocol rule is testable without sockets. The
/// transport calls <see cref="Handle"/> from one read loop at a time, <see cref="Tick"/> from the broker's
/// heartbeat, and <see cref="OnConnectionClosed"/> once when the socket is gone.
/// </summary>
public sealed partial class MqttChannel
{
    private readonly Broker _broker;
    private ListenerConfig _listener;
    private readonly IClientOutput _output;
    private readonly bool _localOnly;
    private Session? _session;
    private WillMessage? _will;
    /// <summary>The client's Maximum Packet Size from CONNECT (kept rather than all its properties).</summary>
    private uint? _clientMaximumPacketSize;
    /// <summary>MQTT 5 Request Problem Information: 0 forbids reason strings and user properties except on
    /// CONNACK, PUBLISH and DISCONNECT (MQTT-3.1.2-29).</summary>
    private bool _problemInformationAllowed = true;
    private Dictionary<ushort, string>? _topicAliases;
    private Security.ListenerSecurity _security = Security.ListenerSecurity.Open;
    private Midge.Security.ClientIdentity? _identity;
    private byte[]? _password;
    private EnhancedAuthentication? _enhancedAuth;
    /// <summary>An authenticate hook answered Allow: a reload's password file does not re-judge this client.</summary>
    private bool _admittedByHook;
    private int _state; // 0 = awaiting CONNECT, 1 = connected, 2 = closing, 3 = enhanced authentication of CONNECT
    private long _lastReceivedMs;
    private bool _closed;
    private volatile bool _takenOver;

    /// <param name="remoteEndPoint">The peer: an <see cref="System.Net.EndPoint"/> (formatted only when a log line
    /// names it, so an idle connection holds no string for it) or a name.</param>
    public MqttChannel(Broker broker, ListenerConfig listener, IClientOutput output, object remoteEndPoint, bool localOnlyMode = false)
    {
        _broker = broker;
        _listener = listener;
        // With a store, QoS 2 to a stored session is written ahead (DurableOutput); without one, nothing to wrap.
        _output = broker.SessionStore is null ? output : new DurableOutput(broker, output, () => _session?.IsStored == true);
        _localOnly = localOnlyMode;
        _remote = remoteEndPoint;
        _lastReceivedMs = broker.NowMs;
        ConnectedAtMs = _lastReceivedMs;
        broker.OnChannelOpened(this);
    }

    private readonly object _remote;

    public string RemoteEndPoint => RemoteAddress.Format(_remote);

    /// <summary>The client's address and port; null when the transport has none (a Unix socket, in process).</summary>
    public System.Net.IPEndPoint? RemoteIPEndPoint => _remote as System.Net.IPEndPoint;

    private System.Net.IPAddress? RemoteIp => RemoteIPEndPoint?.Address;

    /// <summary>The listener the connection came in on.</summary>
    public ListenerConfig Listener => _listener;

    /// <summary>The negotiated protocol version (3.1.1 until CONNECT says otherwise).</summary>
    public ProtocolVersion Version { get; private set; } = ProtocolVersion.V311;

    public string? ClientId => _session?.ClientId;

    public string? UserName => _identity?.Username;

    /// <summary>The user name the TLS client certificate gives (its CN, or its subject), set by the transport on a
    /// listener with use_identity_as_username or use_subject_as_username; null when the client sent none.</summary>
    public string? CertificateUserName { get; init; }

    public ushort KeepAlive { get; private set; }

    /// <summary>Topic aliases the writer may assign on PUBLISHes to this client: the client's Topic Alias
    /// Maximum capped by max_outgoing_topic_alias (0 for 3.x).</summary>
    public int OutgoingTopicAliasMaximum { get; private set; }

    public bool IsConnected => Volatile.Read(ref _state) == 1;

    public long ConnectedAtMs { get; }

    /// <summary>
    /// The largest packet this broker accepts on this connection (0 = protocol maximum): max_packet_size once the
    /// connection is up; before that, at most <see cref="MaxPacketSizeBeforeConnect"/>, so that a connection nobody
    /// has authenticated cannot make the broker buffer a huge frame (Mosquitto's CVE-2023-0809).
    /// </summary>
    public int MaxIncomingPacketSize
    {
        get
        {
            int max = _broker.Config.MaxPacketSize;
            if (Volatile.Read(ref _state) == 1 || (max > 0 && max < MaxPacketSizeBeforeConnect)) return max;
            return MaxPacketSizeBeforeConnect;
        }
    }

    /// <summary>
    /// The largest PUBLISH frame read at all when message_size_limit is set (0 otherwise): the limit plus
    /// <see cref="PublishOverhead"/> for the topic, packet id and properties. A PUBLISH within it is read and
    /// refused for its payload as before (PUBACK/PUBREC 0x95); a larger one is refused from its header, before its
    /// body is buffered, and the connection closed (MQTT 5: DISCONNECT 0x95).
    /// </summary>
    public int MaxIncomingPublishSize =>
        _broker.Config.MessageSizeLimit is > 0 and var limit ? (int)Math.Min(limit + PublishOverhead, FrameReader.MaxRemainingLength + 5) : 0;

    /// <summary>What a PUBLISH frame holds besides its payload, at most, for <see cref="MaxIncomingPublishSize"/>:
    /// 128 KiB covers the fixed header, a topic at its 65,535-byte maximum, the packet id and ordinary properties.</summary>
    public const int PublishOverhead = 128 * 1024;

    /// <summary>The largest CONNECT (or AUTH during its authentication): 512 KiB holds every field a CONNECT can
    /// carry at its own 65,535-byte limit (client id, user name, password, will topic and payload) and properties.</summary>
    public const int MaxPacketSizeBeforeConnect = 512 * 1024;

    internal Session? Session => _session;

    /// <summary>The writer flushed its backlog: QoS 0 messages held back in the session queue may go.</summary>
    public void OnOutputDrained() => _session?.OnOutputDrained(_broker.NowMs);

    /// <summary>
    /// Handles one decoded packet. Completes synchronously unless a decision hook (authenticate, authorise) or an
    /// asynchronous authenticator answers later, or a SUBSCRIBE waits for the cluster: then the transport awaits the result before it hands over the next
    /// packet, so packets keep their order and no thread waits.
    /// </summary>
    public ValueTask Handle(MqttPacket packet)
    {
        if (Volatile.Read(ref _state) == 2) return default;
        _lastReceivedMs = _broker.NowMs;
        try
        {
            var pending = Dispatch(packet);
            if (!pending.IsCompletedSuccessfully) return AwaitHandled(pending);
        }
        catch (MqttProtocolException ex)
        {
            OnProtocolError(ex);
        }
        return default;
    }

    private async ValueTask AwaitHandled(ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (MqttProtocolException ex)
        {
            OnProtocolError(ex);
        }
    }

    private ValueTask Dispatch(MqttPacket packet)
    {
        if (_state == 0)
        {
            if (packet is ConnectPacket connect) return HandleConnect(connect);
            Close("sent a packet before CONNECT"); // MQTT-3.1.0-1
            return default;
        }
        if (_state == 3)
        {
            // Between CONNECT and CONNACK only AUTH may come (MQTT-4.12.0-?).
            if (packet is AuthPacket auth) return HandleAuth(auth);
            throw new MqttProtocolException(ReasonCode.ProtocolError, $"{packet.Type} during authentication");
        }
        switch (packet)
        {
            case PublishPacket publish: return HandlePublish(publish);
            case PublishAckPacket ack: return HandlePublishAck(ack);
            case SubscribePacket subscribe: return HandleSubscribe(subscribe);
            case UnsubscribePacket unsubscribe: HandleUnsubscribe(unsubscribe); break;
            case PingReqPacket: Send(PingRespPacket.Instance); break;
            case DisconnectPacket disconnect: HandleDisconnect(disconnect); break;
            case AuthPacket auth: return HandleAuth(auth);
            case ConnectPacket: throw new MqttProtocolException(ReasonCode.ProtocolError, "second CONNECT"); // MQTT-3.1.0-2
            default: throw new MqttProtocolException(ReasonCode.ProtocolError, $"{packet.Type} is not sent by clients");
        }
        return default;
    }

    /// <summary>
    /// The reader found malformed input or a protocol violation: MQTT 5 clients are told why (CONNACK before
    /// CONNECT completed, DISCONNECT after), 3.x clients are disconnected.
    /// </summary>
    public void OnProtocolError(MqttProtocolException ex)
    {
        if (Volatile.Read(ref _state) == 2) return;
        Log.ProtocolError(_broker.Logger, ClientId ?? RemoteEndPoint, ex.Reason, ex.Message);
        if (_state is 0 or 3)
        {
            // During enhanced authentication the version is known from CONNECT.
            var version = ex.Version ?? (_state == 3 ? Version : ProtocolVersion.V311);
            if (ex.Reason == ReasonCode.UnsupportedProtocolVersion)
            {
                // MQTT-3.1.2-2: 3.x gets return code 0x01; a level-5 CONNECT gets 0x84.
                RejectConnect(version, ReasonCode.UnsupportedProtocolVersion, ex.Message);
            }
            else if (version == ProtocolVersion.V500)
            {
                RejectConnect(version, ex.Reason, ex.Message);
            }
            else if (ex.Reason == ReasonCode.ClientIdentifierNotValid)
            {
                RejectConnect(version, ex.Reason, ex.Message);
            }
            else
            {
                Close(ex.Message);
            }
            return;
        }
        ServerDisconnect(ex.Reason, publishWill: true, ex.Message);
    }

    /// <summary>Heartbeat: closes a connection silent for more than 1.5 × its keep-alive (MQTT-3.1.2-24), and
    /// a connection that never sent CONNECT within a grace period.</summary>
    public void Tick(long nowMs)
    {
        int state = Volatile.Read(ref _state);
        if (state == 2) return;
        if (state is 0 or 3)
        {
            if (nowMs - _lastReceivedMs > ConnectTimeoutMs) Close("no CONNECT received in time");
            return;
        }
        if (KeepAlive > 0 && nowMs - _lastReceivedMs > KeepAlive * 1500L)
        {
            Log.KeepAliveTimeout(_broker.Logger, ClientId ?? RemoteEndPoint);
            ServerDisconnect(ReasonCode.KeepAliveTimeout, publishWill: true, "keep alive timeout");
        }
    }

    /// <summary>How long a new connection may take to send CONNECT: the listener's <c>connect_timeout</c>.</summary>
    internal long ConnectTimeoutMs => _listener.Protection.ConnectTimeoutSeconds * 1000L;

    /// <summary>
    /// Ends the connection from the broker's side: MQTT 5 clients get DISCONNECT with <paramref name="reason"/>.
    /// The will is published unless <paramref name="publishWill"/> is false.
    /// </summary>
    public void ServerDisconnect(ReasonCode reason, bool publishWill, string? reasonString = null)
    {
        if (Interlocked.Exchange(ref _state, 2) == 2) return;
        if (!publishWill) _will = null;
        MqttPacket? final = null;
        if (Version == ProtocolVersion.V500)
        {
            var disconnect = new DisconnectPacket { ReasonCode = reason };
            if (reasonString is not null && _problemInformationAllowed) disconnect.GetOrCreateProperties().ReasonString = reasonString;
            final = FitsClient(disconnect) ? disconnect : null;
        }
        _output.Close(final);
    }

    /// <summary>
    /// Sends a control packet (anything but a PUBLISH of a message, which the session holds to the same limit).
    /// A packet larger than the client's Maximum Packet Size is never sent (MQTT-3.1.2-24): its Reason String
    /// and User Properties go first (MQTT-3.1.2-29, the parts the spec lets the sender drop); if it is still too
    /// large, the acknowledgement the client waits for can never come, so the connection ends (MQTT 5:
    /// DISCONNECT 0x95 Packet too large when that fits).
    /// </summary>
    internal void Send(MqttPacket packet)
    {
        if (FitsClient(packet))
        {
            _output.Send(packet);
            return;
        }
        Log.PacketTooLargeForClient(_broker.Logger, ClientId ?? RemoteEndPoint, packet.Type,
            PacketEncoder.GetSize(packet, Version), _clientMaximumPacketSize ?? 0);
        ServerDisconnect(ReasonCode.PacketTooLarge, publishWill: true);
    }

    /// <summary>Whether <paramref name="packet"/> is within the client's Maximum Packet Size, after dropping
    /// its Reason String and User Properties if that is what it takes.</summary>
    private bool FitsClient(MqttPacket packet)
    {
        if (_clientMaximumPacketSize is not { } max || PacketEncoder.GetSize(packet, Version) <= max) return true;
        if (packet is not MqttPacketWithProperties { Properties: { } p } || (p.ReasonString is null && p.UserProperties is null))
        {
            return false;
        }
        p.ReasonString = null;
        p.UserProperties = null;
        return PacketEncoder.GetSize(packet, Version) <= max;
    }

    /// <summary>The socket is gone. Publishes or schedules the will, detaches or ends the session.</summary>
    public void OnConnectionClosed()
    {
        if (_closed) return;
        _closed = true;
        Volatile.Write(ref _state, 2);
        _broker.OnChannelClosed(this);
        var session = _session;
        if (session is null) return;
        _broker.Stats.OnClientDisconnected();
        if (_broker.Hooks.ClientDisconnected.IsAttached)
        {
            _broker.Hooks.ClientDisconnected.Invoke(new(session.ClientId, UserName, RemoteEndPoint, Version));
        }
        long now = _broker.NowMs;
        lock (_broker.Clients.Lock(session.ClientId))
        {
            if (_takenOver || !session.Detach(this, now))
            {
                // Taken over: the new connection owns the session, so a delayed will is cancelled
                // (MQTT-3.1.3-9); an undelayed one is sent, as for any connection that ends without DISCONNECT.
                var will = Interlocked.Exchange(ref _will, null);
                if (will is not null && (will.Properties?.WillDelayInterval ?? 0) == 0)
                {
                    _broker.Publish(Message.Create(will.Topic, will.Payload, will.QoS, will.Retain,
                        WillPublishProperties(will.Properties), session.ClientId, now));
                }
                _broker.ClusterWills?.WillEnded(session.ClientId, this);
                return;
            }
            bool ends = session.ExpiryInterval == 0;
            _broker.RequeueSharedMessages(session);
            if (!PublishOrScheduleWill(session, now, ends)) _broker.ClusterWills?.WillEnded(session.ClientId, this);
            if (ends) _broker.Clients.Remove(session);
        }
        if (_broker.Config.ConnectionMessages) Log.ClientDisconnected(_broker.Logger, session.ClientId);
    }

    /// <summary>
    /// Publishes the will now, or schedules it when it has a Will Delay Interval: it goes at the earlier of the
    /// delay and the session's end (MQTT-3.1.3-9), unless the client id connects again first. A session that ends
    /// with its connection (Session Expiry 0) keeps the will waiting for the whole delay, as Mosquitto does:
    /// users count on it as a grace period for a reconnection.
    /// </summary>
    /// <returns>Whether the will waits for its delay (the cluster, if any, was told: <see cref="IClusterWills.WillDelayed"/>).</returns>
    private bool PublishOrScheduleWill(Session session, long now, bool sessionEnds)
    {
        var will = Interlocked.Exchange(ref _will, null);
        if (will is null)
        {
            session.RecordWill(null); // none, or discarded by a normal DISCONNECT
            return false;
        }
        var publishProperties = WillPublishProperties(will.Properties);
        var message = Message.Create(will.Topic, will.Payload, will.QoS, will.Retain, publishProperties, session.ClientId, now);
        uint delay = will.Properties?.WillDelayInterval ?? 0;
        if (delay == 0)
        {
            _broker.Publish(message);
            session.RecordWill(null);
            return false;
        }
        long delayMs = delay * 1000L;
        long expiryMs = sessionEnds ? -1 : Broker.SessionExpiryMs(session, _broker.Config);
        if (expiryMs >= 0 && expiryMs < delayMs) delayMs = expiryMs;
        var cluster = _broker.ClusterWills;
        var dueAt = _broker.UtcNow.AddMilliseconds(delayMs);
        _broker.ScheduleWill(session.ClientId, new DelayedWill(message, now + delayMs, cluster is null ? null : this));
        if (_broker.SessionStore is not null)
        {
            session.RecordWill(StoredForms.ToStored(will, publishProperties, session.ClientId) with { DueAt = dueAt });
        }
        cluster?.WillDelayed(session.ClientId, this, message, dueAt);
        return cluster is not null;
    }

    /// <summary>This connection's will as a session store keeps it; null when it has none (or no longer has one).</summary>
    internal StoredWill? StoredWill() =>
        Volatile.Read(ref _will) is { } will && _session is { } session
            ? StoredForms.ToStored(will, WillPublishProperties(will.Properties), session.ClientId)
            : null;

    /// <summary>Will properties become the PUBLISH properties (Will Delay Interval is not one of them).</summary>
    private static MqttProperties? WillPublishProperties(MqttProperties? willProperties)
    {
        if (willProperties is null) return null;
        if (willProperties.WillDelayInterval is null) return willProperties;
        var copy = willProperties.Clone();
        copy.WillDelayInterval = null;
        return copy;
    }

    /// <summary>Closes without a DISCONNECT (3.x style, or before CONNECT).</summary>
    private void Close(string reason)
    {
        if (Interlocked.Exchange(ref _state, 2) == 2) return;
        Log.Closing(_broker.Logger, ClientId ?? RemoteEndPoint, reason);
        _output.Close(null);
    }

    /// <summary>Called by <see cref="Broker"/> on takeover: MQTT 5 gets DISCONNECT 0x8E (MQTT-3.1.4-3).</summary>
    internal void TakeOver()
    {
        _takenOver = true;
        ServerDisconnect(ReasonCode.SessionTakenOver, publishWill: true);
    }

}
