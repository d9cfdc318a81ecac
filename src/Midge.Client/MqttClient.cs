using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Client;

/// <summary>
/// An MQTT 3.1 / 3.1.1 / 5.0 client. Thread-safe: publish, subscribe and read from any thread.
/// </summary>
/// <remarks>
/// Incoming QoS 1 messages are acknowledged when they are accepted into the incoming buffer (with
/// <see cref="BufferFullMode.Wait"/> that is when there is room, so a slow consumer slows the server down);
/// incoming QoS 2 messages are handed out once, their ids remembered until PUBREL. Outgoing QoS 1/2 messages
/// keep their packet id until acknowledged and are resent (DUP) after an automatic reconnect, PUBRELs too.
/// </remarks>
public sealed class MqttClient : IAsyncDisposable
{
    private abstract class PendingOp
    {
        public ushort PacketId;
    }

    private sealed class PublishOp : PendingOp
    {
        public required PublishPacket Packet;
        public required TaskCompletionSource<PublishResult> Done;
        public long Sequence;
        public bool Released;
    }

    private sealed class SubscribeOp : PendingOp
    {
        public readonly TaskCompletionSource<SubscribeResult> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class UnsubscribeOp : PendingOp
    {
        public readonly TaskCompletionSource<UnsubscribeResult> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Count;
    }

    private readonly object _gate = new();
    private readonly Dictionary<ushort, PendingOp> _pending = [];
    private readonly List<TopicSubscription> _subscriptions = [];
    private readonly HashSet<ushort> _incomingQos2 = [];
    private readonly Dictionary<ushort, string> _incomingAliases = [];
    private readonly InflightWindow _window = new();
    private readonly CancellationTokenSource _lifetime = new();
    private Channel<ReceivedMessage> _messages;
    private MqttConnection? _connection;
    private ushort _nextPacketId;
    private long _sequence;
    private bool _closing;
    private bool _connectedOnce;
    private string _clientId;
    private long _dropped;
    private volatile bool _deliveryBlocked;
    private Task _reconnectTask = Task.CompletedTask;
    private uint _serverMaxPacketSize;
    private QoS _serverMaxQoS = QoS.ExactlyOnce;

    public MqttClient(MqttClientOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _clientId = options.ClientId;
        _messages = CreateBuffer();
    }

    public MqttClientOptions Options { get; private set; }

    /// <summary>
    /// Points the next <see cref="ConnectAsync"/> at <paramref name="options"/> (another server, as a bridge with
    /// several addresses moves), keeping what this client holds: its unacknowledged QoS 1/2 publishes keep their
    /// packet identifiers and are resent there (a PUBREL for those the previous server acknowledged with PUBREC), as
    /// Mosquitto's bridge does. Only while not connected; the client id stays this client's.
    /// </summary>
    public void UseOptions(MqttClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        lock (_gate)
        {
            if (_connection is not null) throw new MqttClientException("already connected");
            Options = options;
        }
    }

    /// <summary>The CONNACK of the latest successful connect.</summary>
    public ConnectResult? ServerConnAck { get; private set; }

    public bool IsConnected => Volatile.Read(ref _connection) is not null;

    /// <summary>The client id in use (the server's assigned one when it assigned one).</summary>
    public string ClientId => _clientId;

    /// <summary>Incoming messages dropped because the buffer was full (DropOldest/DropNewest).</summary>
    public long DroppedMessages => Interlocked.Read(ref _dropped);

    /// <summary>QoS 1/2 publishes awaiting acknowledgement.</summary>
    public int InflightCount => _window.InUse;

    /// <summary>Raised (on a pool thread) each time a connection ends.</summary>
    public event EventHandler<MqttDisconnectedEventArgs>? Disconnected;

    /// <summary>Raised after each automatic reconnect.</summary>
    public event EventHandler<ConnectResult>? Reconnected;

    /// <summary>Messages as they arrive. Ends when the client is disconnected for good (DisconnectAsync,
    /// dispose, or a lost connection without automatic reconnect).</summary>
    public IAsyncEnumerable<ReceivedMessage> Messages => ReadMessagesAsync();

    public IAsyncEnumerable<ReceivedMessage> ReadMessagesAsync(CancellationToken ct = default) => _messages.Reader.ReadAllAsync(ct);

