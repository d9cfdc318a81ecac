using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Midge.Client;
using Midge.Config;
using Midge.Core;
using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Bridges;

/// <summary>
/// One <c>connection</c> block at work: a client of the remote broker (Midge's <see cref="MqttClient"/>) and a
/// session of the local broker (<see cref="LocalLink"/>), joined. Outgoing topics are the local session's
/// subscriptions: each message the session delivers is published to the remote under its remapped topic and
/// acknowledged to the local session only once the remote acknowledged it, so what the remote has not taken stays
/// in the session (inflight, then its bounded queue) and is sent again when the bridge reconnects. Incoming topics
/// are the remote client's subscriptions; what arrives is published into the local broker through the same local
/// session, whose own subscriptions have No Local, so nothing crosses back. docs/bridges.md.
/// </summary>
public sealed partial class Bridge : IAsyncDisposable
{
    private static readonly byte[] Up = "1"u8.ToArray();
    private static readonly byte[] Down = "0"u8.ToArray();

    private readonly Broker _broker;
    private readonly BridgeConfig _config;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<ForwardItem> _outgoing = Channel.CreateUnbounded<ForwardItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly object _gate = new();
    /// <summary>Outgoing QoS 1/2 messages handed to the remote client, by the local session's packet id.</summary>
    private readonly Dictionary<ushort, PendingForward> _pending = [];
    /// <summary>Packet ids acknowledged to the current link after it opened: a DUP copy of one is not sent again.</summary>
    private readonly Dictionary<ushort, LocalLink> _ackedOn = [];
    private Task _run = Task.CompletedTask;
    private Task _forwarder = Task.CompletedTask;
    private LocalLink? _link;
    private MqttClient? _client;
    private int _clientAddress = -1;
    private ushort _nextIncomingId;
    private long _lastActivityMs;

    private readonly record struct ForwardItem(LocalLink Link, Message Message, OutgoingPublish Fields);

    private sealed record PendingForward(MqttClient Client, Task<PublishResult> Task, QoS QoS);

    public Bridge(Broker broker, BridgeConfig config, ILogger logger)
    {
        _broker = broker;
        _config = config;
        _logger = logger;
    }

    public BridgeConfig Config => _config;

    /// <summary>Counters of this bridge (published under <c>$SYS/broker/bridges/&lt;name&gt;/</c>).</summary>
    public BridgeCounters Counters { get; } = new();

    /// <summary>True while connected to the remote broker.</summary>
    public bool IsConnected => Volatile.Read(ref _link) is { IsClosed: false } && _client?.IsConnected == true;