    /// <summary>Waits for one message.</summary>
    public ValueTask<ReceivedMessage> ReadMessageAsync(CancellationToken ct = default) => _messages.Reader.ReadAsync(ct);

    private Channel<ReceivedMessage> CreateBuffer()
    {
        var mode = Options.IncomingBufferFullMode switch
        {
            BufferFullMode.DropOldest => BoundedChannelFullMode.DropOldest,
            BufferFullMode.DropNewest => BoundedChannelFullMode.DropWrite,
            _ => BoundedChannelFullMode.Wait,
        };
        return Channel.CreateBounded<ReceivedMessage>(
            new BoundedChannelOptions(Math.Max(1, Options.IncomingBufferCapacity)) { FullMode = mode, SingleWriter = true },
            _ => Interlocked.Increment(ref _dropped));
    }

    // ---------------- connect / disconnect ----------------

    /// <summary>Connects and waits for CONNACK. Throws <see cref="MqttConnectException"/> when the server refuses.</summary>
    public async ValueTask<ConnectResult> ConnectAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_lifetime.IsCancellationRequested, this);
        lock (_gate)
        {
            if (_connection is not null) throw new MqttClientException("already connected");
            _closing = false;
            if (_messages.Reader.Completion.IsCompleted) _messages = CreateBuffer();
        }
        return await ConnectCoreAsync(reconnect: false, ct).ConfigureAwait(false);
    }

    private ConnectPacket BuildConnect(bool reconnect)
    {
        var o = Options;
        bool v5 = o.ProtocolVersion == ProtocolVersion.V500;
        var connect = new ConnectPacket
        {
            ProtocolVersion = o.ProtocolVersion,
            ProtocolName = o.ProtocolVersion == ProtocolVersion.V310 ? "MQIsdp" : "MQTT",
            CleanStart = reconnect && v5 ? false : o.CleanStart,
            KeepAlive = (ushort)Math.Clamp(o.KeepAlive.TotalSeconds, 0, ushort.MaxValue),
            ClientId = _clientId,
            UserName = o.UserName,
            Password = o.Password?.ToArray(),
            IsBridge = o.Bridge && !v5,
        };
        if (o.Will is { } will)
        {
            connect.Will = new WillMessage { Topic = will.Topic, Payload = will.Payload, QoS = will.QoS, Retain = will.Retain, Properties = v5 ? will.Properties : null };
        }
        if (v5)
        {
            var p = o.ConnectProperties?.Clone() ?? new MqttProperties();
            if (o.SessionExpiryInterval is { } sei) p.SessionExpiryInterval = sei;
            if (o.ReceiveMaximum is { } rm) p.ReceiveMaximum = rm;
            if (o.MaximumPacketSize is { } mps) p.MaximumPacketSize = mps;
            if (o.TopicAliasMaximum > 0) p.TopicAliasMaximum = o.TopicAliasMaximum;
            if (o.RequestResponseInformation is { } rri) p.RequestResponseInformation = rri ? (byte)1 : (byte)0;
            if (o.RequestProblemInformation is { } rpi) p.RequestProblemInformation = rpi ? (byte)1 : (byte)0;
            if (o.UserProperties is { } ups) foreach (var up in ups) p.AddUserProperty(up.Name, up.Value);
            connect.Properties = p;
        }
        return connect;
    }

    private async ValueTask<ConnectResult> ConnectCoreAsync(bool reconnect, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, _lifetime.Token);
        timeout.CancelAfter(Options.ConnectTimeout);
        MqttConnection connection;
        try
        {
            connection = await MqttConnection.OpenAsync(Options, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && !_lifetime.IsCancellationRequested)
        {
            throw new TimeoutException($"connecting to {Options.Host}:{Options.Port} took longer than {Options.ConnectTimeout}");
        }
        ConnAckPacket connAck;
        try
        {
            await connection.SendDirectAsync(BuildConnect(reconnect), timeout.Token).ConfigureAwait(false);
            var packet = await connection.ReadPacketAsync(timeout.Token).ConfigureAwait(false);
            connAck = packet switch
            {
                ConnAckPacket c => c,
                null => throw new MqttConnectionLostException("the server closed the connection before CONNACK"),
                _ => throw new MqttProtocolException(ReasonCode.ProtocolError, $"expected CONNACK, got {packet.Type}"),
            };
        }
        catch (Exception ex)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            if (ex is OperationCanceledException && !ct.IsCancellationRequested && !_lifetime.IsCancellationRequested)
                throw new TimeoutException($"no CONNACK within {Options.ConnectTimeout}");
            throw;
        }

        var props = connAck.Properties;
        if (props?.AssignedClientIdentifier is { } assigned) _clientId = assigned;
        var result = new ConnectResult(connAck.ReasonCode, connAck.SessionPresent, props)
        {
            V3ReturnCode = connAck.V3ReturnCode,
            ClientId = _clientId,
        };
        if (!result.IsSuccess)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new MqttConnectException(result);
        }

        _serverMaxPacketSize = props?.MaximumPacketSize ?? 0;
        _serverMaxQoS = props?.MaximumQoS is { } mq ? (QoS)mq : QoS.ExactlyOnce;
        _window.SetLimit(props?.ReceiveMaximum ?? ushort.MaxValue);
        _incomingAliases.Clear();
        if (!connAck.SessionPresent) _incomingQos2.Clear();
        var keepAlive = props?.ServerKeepAlive is { } ska ? TimeSpan.FromSeconds(ska) : Options.KeepAlive;

        List<TopicSubscription>? resubscribe = null;
        connection.StartWriter();
        lock (_gate)
        {
            if (_closing)
            {
                connection.Abort();
                throw new ObjectDisposedException(nameof(MqttClient));
            }
            _connection = connection;
            ServerConnAck = result;
            // Resend what the server has not acknowledged, in the order it was first sent.
            foreach (var op in _pending.Values.OfType<PublishOp>().OrderBy(p => p.Sequence))
            {
                if (op.Released)
                {
                    connection.Send(new PublishAckPacket(PacketType.PubRel, op.PacketId));
                }
                else
                {
                    op.Packet.Dup = true;
                    connection.Send(op.Packet);
                }
            }
            if (reconnect && !connAck.SessionPresent && _subscriptions.Count > 0) resubscribe = [.. _subscriptions];
            _connectedOnce = true;
        }
        _ = Task.Run(() => ReadLoopAsync(connection));
        if (keepAlive > TimeSpan.Zero) _ = Task.Run(() => KeepAliveLoopAsync(connection, keepAlive));
        if (resubscribe is not null) _ = ResubscribeAsync(resubscribe);
        return result;
    }

    private async Task ResubscribeAsync(List<TopicSubscription> subscriptions)
    {
        try
        {
            await SubscribeCoreAsync(subscriptions, null, remember: false, _lifetime.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MqttClientException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Sends DISCONNECT (MQTT 5: with <paramref name="reason"/> and an optional new session expiry),
    /// flushes and closes. Unacknowledged publishes fail, unless <see cref="MqttClientOptions.KeepPublishesOnConnectionLoss"/>
    /// keeps them for the next <see cref="ConnectAsync"/> (disposing fails them).</summary>
    public async ValueTask DisconnectAsync(ReasonCode reason = ReasonCode.NormalDisconnection, uint? sessionExpiryInterval = null, CancellationToken ct = default)
    {
        MqttConnection? connection;
        lock (_gate)
        {
            _closing = true;
            connection = _connection;
            _connection = null;
        }
        if (connection is not null)
        {
            var disconnect = new DisconnectPacket { ReasonCode = reason };
            if (sessionExpiryInterval is { } sei && connection.Version == ProtocolVersion.V500) disconnect.GetOrCreateProperties().SessionExpiryInterval = sei;
            connection.Send(disconnect);
            await connection.DrainAsync(TimeSpan.FromSeconds(5)).WaitAsync(ct).ConfigureAwait(false);
            connection.Abort();
        }
        FailPending(new MqttClientException("the client disconnected"), publishesToo: !Options.KeepPublishesOnConnectionLoss);
        _messages.Writer.TryComplete();
        if (connection is not null)
            RaiseDisconnected(new MqttDisconnectedEventArgs { ReasonCode = reason, ByClient = true });
    }

    public async ValueTask DisposeAsync()
    {
        if (_lifetime.IsCancellationRequested) return;
        try
        {
            await DisconnectAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        _lifetime.Cancel();
        FailPending(new ObjectDisposedException(nameof(MqttClient)), publishesToo: true);
        try
        {
            await _reconnectTask.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Drops the connection without DISCONNECT, as a network failure would (tests, will messages).</summary>
    internal void AbortConnection() => Volatile.Read(ref _connection)?.Abort();

    // ---------------- publish ----------------

    /// <summary>
    /// Publishes a message. QoS 0 completes when written to the socket, QoS 1 on PUBACK, QoS 2 on PUBCOMP (or an
    /// error PUBREC). QoS 1/2 wait for a slot under the server's Receive Maximum. A packet above the server's
    /// Maximum Packet Size fails at once with <see cref="MqttClientException"/>.
    /// </summary>
    public ValueTask<PublishResult> PublishAsync(string topic, ReadOnlyMemory<byte> payload, QoS qos = QoS.AtMostOnce,
        bool retain = false, MqttProperties? properties = null, CancellationToken ct = default)
    {
        if (!Topics.IsValidTopicName(topic)) throw new ArgumentException($"invalid topic name '{topic}'", nameof(topic));
        if (qos > QoS.ExactlyOnce) throw new ArgumentOutOfRangeException(nameof(qos));
        if (qos > _serverMaxQoS) throw new MqttClientException($"the server accepts QoS {(int)_serverMaxQoS} at most");
        var packet = new PublishPacket { Topic = topic, Payload = payload, QoS = qos, Retain = retain, Properties = properties, PacketId = qos == QoS.AtMostOnce ? (ushort)0 : (ushort)1 };
        if (_serverMaxPacketSize > 0)
        {
            var connection = Volatile.Read(ref _connection);
            int size = PacketEncoder.GetSize(packet, connection?.Version ?? Options.ProtocolVersion);
            if (size > _serverMaxPacketSize) throw new MqttClientException($"the packet ({size} bytes) exceeds the server's Maximum Packet Size ({_serverMaxPacketSize})");
        }
        if (qos == QoS.AtMostOnce)
        {
            var connection = Volatile.Read(ref _connection) ?? throw new MqttClientException("not connected");
            var written = new TaskCompletionSource<PublishResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!connection.Send(packet, written)) throw new MqttConnectionLostException("the connection is closing");
            return new ValueTask<PublishResult>(written.Task.WaitAsync(ct));
        }
        return PublishAckedAsync(packet, ct);
    }

    private async ValueTask<PublishResult> PublishAckedAsync(PublishPacket packet, CancellationToken ct)
    {
        if (!IsConnected && !(Options.Reconnect.Enabled && _connectedOnce && !_closing)) throw new MqttClientException("not connected");
        await _window.AcquireAsync(ct).ConfigureAwait(false);
        var op = new PublishOp { Packet = packet, Done = new TaskCompletionSource<PublishResult>(TaskCreationOptions.RunContinuationsAsynchronously) };
        lock (_gate)
        {
            if (_closing || (_connection is null && !Options.Reconnect.Enabled))
            {
                _window.Release();
                throw new MqttClientException("not connected");
            }
            op.PacketId = packet.PacketId = NextPacketId();
            op.Sequence = ++_sequence;
            _pending.Add(op.PacketId, op);
            _connection?.Send(packet);
        }
        return await op.Done.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Under <see cref="_gate"/>.</summary>
    private ushort NextPacketId()
    {
        if (_pending.Count >= ushort.MaxValue) throw new MqttClientException("no packet identifier is free");
        do
        {
            _nextPacketId = _nextPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_nextPacketId + 1);
        }
        while (_pending.ContainsKey(_nextPacketId));
        return _nextPacketId;
    }

    // ---------------- subscribe ----------------

    public ValueTask<SubscribeResult> SubscribeAsync(string filter, QoS qos = QoS.AtMostOnce, CancellationToken ct = default) =>
        SubscribeAsync([new TopicSubscription(filter, qos)], null, ct);

    /// <summary>Subscribes; the result holds one reason code per filter. The subscriptions are remembered and
    /// sent again after an automatic reconnect that finds no session.</summary>
    public ValueTask<SubscribeResult> SubscribeAsync(IEnumerable<TopicSubscription> subscriptions, MqttProperties? properties = null, CancellationToken ct = default) =>
        SubscribeCoreAsync([.. subscriptions], properties, remember: true, ct);

    private async ValueTask<SubscribeResult> SubscribeCoreAsync(List<TopicSubscription> subscriptions, MqttProperties? properties, bool remember, CancellationToken ct)
    {
        if (subscriptions.Count == 0) throw new ArgumentException("no topic filter", nameof(subscriptions));
        foreach (var s in subscriptions)
        {
            if (!Topics.IsValidSubscriptionFilter(s.Filter)) throw new ArgumentException($"invalid topic filter '{s.Filter}'", nameof(subscriptions));
        }
        var op = new SubscribeOp();
        lock (_gate)
        {
            var connection = _connection ?? throw new MqttClientException("not connected");
            op.PacketId = NextPacketId();
            _pending.Add(op.PacketId, op);
            connection.Send(new SubscribePacket { PacketId = op.PacketId, Subscriptions = subscriptions, Properties = properties });
        }
        var result = await op.Done.Task.WaitAsync(ct).ConfigureAwait(false);
        if (remember)
        {
            lock (_gate)
            {
                for (int i = 0; i < subscriptions.Count && i < result.ReasonCodes.Count; i++)
                {
                    if (ReasonCodes.IsError(result.ReasonCodes[i])) continue;
                    _subscriptions.RemoveAll(s => s.Filter == subscriptions[i].Filter);
                    _subscriptions.Add(subscriptions[i]);
                }
            }
        }
        return result;
    }

    public ValueTask<UnsubscribeResult> UnsubscribeAsync(string filter, CancellationToken ct = default) =>
        UnsubscribeAsync([filter], null, ct);

    public async ValueTask<UnsubscribeResult> UnsubscribeAsync(IEnumerable<string> filters, MqttProperties? properties = null, CancellationToken ct = default)
    {
        List<string> list = [.. filters];
        if (list.Count == 0) throw new ArgumentException("no topic filter", nameof(filters));
        var op = new UnsubscribeOp { Count = list.Count };
        lock (_gate)
        {
            var connection = _connection ?? throw new MqttClientException("not connected");
            op.PacketId = NextPacketId();
            _pending.Add(op.PacketId, op);
            _subscriptions.RemoveAll(s => list.Contains(s.Filter));
            connection.Send(new UnsubscribePacket { PacketId = op.PacketId, Filters = list, Properties = properties });
        }
        return await op.Done.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    // ---------------- read loop ----------------

    private async Task ReadLoopAsync(MqttConnection connection)
    {
        MqttDisconnectedEventArgs? why = null;
        try
        {
            while (why is null)
            {
                var packet = await connection.ReadPacketAsync(connection.Closed).ConfigureAwait(false);
                switch (packet)
                {
                    case null:
                        why = new MqttDisconnectedEventArgs { ReasonCode = ReasonCode.UnspecifiedError, Exception = new MqttConnectionLostException("the server closed the connection") };
                        break;
                    case PublishPacket publish:
                        await OnPublishAsync(connection, publish).ConfigureAwait(false);
                        break;
                    case PublishAckPacket ack:
                        OnAck(connection, ack);
                        break;
                    case SubAckPacket subAck:
                        Complete<SubscribeOp>(subAck.PacketId)?.Done.TrySetResult(new SubscribeResult(subAck.ReasonCodes, subAck.Properties));
                        break;
                    case UnsubAckPacket unsubAck:
                        if (Complete<UnsubscribeOp>(unsubAck.PacketId) is { } uop)
                        {
                            IReadOnlyList<ReasonCode> codes = unsubAck.ReasonCodes.Count > 0 ? unsubAck.ReasonCodes : Enumerable.Repeat(ReasonCode.Success, uop.Count).ToList();
                            uop.Done.TrySetResult(new UnsubscribeResult(codes, unsubAck.Properties));
                        }
                        break;
                    case PingRespPacket:
                        break;
                    case DisconnectPacket disconnect:
                        why = new MqttDisconnectedEventArgs { ReasonCode = disconnect.ReasonCode, ByServer = true, Properties = disconnect.Properties };
                        break;
                    default:
                        throw new MqttProtocolException(ReasonCode.ProtocolError, $"unexpected {packet.Type} from the server");
                }
            }
        }
        catch (MqttProtocolException ex)
        {
            if (connection.Version == ProtocolVersion.V500)
            {
                connection.Send(new DisconnectPacket { ReasonCode = ex.Reason });
                await connection.DrainAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
            why = new MqttDisconnectedEventArgs { ReasonCode = ex.Reason, Exception = ex };
        }
        catch (Exception ex)
        {
            why = new MqttDisconnectedEventArgs
            {
                ReasonCode = connection.Closed.IsCancellationRequested && KeepAliveExpired(connection) ? ReasonCode.KeepAliveTimeout : ReasonCode.UnspecifiedError,
                Exception = ex,
            };
        }
        OnConnectionLost(connection, why);
        await connection.DisposeAsync().ConfigureAwait(false);
    }

    private T? Complete<T>(ushort packetId) where T : PendingOp
    {
        lock (_gate)
        {
            if (_pending.TryGetValue(packetId, out var op) && op is T typed)
            {
                _pending.Remove(packetId);
                return typed;
            }
        }
        return null;
    }

    private void OnAck(MqttConnection connection, PublishAckPacket ack)
    {
        switch (ack.Type)
        {
            case PacketType.PubAck:
            case PacketType.PubComp:
                if (Complete<PublishOp>(ack.PacketId) is { } done)
                {
                    _window.Release();
                    done.Done.TrySetResult(new PublishResult(ack.ReasonCode, ack.PacketId, ack.Properties));
                }
                break;
            case PacketType.PubRec:
                PublishOp? op;
                lock (_gate)
                {
                    _pending.TryGetValue(ack.PacketId, out var p);
                    op = p as PublishOp;
                    if (op is not null && ReasonCodes.IsError(ack.ReasonCode))
                    {
                        _pending.Remove(ack.PacketId);
                    }
                    else if (op is not null)
                    {
                        op.Released = true;
                    }
                }
                if (op is not null && ReasonCodes.IsError(ack.ReasonCode))
                {
                    _window.Release();
                    op.Done.TrySetResult(new PublishResult(ack.ReasonCode, ack.PacketId, ack.Properties));
                    break;
                }
                // Unknown id too: answer PUBREL so the server can finish (MQTT 5: with 0x92).
                connection.Send(new PublishAckPacket(PacketType.PubRel, ack.PacketId,
                    op is null && connection.Version == ProtocolVersion.V500 ? ReasonCode.PacketIdentifierNotFound : ReasonCode.Success));
                break;
            case PacketType.PubRel:
                bool known = _incomingQos2.Remove(ack.PacketId);
                connection.Send(new PublishAckPacket(PacketType.PubComp, ack.PacketId,
                    !known && connection.Version == ProtocolVersion.V500 ? ReasonCode.PacketIdentifierNotFound : ReasonCode.Success));
                break;
        }
    }

    private async ValueTask OnPublishAsync(MqttConnection connection, PublishPacket publish)
    {
        string topic = publish.Topic;
        if (publish.Properties?.TopicAlias is { } alias)
        {
            if (alias == 0 || alias > Options.TopicAliasMaximum) throw new MqttProtocolException(ReasonCode.TopicAliasInvalid, $"topic alias {alias} above our maximum");
            if (topic.Length > 0) _incomingAliases[alias] = topic;
            else if (!_incomingAliases.TryGetValue(alias, out topic!)) throw new MqttProtocolException(ReasonCode.ProtocolError, $"unknown topic alias {alias}");
        }
        else if (topic.Length == 0)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "empty topic without a topic alias");
        }

        if (publish.QoS == QoS.ExactlyOnce && !_incomingQos2.Add(publish.PacketId))
        {
            // Already handed out; the server did not see our PUBREC.
            connection.Send(new PublishAckPacket(PacketType.PubRec, publish.PacketId));
            return;
        }

        var message = ReceivedMessage.From(publish, topic);
        var writer = _messages.Writer;
        if (!writer.TryWrite(message) && Options.IncomingBufferFullMode == BufferFullMode.Wait)
        {
            _deliveryBlocked = true;
            try
            {
                await writer.WriteAsync(message, connection.Closed).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
            }
            finally
            {
                _deliveryBlocked = false;
            }
        }
        if (publish.QoS == QoS.AtLeastOnce) connection.Send(new PublishAckPacket(PacketType.PubAck, publish.PacketId));
        else if (publish.QoS == QoS.ExactlyOnce) connection.Send(new PublishAckPacket(PacketType.PubRec, publish.PacketId));
    }

    // ---------------- keep-alive ----------------

    private bool KeepAliveExpired(MqttConnection connection) => Volatile.Read(ref _keepAliveExpired) == connection;

    private MqttConnection? _keepAliveExpired;

    private async Task KeepAliveLoopAsync(MqttConnection connection, TimeSpan keepAlive)
    {
        long ka = (long)keepAlive.TotalMilliseconds;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Clamp(ka / 4, 50, 1000)));
        long pingSentAt = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(connection.Closed).ConfigureAwait(false))
            {
                long now = Environment.TickCount64;
                if (pingSentAt != 0)
                {
                    if (connection.LastReceived >= pingSentAt || _deliveryBlocked)
                    {
                        pingSentAt = 0;
                    }
                    else if (now - pingSentAt >= ka)
                    {
                        Volatile.Write(ref _keepAliveExpired, connection);
                        connection.Abort();
                        return;
                    }
                }
                if (pingSentAt == 0 && (now - connection.LastSent >= ka || now - connection.LastReceived >= ka))
                {
                    pingSentAt = now;
                    connection.Send(PingReqPacket.Instance);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // ---------------- loss and reconnect ----------------

    private void OnConnectionLost(MqttConnection connection, MqttDisconnectedEventArgs why)
    {
        bool reconnect;
        lock (_gate)
        {
            if (_connection != connection) return;
            _connection = null;
            reconnect = Options.Reconnect.Enabled && !_closing && !_lifetime.IsCancellationRequested;
        }
        connection.Abort();
        var error = new MqttConnectionLostException($"connection lost ({why.ReasonCode})", why.Exception);
        FailPending(error, publishesToo: !reconnect && !Options.KeepPublishesOnConnectionLoss);
        if (!reconnect) _messages.Writer.TryComplete();
        RaiseDisconnected(new MqttDisconnectedEventArgs
        {
            ReasonCode = why.ReasonCode,
            ByServer = why.ByServer,
            Properties = why.Properties,
            Exception = why.Exception,
            WillReconnect = reconnect,
        });
        if (reconnect) _reconnectTask = Task.Run(ReconnectLoopAsync);
    }

    private async Task ReconnectLoopAsync()
    {
        var policy = Options.Reconnect;
        var delay = policy.InitialDelay;
        var ct = _lifetime.Token;
        while (true)
        {
            try
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            lock (_gate)
            {
                if (_closing) return;
            }
            try
            {
                var result = await ConnectCoreAsync(reconnect: true, ct).ConfigureAwait(false);
                Reconnected?.Invoke(this, result);
                return;
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                var next = delay * 2;
                delay = next > policy.MaxDelay ? policy.MaxDelay : next;
            }
            catch (Exception)
            {
                return;
            }
        }
    }

    private void FailPending(Exception error, bool publishesToo)
    {
        List<PendingOp> failed = [];
        lock (_gate)
        {
            foreach (var op in _pending.Values)
            {
                if (op is PublishOp && !publishesToo) continue;
                failed.Add(op);
            }
            foreach (var op in failed) _pending.Remove(op.PacketId);
        }
        foreach (var op in failed)
        {
            switch (op)
            {
                case PublishOp p:
                    _window.Release();
                    p.Done.TrySetException(error);
                    break;
                case SubscribeOp s:
                    s.Done.TrySetException(error);
                    break;
                case UnsubscribeOp u:
                    u.Done.TrySetException(error);
                    break;
            }
        }
        if (publishesToo) _window.FailAll(error);
    }

    private void RaiseDisconnected(MqttDisconnectedEventArgs args)
    {
        try
        {
            Disconnected?.Invoke(this, args);
        }
        catch (Exception)
        {
            // An application handler's failure must not break the client.
        }
    }
}