    /// <summary>Starts connecting (as <c>start_type</c> says) in the background.</summary>
    public void Start()
    {
        _forwarder = Task.Run(ForwardLoopAsync);
        _run = Task.Run(RunAsync);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _outgoing.Writer.TryComplete();
        try
        {
            await _run.ConfigureAwait(false);
            await _forwarder.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        if (_client is { } c) await c.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    // ---------------- connection management ----------------

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        var delay = new RestartDelay(_config);
        int address = 0;
        bool connectedBefore = false;
        PublishLocalState(Down);
        if (KeepsLocalSession)
        {
            // The local session and its subscriptions exist from the start, as Mosquitto's do, so what is published
            // while the remote has not been reached yet waits for it (and counts towards a lazy bridge's threshold).
            // local_cleansession true (possible for a lazy bridge) starts it afresh: nothing from a previous run.
            await OpenLocalAsync(cleanStart: _config.LocalCleanSession, ct).ConfigureAwait(false);
            await CloseLocalAsync().ConfigureAwait(false);
        }
        while (!ct.IsCancellationRequested)
        {
            if (_config.StartType == BridgeStartType.Lazy && !await WaitForThresholdAsync(ct).ConfigureAwait(false)) return;
            var target = _config.Addresses[address];
            Log.Connecting(_logger, _config.Name, target.Host, target.Port);
            EndReason ended;
            try
            {
                var client = ClientFor(address);
                var connAck = await client.ConnectAsync(ct).ConfigureAwait(false);
                delay.Reset();
                if (connectedBefore) Counters.OnReconnect();
                connectedBefore = true;
                ended = await RunConnectedAsync(client, address, connAck.SessionPresent, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (MqttConnectException refused)
            {
                Log.Refused(_logger, _config.Name, target.Host, target.Port, refused.Result.ReasonCode.ToString());
                ended = EndReason.Failed;
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or MqttClientException
                                          or System.Security.Authentication.AuthenticationException or OperationCanceledException)
            {
                Log.ConnectFailed(_logger, _config.Name, target.Host, target.Port, e.Message);
                ended = EndReason.Failed;
            }
            if (ct.IsCancellationRequested) return;
            if (_config.StartType == BridgeStartType.Once)
            {
                Log.Stopped(_logger, _config.Name, "start_type once");
                return;
            }
            switch (ended)
            {
                case EndReason.Idle:
                    continue; // lazy: wait for the threshold again
                case EndReason.PrimaryBack:
                    address = 0;
                    continue;
                default:
                    if (_config.Addresses.Count > 1) address = (address + 1) % _config.Addresses.Count;
                    break;
            }
            var wait = delay.Next();
            Log.Waiting(_logger, _config.Name, wait.TotalSeconds);
            try
            {
                await Task.Delay(wait, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private enum EndReason
    {
        Failed,
        Lost,
        Idle,
        PrimaryBack,
        Stopping,
    }

    /// <summary>
    /// Whether the local session outlives the bridge's connections: with <c>local_cleansession false</c>, and always
    /// for a lazy bridge, whose start is decided by what waits there.
    /// </summary>
    private bool KeepsLocalSession => !_config.LocalCleanSession || _config.StartType == BridgeStartType.Lazy;

    /// <summary>The remote client, pointed at <paramref name="address"/>. One client for the bridge's life, whatever
    /// the address: unacknowledged QoS 1/2 publishes are resent with their packet ids, to the same remote or to the
    /// next one (a PUBREL, not the message, for those a remote acknowledged with PUBREC), as Mosquitto's bridge does:
    /// docs/bridges.md, "What a QoS 2 message is promised".</summary>
    private MqttClient ClientFor(int address)
    {
        if (_client is null) _client = new MqttClient(RemoteOptions(_config.Addresses[address]));
        else if (_clientAddress != address) _client.UseOptions(RemoteOptions(_config.Addresses[address]));
        _clientAddress = address;
        return _client;
    }

    private MqttClientOptions RemoteOptions(BridgeAddress address)
    {
        var c = _config;
        var version = c.ProtocolVersion switch { 3 => ProtocolVersion.V310, 5 => ProtocolVersion.V500, _ => ProtocolVersion.V311 };
        bool v5 = version == ProtocolVersion.V500;
        return new MqttClientOptions
        {
            Host = address.Host,
            Port = address.Port,
            ClientId = c.RemoteClientId,
            ProtocolVersion = version,
            CleanStart = c.CleanSession,
            KeepAlive = TimeSpan.FromSeconds(c.KeepaliveInterval),
            UserName = c.RemoteUsername,
            Password = c.RemotePassword is null ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(c.RemotePassword),
            Will = c.Notifications && !c.NotificationsLocalOnly ? new MqttWill(c.NotificationTopic, Down, QoS.AtLeastOnce, Retain: true) : null,
            // MQTT 5 without a Session Expiry Interval ends the remote session with the connection: cleansession
            // false asks the remote to keep it, as a 3.1.1 bridge's Clean Session 0 does.
            SessionExpiryInterval = v5 ? c.SessionExpiryInterval ?? (c.CleanSession ? null : uint.MaxValue) : null,
            ReceiveMaximum = v5 && c.ReceiveMaximum > 0 ? (ushort)c.ReceiveMaximum : null,
            TopicAliasMaximum = v5 ? (ushort)c.MaxTopicAlias : (ushort)0,
            BindAddress = c.BindAddress,
            Bridge = c.TryPrivate,
            KeepPublishesOnConnectionLoss = true,
            Tls = BridgeTls.Options(c.Tls, address.Host),
        };
    }

    private async Task<EndReason> RunConnectedAsync(MqttClient client, int address, bool sessionPresent, CancellationToken ct)
    {
        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLost(object? sender, MqttDisconnectedEventArgs e) => lost.TrySetResult();
        client.Disconnected += OnLost;
        try
        {
            if (!client.IsConnected) return EndReason.Lost;
            var link = await OpenLocalAsync(cleanStart: !KeepsLocalSession, ct).ConfigureAwait(false);
            if (link is null) return EndReason.Failed;
            _lastActivityMs = _broker.NowMs;
            await SetUpRemoteAsync(client, ct).ConfigureAwait(false);
            // Logged once both sides are set up, so the line means what a reader takes it to: messages flow now.
            var target = _config.Addresses[address];
            Log.Connected(_logger, _config.Name, target.Host, target.Port, sessionPresent);
            Counters.Connected = true;
            var incoming = Task.Run(() => IncomingLoopAsync(client, link, ct), CancellationToken.None);
            var ended = await WatchAsync(lost.Task, link, address, ct).ConfigureAwait(false);
            Counters.Connected = false;
            await CloseLocalAsync().ConfigureAwait(false);
            PublishLocalState(Down);
            if (ended is EndReason.Idle or EndReason.PrimaryBack or EndReason.Stopping)
            {
                if (_config.Notifications && !_config.NotificationsLocalOnly && client.IsConnected)
                {
                    try
                    {
                        await client.PublishAsync(_config.NotificationTopic, Down, QoS.AtLeastOnce, retain: true, ct: CancellationToken.None)
                            .AsTask().WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is MqttClientException or TimeoutException or OperationCanceledException)
                    {
                    }
                }
                await client.DisconnectAsync(ct: CancellationToken.None).ConfigureAwait(false);
            }
            Log.Disconnected(_logger, _config.Name, ended.ToString().ToLowerInvariant());
            try
            {
                await incoming.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
            {
            }
            return ended;
        }
        finally
        {
            client.Disconnected -= OnLost;
        }
    }

    private async Task SetUpRemoteAsync(MqttClient client, CancellationToken ct)
    {
        bool v5 = _config.ProtocolVersion == 5;
        if (_config.Notifications)
        {
            PublishLocalState(Up);
            if (!_config.NotificationsLocalOnly)
            {
                _ = client.PublishAsync(_config.NotificationTopic, Up, QoS.AtLeastOnce, retain: true, ct: ct).AsTask()
                    .ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            }
        }
        var subscriptions = _config.Topics.Where(t => t.Incoming)
            .Select(t => new TopicSubscription(t.RemoteFilter, (QoS)t.QoS) { NoLocal = v5, RetainAsPublished = v5 })
            .ToList();
        if (subscriptions.Count > 0)
        {
            var result = await client.SubscribeAsync(subscriptions, ct: ct).ConfigureAwait(false);
            for (int i = 0; i < result.ReasonCodes.Count && i < subscriptions.Count; i++)
            {
                if (ReasonCodes.IsError(result.ReasonCodes[i])) Log.RemoteSubscribeRefused(_logger, _config.Name, subscriptions[i].Filter, result.ReasonCodes[i].ToString());
            }
        }
        if (_config.AttemptUnsubscribe)
        {
            var outOnly = _config.Topics.Where(t => t.Direction == BridgeDirection.Out).Select(t => t.RemoteFilter).Distinct().ToList();
            if (outOnly.Count > 0)
            {
                _ = client.UnsubscribeAsync(outOnly, ct: ct).AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Waits until the remote connection is lost, the local link closes, the bridge stops, a lazy bridge is
    /// idle, or (round_robin false, on a secondary address) the primary accepts connections again.</summary>
    private async Task<EndReason> WatchAsync(Task lost, LocalLink link, int address, CancellationToken ct)
    {
        bool probePrimary = address > 0 && !_config.RoundRobin;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        long nextProbe = Environment.TickCount64 + _config.RestartTimeoutBase * 1000L;
        while (true)
        {
            var tick = timer.WaitForNextTickAsync(ct).AsTask();
            var done = await Task.WhenAny(lost, link.Closed, tick).ConfigureAwait(false);
            if (ct.IsCancellationRequested) return EndReason.Stopping;
            if (done == lost) return EndReason.Lost;
            if (done == link.Closed) return _stop.IsCancellationRequested ? EndReason.Stopping : EndReason.Lost;
            if (_config.StartType == BridgeStartType.Lazy && _broker.NowMs - Volatile.Read(ref _lastActivityMs) > _config.IdleTimeout * 1000L)
            {
                return EndReason.Idle;
            }
            if (probePrimary && Environment.TickCount64 >= nextProbe)
            {
                nextProbe = Environment.TickCount64 + Math.Max(5, _config.RestartTimeoutBase) * 1000L;
                var primary = _config.Addresses[0];
                if (await AcceptsAsync(primary, ct).ConfigureAwait(false))
                {
                    Log.PrimaryBack(_logger, _config.Name, primary.Host, primary.Port);
                    return EndReason.PrimaryBack;
                }
            }
        }
    }

    private static async Task<bool> AcceptsAsync(BridgeAddress address, CancellationToken ct)
    {
        using var probe = new TcpClient();
        try
        {
            await probe.ConnectAsync(address.Host, address.Port, ct).AsTask().WaitAsync(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or TimeoutException or IOException)
        {
            return false;
        }
    }

    private async Task<bool> WaitForThresholdAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (_broker.Clients.TryGet(_config.LocalClientId, out var session) && session.QueuedCount + session.InflightCount >= _config.Threshold)
            {
                return true;
            }
            try
            {
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
        return false;
    }

    // ---------------- the local side ----------------

    private async Task<LocalLink?> OpenLocalAsync(bool cleanStart, CancellationToken ct)
    {
        var link = new LocalLink(_broker, LocalListener(_broker.Config), _config.Name, OnLocalPublish);
        var connect = new ConnectPacket
        {
            ProtocolVersion = ProtocolVersion.V500,
            ProtocolName = "MQTT",
            ClientId = _config.LocalClientId,
            CleanStart = cleanStart,
            KeepAlive = 0,
            UserName = _config.LocalUsername,
            Password = _config.LocalPassword is null ? null : Encoding.UTF8.GetBytes(_config.LocalPassword),
            Properties = new MqttProperties { SessionExpiryInterval = KeepsLocalSession ? uint.MaxValue : 0 },
        };
        // The link is the current one before the CONNECT: a session that finds messages waiting hands them over
        // while it handles the CONNECT, before its CONNACK is seen here, and the forwarder takes only the current
        // link's deliveries (what it let go would stay in flight in the session until the next connection).
        Volatile.Write(ref _link, link);
        link.Post(connect);
        ConnAckPacket connAck;
        try
        {
            connAck = await link.ConnAck.WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            connAck = new ConnAckPacket { ReasonCode = ReasonCode.UnspecifiedError };
        }
        if (connAck.ReasonCode != ReasonCode.Success)
        {
            Log.LocalRefused(_logger, _config.Name, _config.LocalClientId, connAck.ReasonCode.ToString());
            Interlocked.CompareExchange(ref _link, null, link);
            link.Close();
            await link.Completion.ConfigureAwait(false);
            return null;
        }
        if (!connAck.SessionPresent)
        {
            // A new local session: none of the packet ids the remote client still holds messages under is this
            // session's, so their acknowledgements must not reach it, and its own ids are not copies of them.
            lock (_gate)
            {
                _pending.Clear();
                _ackedOn.Clear();
            }
        }
        var outgoing = _config.Topics.Where(t => t.Outgoing)
            .Select(t => new TopicSubscription(t.LocalFilter, (QoS)t.QoS) { NoLocal = true, RetainAsPublished = true })
            .DistinctBy(s => s.Filter)
            .ToList();
        if (outgoing.Count > 0)
        {
            // The bridge is up once its local subscriptions are: what is published after "connected" is forwarded.
            link.Post(new SubscribePacket { PacketId = 1, Subscriptions = outgoing });
            try
            {
                await Task.WhenAny(link.Subscribed, link.Closed).WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Log.LocalRefused(_logger, _config.Name, _config.LocalClientId, "no SUBACK within 30 s");
            }
        }
        return link;
    }

    private async Task CloseLocalAsync()
    {
        var link = Interlocked.Exchange(ref _link, null);
        if (link is null) return;
        link.Close();
        await link.Completion.ConfigureAwait(false);
    }

    /// <summary>The listener settings the local session is judged by: the first listener's (with
    /// per_listener_settings false, every listener carries the global security settings), or local-only mode's.</summary>
    private static ListenerConfig LocalListener(BrokerConfig config) => config.Listeners.Count > 0
        ? config.Listeners[0] with { MountPoint = null, MaxQoS = 2, UseUsernameAsClientId = false }
        : new ListenerConfig { AllowAnonymous = true };

    private void PublishLocalState(byte[] state)
    {
        if (!_config.Notifications) return;
        _broker.PublishFromBroker(_config.NotificationTopic, state, QoS.AtLeastOnce, retain: true);
    }

    // ---------------- messages ----------------

    /// <summary>From the local session's delivery (any thread, possibly under the session's lock): queued for the
    /// forwarder, never forwarded here.</summary>
    private void OnLocalPublish(LocalLink link, Message message, OutgoingPublish fields) =>
        _outgoing.Writer.TryWrite(new ForwardItem(link, message, fields));

    private async Task ForwardLoopAsync()
    {
        await foreach (var f in _outgoing.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            f.Link.Taken(f.Message.PayloadLength);
            var client = _client;
            // A link that closed takes its deliveries with it: the session sends them again on the next link.
            if (f.Link != Volatile.Read(ref _link) || f.Link.IsClosed || client is null) continue;
            Forward(client, f);
        }
    }

    private void Forward(MqttClient client, in ForwardItem f)
    {
        var fields = f.Fields;
        var message = f.Message;
        string topic = fields.TopicStart > 0 ? message.Topic[fields.TopicStart..] : message.Topic;
        ushort id = fields.PacketId;
        Volatile.Write(ref _lastActivityMs, _broker.NowMs);
        BridgeTopic? mapping = null;
        foreach (var t in _config.Topics)
        {
            if (t.Outgoing && Topics.Matches(t.LocalFilter, topic))
            {
                mapping = t;
                break;
            }
        }
        if (mapping is null)
        {
            Counters.OnDropped();
            AckLocal(f.Link, id, fields.QoS);
            return;
        }
        if (fields.QoS != QoS.AtMostOnce)
        {
            lock (_gate)
            {
                if (fields.Dup && _ackedOn.TryGetValue(id, out var ackedLink) && ackedLink == f.Link) return;
                _ackedOn.Remove(id);
                if (_pending.TryGetValue(id, out var pending) && pending.Client == client)
                {
                    // A copy the session sent again: the remote client still holds the first and resends it itself.
                    if (pending.Task.IsCompletedSuccessfully) CompleteLocked(id, pending);
                    return;
                }
            }
        }
        string remoteTopic = mapping.ToRemote(topic);
        bool retain = _config.OutgoingRetain && fields.Retain;
        MqttProperties? properties = null;
        if (_config.ProtocolVersion == 5)
        {
            properties = message.Properties?.ToMqttProperties();
            if (fields.MessageExpiryInterval is { } expiry) (properties ??= new MqttProperties()).MessageExpiryInterval = expiry;
        }
        if (_config.MaxPacketSize > 0)
        {
            var probe = new PublishPacket { Topic = remoteTopic, Payload = message.Payload, QoS = fields.QoS, PacketId = 1, Properties = properties };
            var version = _config.ProtocolVersion == 5 ? ProtocolVersion.V500 : ProtocolVersion.V311;
            if (PacketEncoder.GetSize(probe, version) > _config.MaxPacketSize)
            {
                Counters.OnDropped();
                Log.TooLarge(_logger, _config.Name, remoteTopic, _config.MaxPacketSize);
                AckLocal(f.Link, id, fields.QoS);
                return;
            }
        }
        Task<PublishResult> task;
        try
        {
            task = client.PublishAsync(remoteTopic, message.Payload, fields.QoS, retain, properties).AsTask();
        }
        catch (MqttClientException)
        {
            return; // not connected: the session sends it again on the next link
        }
        if (fields.QoS == QoS.AtMostOnce)
        {
            task.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) Counters.OnSent();
                else Counters.OnDropped();
            }, TaskScheduler.Default);
            return;
        }
        var entry = new PendingForward(client, task, fields.QoS);
        lock (_gate) _pending[id] = entry;
        task.ContinueWith(_ => OnRemoteAcknowledged(id, entry), TaskScheduler.Default);
    }

    private void OnRemoteAcknowledged(ushort id, PendingForward entry)
    {
        lock (_gate)
        {
            if (!_pending.TryGetValue(id, out var current) || current != entry) return;
            if (!entry.Task.IsCompletedSuccessfully)
            {
                _pending.Remove(id); // the client was replaced or disposed: the session sends the message again
                return;
            }
            CompleteLocked(id, entry);
        }
    }

    /// <summary>Under <see cref="_gate"/>: the remote took the message; acknowledge it to the local session, when a
    /// link is open (otherwise the next link acknowledges the copy the session sends again).</summary>
    private void CompleteLocked(ushort id, PendingForward entry)
    {
        var link = Volatile.Read(ref _link);
        if (link is null || link.IsClosed) return;
        _pending.Remove(id);
        var result = entry.Task.Result;
        // PUBCOMP "packet identifier not found" (MQTT 5) answers the PUBREL of a message an earlier remote took
        // (PUBREC) before the bridge moved: it was carried.
        if (result.IsSuccess || result.ReasonCode == ReasonCode.PacketIdentifierNotFound) Counters.OnSent();
        else
        {
            Counters.OnDropped();
            Log.RemoteRefusedMessage(_logger, _config.Name, result.ReasonCode.ToString());
        }
        _ackedOn[id] = link;
        // The packet's QoS is the one the session sent: a PUBREC for QoS 2 (PUBREL, PUBCOMP follow), PUBACK for 1.
        link.Post(new PublishAckPacket(entry.QoS == QoS.ExactlyOnce ? PacketType.PubRec : PacketType.PubAck, id));
    }

    private static void AckLocal(LocalLink link, ushort id, QoS qos)
    {
        if (qos == QoS.AtLeastOnce) link.Post(new PublishAckPacket(PacketType.PubAck, id));
        else if (qos == QoS.ExactlyOnce) link.Post(new PublishAckPacket(PacketType.PubRec, id));
    }

    private async Task IncomingLoopAsync(MqttClient client, LocalLink link, CancellationToken ct)
    {
        await foreach (var m in client.ReadMessagesAsync(ct).ConfigureAwait(false))
        {
            BridgeTopic? mapping = null;
            foreach (var t in _config.Topics)
            {
                if (t.Incoming && Topics.Matches(t.RemoteFilter, m.Topic))
                {
                    mapping = t;
                    break;
                }
            }
            if (mapping is null || link.IsClosed)
            {
                Counters.OnDropped();
                continue;
            }
            Volatile.Write(ref _lastActivityMs, _broker.NowMs);
            MqttProperties? properties = null;
            if (m.Properties is { } p)
            {
                properties = PublishProperties.From(p)?.ToMqttProperties();
                if (p.MessageExpiryInterval is { } expiry) (properties ??= new MqttProperties()).MessageExpiryInterval = expiry;
            }
            var publish = new PublishPacket
            {
                Topic = mapping.ToLocal(m.Topic),
                Payload = m.Payload,
                QoS = m.QoS,
                Retain = m.Retain,
                PacketId = m.QoS == QoS.AtMostOnce ? (ushort)0 : NextIncomingId(),
                Properties = properties,
            };
            link.Post(publish);
            Counters.OnReceived();
        }
    }

    private ushort NextIncomingId()
    {
        _nextIncomingId = _nextIncomingId == ushort.MaxValue ? (ushort)1 : (ushort)(_nextIncomingId + 1);
        return _nextIncomingId;
    }
}
