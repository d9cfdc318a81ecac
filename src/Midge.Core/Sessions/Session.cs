using System.Diagnostics.CodeAnalysis;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Sessions;

/// <summary>
/// The state of one client id that outlives its connections, in memory: subscriptions, the outgoing queue
/// (<see cref="MessageQueue"/>) and inflight window (<see cref="InflightWindow"/>), and the exactly-once state of
/// incoming QoS 2 (<see cref="IncomingQoS2"/>). Everything mutable is guarded by <see cref="Sync"/>, a per-session
/// lock: deliveries from many publishers serialise here and nowhere more global. When the broker has a session store
/// (<see cref="ISessionStore"/>) and the session outlives its connection (Session Expiry Interval not 0), each change
/// is recorded there as it is made, under the same lock.
/// </summary>
public sealed class Session : ISession
{
    private readonly Broker _broker;
    // The queue, the inflight window and the incoming QoS 2 state are structs held here, not objects: a session costs
    // what it did when they were its own fields. Not readonly: they change in place. Their collections are created on
    // first use: most connections are idle most of the time, and an empty Queue, Dictionary or HashSet still costs
    // 40-80 bytes each.
    private MessageQueue _queue;
    /// <summary>Retained messages for new subscriptions that the writer has not taken yet (DeliverRetained).</summary>
    private Queue<QueuedEntry>? _retainedBacklog;
    private InflightWindow _inflight;
    private Dictionary<string, Subscription>? _subscriptions;
    private IncomingQoS2 _incomingQoS2;
    private Channel.MqttChannel? _channel;
    private IClientOutput? _output;
    private ClientLimits _limits;
    private uint _expiryInterval;
    private volatile bool _isBridge;

    internal Session(Broker broker, string clientId)
    {
        _broker = broker;
        ClientId = clientId;
    }

    public string ClientId { get; }

    internal object Sync { get; } = new();

    /// <summary>Subscriptions by (mount-point-prefixed) filter; null while there are none. Guarded by
    /// <see cref="Sync"/>; changed through <see cref="SetSubscription"/> and <see cref="RemoveSubscription"/>.</summary>
    internal IReadOnlyDictionary<string, Subscription>? Subscriptions => _subscriptions;

    public int SubscriptionCount => _subscriptions?.Count ?? 0;

    IReadOnlyList<Subscription> ISession.Subscriptions
    {
        get { lock (Sync) return _subscriptions is { } subscriptions ? [.. subscriptions.Values] : []; }
    }

    internal void SetSubscription(string filter, Subscription subscription)
    {
        (_subscriptions ??= new(StringComparer.Ordinal))[filter] = subscription;
        Store?.SubscriptionSet(ClientId, subscription);
    }

    /// <summary>Removes a subscription; the map goes with the last one.</summary>
    internal bool RemoveSubscription(string filter, [NotNullWhen(true)] out Subscription? removed)
    {
        removed = null;
        if (_subscriptions is null || !_subscriptions.Remove(filter, out removed)) return false;
        if (_subscriptions.Count == 0) _subscriptions = null;
        Store?.SubscriptionRemoved(ClientId, filter);
        return true;
    }

    /// <summary>Packet ids of incoming QoS 2 PUBLISHes that were routed and await PUBREL (<see cref="IncomingQoS2"/>).
    /// Guarded by the owning channel (only its read loop touches them).</summary>
    internal bool IsIncomingQoS2Pending(ushort packetId) => _incomingQoS2.Contains(packetId);

    public int IncomingQoS2Count => _incomingQoS2.Count;

    internal void AddIncomingQoS2(ushort packetId)
    {
        if (_incomingQoS2.Add(packetId)) Store?.IncomingQoS2Added(ClientId, packetId);
    }

    internal bool RemoveIncomingQoS2(ushort packetId)
    {
        if (!_incomingQoS2.Remove(packetId)) return false;
        Store?.IncomingQoS2Removed(ClientId, packetId);
        return true;
    }

    /// <summary>MQTT 5 Session Expiry Interval in seconds; uint.MaxValue = never. 3.x persistent = never. With a
    /// session store, a session is stored while this is not 0: setting it from 0 saves the session whole, setting it
    /// to 0 removes it from the store.</summary>
    public uint ExpiryInterval
    {
        get => _expiryInterval;
        internal set
        {
            if (_broker.SessionStore is not { } store)
            {
                _expiryInterval = value;
                return;
            }
            lock (Sync)
            {
                uint old = _expiryInterval;
                _expiryInterval = value;
                if (old == value) return;
                if (value == 0) store.SessionRemoved(ClientId);
                else if (old == 0) store.SessionSaved(GetStateLocked());
                else store.SessionUpdated(ClientId, value, DisconnectedAt());
            }
        }
    }

    /// <summary>Broker clock (ms) when the last connection ended; 0 while connected.</summary>
    public long DisconnectedAtMs { get; private set; }

    /// <summary>The store to record this session's changes in: the broker's, while the session outlives its
    /// connection; null otherwise (and always without a store: nothing is recorded).</summary>
    private ISessionStore? Store => _broker.SessionStore is { } store && _expiryInterval != 0 ? store : null;

    /// <summary>Whether the session's changes are recorded in a store (there is one, and the session outlives its
    /// connection).</summary>
    internal bool IsStored => Store is not null;

    internal Channel.MqttChannel? Channel => Volatile.Read(ref _channel);

    public bool IsOnline => Volatile.Read(ref _channel) is not null;

    /// <summary>
    /// Whether the last connection was another broker's bridge: its CONNECT had the bridge bit (0x80 in the protocol
    /// level, Mosquitto's <c>try_private</c>). Its own messages are never sent back to it and the RETAIN flag it gets
    /// is the published one (<see cref="Routing.DeliveryRule"/>), as Mosquitto treats its <c>is_bridge</c> clients.
    /// Kept while the bridge is away, so what is queued for it meanwhile follows the same rule. Read without the lock
    /// by the router; written by <see cref="Attach"/>.
    /// </summary>
    public bool IsBridge => _isBridge;

    public int QueuedCount { get { lock (Sync) return _queue.Count; } }

    public int InflightCount { get { lock (Sync) return _inflight.Count; } }

    /// <summary>The ACL and identity of the last connection (kept while the client is away).</summary>
    internal (Midge.Security.IAclChecker? Acl, Midge.Security.ClientIdentity? Identity) Access
    {
        get { lock (Sync) return (_limits.Acl, _limits.Identity); }
    }

    /// <summary>Attaches a connection, then resends unacknowledged messages (DUP set) and PUBRELs in their
    /// original order and sends what was queued while the client was away.</summary>
    internal void Attach(Channel.MqttChannel channel, IClientOutput output, ClientLimits limits, long nowMs)
    {
        lock (Sync)
        {
            _channel = channel;
            _output = output;
            _limits = limits;
            _isBridge = limits.IsBridge;
            DisconnectedAtMs = 0;
            Store?.SessionUpdated(ClientId, _expiryInterval, null);
            if (_inflight.InSendOrder() is { } resend)
            {
                foreach (var (id, e) in resend)
                {
                    if (e.State == InflightState.AwaitingPubComp)
                    {
                        SendControlLocked(new PublishAckPacket(PacketType.PubRel, id));
                    }
                    else
                    {
                        // Onward delivery has started, so it completes even if the message has expired since
                        // (MQTT 5 section 3.3.2.3.3 deletes only copies whose delivery has not started).
                        WritePublish(output, e.Message, id, e.QoS, e.Retain, dup: true, e.SubscriptionIds, nowMs, resend: true);
                    }
                }
            }
            PumpLocked(nowMs);
        }
    }

    internal void SetAcl(Midge.Security.IAclChecker? acl)
    {
        lock (Sync) _limits.Acl = acl;
    }

    /// <summary>Detaches <paramref name="channel"/> if it is still the attached one.</summary>
    internal bool Detach(Channel.MqttChannel channel, long nowMs)
    {
        lock (Sync)
        {
            if (!ReferenceEquals(_channel, channel)) return false;
            _channel = null;
            _output = null;
            DisconnectedAtMs = nowMs;
            Store?.SessionUpdated(ClientId, _expiryInterval, _broker.UtcNow);
            return true;
        }
    }

    /// <summary>
    /// Delivers a message as the router decided (<see cref="Routing.DeliveryRule"/>): straight to the connection
    /// when the window allows, otherwise into the bounded queue. Returns false when it was dropped for a queue limit.
    /// </summary>
    internal bool Deliver(Message message, in Routing.Delivery delivery, long nowMs, object? sharedGroup = null)
    {
        var (qos, retain, subscriptionIds) = delivery;
        lock (Sync)
        {
            // Read rights are checked at delivery, as Mosquitto does (acl_file 'read').
            if (_limits.Acl is { } acl && !acl.CanDeliver(_limits.Identity!, message.Topic)) return true;
            var output = _output;
            if (output is null)
            {
                if (qos == QoS.AtMostOnce && !_broker.Config.QueueQoS0Messages) return true;
                return EnqueueLocked(message, qos, retain, subscriptionIds, sharedGroup);
            }
            if (_queue.IsEmpty && _retainedBacklog is not { Count: > 0 })
            {
                if (qos == QoS.AtMostOnce)
                {
                    if (HasDirectRoom(output, message))
                    {
                        WritePublish(output, message, 0, qos, retain, dup: false, subscriptionIds, nowMs);
                        return true;
                    }
                }
                else if (HasWindowLocked(message))
                {
                    SendInflightLocked(output, message, qos, retain, subscriptionIds, nowMs, sharedGroup);
                    return true;
                }
            }
            bool queued = EnqueueLocked(message, qos, retain, subscriptionIds, sharedGroup);
            // The writer may have drained (and found the queue empty) between our backlog check and the
            // enqueue; pumping here means a queued message never waits for the next delivery to move.
            PumpLocked(nowMs);
            return queued;
        }
    }

    /// <summary>
    /// Delivers a retained message to a new subscription (RETAIN set). However many match, none is lost to the
    /// queue's limits: what the writer and the window cannot take at once waits in the retained backlog, which is
    /// drained as the writer drains, before live messages (so a newer live value never arrives before an older
    /// retained one). The backlog only refers to messages the retained store holds; it is bounded at twice the
    /// store's size plus 1,024 (a client re-subscribing faster than it reads), past that retained copies are
    /// dropped and counted.
    /// </summary>
    internal void DeliverRetained(Message message, in Routing.Delivery delivery, long nowMs)
    {
        var (qos, retain, subscriptionIds) = delivery; // RETAIN 1 (MQTT-3.3.1-8): DeliveryRule.ForRetained
        lock (Sync)
        {
            if (_limits.Acl is { } acl && !acl.CanDeliver(_limits.Identity!, message.Topic)) return;
            var output = _output;
            if (output is null)
            {
                EnqueueLocked(message, qos, retain, subscriptionIds, sharedGroup: null);
                return;
            }
            if (_retainedBacklog is not { Count: > 0 } && _queue.IsEmpty)
            {
                if (qos == QoS.AtMostOnce ? HasDirectRoom(output, message) : HasWindowLocked(message))
                {
                    if (qos == QoS.AtMostOnce) WritePublish(output, message, 0, qos, retain, dup: false, subscriptionIds, nowMs);
                    else SendInflightLocked(output, message, qos, retain, subscriptionIds, nowMs, sharedGroup: null);
                    return;
                }
            }
            var backlog = _retainedBacklog ??= new();
            if (backlog.Count >= 2L * _broker.RetainedCount + 1024)
            {
                _broker.Dropped(ClientId, message, "retained backlog full");
                return;
            }
            backlog.Enqueue(new QueuedEntry(message, qos, retain, subscriptionIds, SharedGroup: null));
        }
    }

    /// <summary>PUBACK from the client.</summary>
    internal AckOutcome OnPubAck(ushort packetId, long nowMs) => Complete(packetId, InflightState.AwaitingPubAck, nowMs);

    /// <summary>PUBCOMP from the client.</summary>
    internal AckOutcome OnPubComp(ushort packetId, long nowMs) => Complete(packetId, InflightState.AwaitingPubComp, nowMs);

    /// <summary>The acknowledgement that ends a flow (PUBACK, or PUBCOMP): the id is free, the window moves on.</summary>
    private AckOutcome Complete(ushort packetId, InflightState awaited, long nowMs)
    {
        lock (Sync)
        {
            if (!_inflight.TryGet(packetId, out var e)) return AckOutcome.Unknown;
            if (e.State != awaited) return AckOutcome.WrongKind;
            RemoveInflightLocked(packetId, e);
            if (_broker.Hooks.MessageAcknowledged.IsAttached) _broker.Hooks.MessageAcknowledged.Invoke(new(ClientId, e.Message, e.QoS));
            PumpLocked(nowMs);
            return AckOutcome.Done;
        }
    }

    /// <summary>PUBREC from the client: answer PUBREL (or, for an unknown id, PUBREL 0x92 on MQTT 5). A PUBREC
    /// repeated after the PUBREL gets the PUBREL again.</summary>
    internal AckOutcome OnPubRec(ushort packetId, ReasonCode reason, long nowMs)
    {
        lock (Sync)
        {
            if (_inflight.TryGet(packetId, out var e))
            {
                if (e.State == InflightState.AwaitingPubAck) return AckOutcome.WrongKind;
                if (ReasonCodes.IsError(reason))
                {
                    // MQTT 5: an error PUBREC ends the flow (MQTT-4.3.3-?): the id is free again.
                    RemoveInflightLocked(packetId, e);
                    PumpLocked(nowMs);
                    return AckOutcome.Done;
                }
                e.State = InflightState.AwaitingPubComp;
                Store?.InflightAdvanced(ClientId, packetId, InflightState.AwaitingPubComp);
                SendControlLocked(new PublishAckPacket(PacketType.PubRel, packetId));
                return AckOutcome.Done;
            }
            SendControlLocked(new PublishAckPacket(PacketType.PubRel, packetId,
                _limits.Version == ProtocolVersion.V500 ? ReasonCode.PacketIdentifierNotFound : ReasonCode.Success));
            return AckOutcome.Unknown;
        }
    }

    /// <summary>Control packets go out through the channel, which holds them to the client's Maximum Packet
    /// Size; none while the client is away.</summary>
    private void SendControlLocked(MqttPacket packet) => _channel?.Send(packet);

    /// <summary>The acknowledgement the message in flight under <paramref name="packetId"/> waits for, for a
    /// log line; "nothing" when none is.</summary>
    internal string AwaitedAck(ushort packetId)
    {
        lock (Sync)
        {
            if (!_inflight.TryGet(packetId, out var e)) return "nothing";
            return e.State switch
            {
                InflightState.AwaitingPubAck => "PUBACK",
                InflightState.AwaitingPubRec => "PUBREC",
                _ => "PUBCOMP",
            };
        }
    }

    /// <summary>Called by the writer when its backlog drained, so QoS 0 held back in the queue can go.</summary>
    internal void OnOutputDrained(long nowMs)
    {
        if (!_queue.MayHoldMessages() && Volatile.Read(ref _retainedBacklog) is not { Count: > 0 }) return;
        lock (Sync) PumpLocked(nowMs);
    }

    /// <summary>
    /// Removes the messages this session got through shared subscriptions and has not finished receiving
    /// (queued, or sent and not acknowledged; a QoS 2 message whose PUBREC arrived is the receiver's already),
    /// so the broker can hand them to another member of their group. Called when the connection ends.
    /// </summary>
    internal List<(Message Message, object Group)>? TakeSharedMessages()
    {
        lock (Sync)
        {
            List<(Message, object)>? taken = null;
            var store = Store;
            if (_inflight.TakeShared(_broker.Held) is { } inflight)
            {
                foreach (var (id, e) in inflight)
                {
                    (taken ??= []).Add((e.Message, e.SharedGroup!));
                    store?.InflightCompleted(ClientId, id);
                }
            }
            if (_queue.RemoveWhere(0, static (p, _) => p.SharedGroup is not null, _broker.Held, collect: true) is { } queued)
            {
                foreach (var p in queued)
                {
                    (taken ??= []).Add((p.Message, p.SharedGroup!));
                    store?.MessageDequeued(ClientId, p.Sequence);
                }
            }
            return taken;
        }
    }

    /// <summary>Drops all queued and inflight messages (clean start, expiry).</summary>
    internal void Clear()
    {
        lock (Sync)
        {
            _queue.Clear(_broker.Held);
            _retainedBacklog = null;
            _inflight.Clear(_broker.Held);
            _subscriptions = null;
            _incomingQoS2.Clear();
        }
    }

    /// <summary>Removes expired messages from the queue (called by the broker's housekeeping).</summary>
    internal void ExpireQueued(long nowMs)
    {
        lock (Sync)
        {
            var store = Store;
            var expired = _queue.RemoveWhere(nowMs, static (p, now) => p.Message.IsExpired(now), _broker.Held, collect: store is not null);
            if (expired is null) return;
            foreach (var p in expired) store!.MessageDequeued(ClientId, p.Sequence);
        }
    }

    /// <summary>Whether a QoS 0 message may go straight to the writer rather than wait in the queue: the rule is
    /// <see cref="MessageQueue"/>'s.</summary>
    private bool HasDirectRoom(IClientOutput output, Message message) =>
        MessageQueue.HasDirectRoom(output, message, _broker.Config.MaxQueuedBytes);

    private bool HasWindowLocked(Message message) =>
        _inflight.HasRoom(_limits.SendWindow, _broker.Config.MaxInflightBytes, message.PayloadLength);

    /// <summary>Queues a message, or drops it at the queue's bounds (<see cref="MessageQueue"/>: the drop policy).</summary>
    private bool EnqueueLocked(Message message, QoS qos, bool retain, uint[]? subscriptionIds, object? sharedGroup)
    {
        if (!_queue.TryEnqueue(_broker, ClientId, message, qos, retain, subscriptionIds, sharedGroup, out long sequence)) return false;
        Store?.MessageQueued(ClientId, new QueuedMessage(sequence, Stored(message, _broker.NowMs), qos, retain, subscriptionIds));
        return true;
    }

    /// <summary>Sends what waits, as far as the writer and the window allow: retained messages for new
    /// subscriptions first, then the queue.</summary>
    private void PumpLocked(long nowMs)
    {
        var output = _output;
        if (output is null) return;
        if (_retainedBacklog is { Count: > 0 } retained)
        {
            while (retained.TryPeek(out var p))
            {
                if (!TrySendQueuedLocked(output, p, nowMs)) return;
                retained.Dequeue();
            }
        }
        while (_queue.TryPeek(out var p))
        {
            if (!TrySendQueuedLocked(output, p, nowMs)) return;
            _queue.Dequeue(_broker.Held);
            Store?.MessageDequeued(ClientId, p.Sequence);
        }
    }

    /// <summary>Sends a message that waited, if the writer (QoS 0) or the window (QoS 1/2) has room for it; false
    /// when it has to wait on. An expired message, or one the client may no longer read, is discarded (true).</summary>
    private bool TrySendQueuedLocked(IClientOutput output, in QueuedEntry p, long nowMs)
    {
        // Read rights are checked again as a queued message leaves: it may have waited while the client was
        // away and a reload (SIGHUP) took the right away, and the reconnection may be by another user.
        if (p.Message.IsExpired(nowMs) || (_limits.Acl is { } acl && !acl.CanDeliver(_limits.Identity!, p.Message.Topic))) return true;
        if (p.QoS == QoS.AtMostOnce)
        {
            if (!HasDirectRoom(output, p.Message)) return false;
            WritePublish(output, p.Message, 0, p.QoS, p.Retain, dup: false, p.SubscriptionIds, nowMs);
        }
        else
        {
            if (!HasWindowLocked(p.Message)) return false;
            SendInflightLocked(output, p.Message, p.QoS, p.Retain, p.SubscriptionIds, nowMs, p.SharedGroup, fromQueue: p.Sequence);
        }
        return true;
    }

    /// <param name="fromQueue">The queue sequence of the message when it waited in the queue (0: it did not): the store
    /// removes it from the queue with the same change.</param>
    private void SendInflightLocked(IClientOutput output, Message message, QoS qos, bool retain, uint[]? subscriptionIds, long nowMs,
        object? sharedGroup, long fromQueue = 0)
    {
        // Recorded before it is written: a store that writes ahead (DurableOutput) holds the PUBLISH until this is on disk.
        ushort id = _inflight.NextPacketId();
        var entry = _inflight.Add(id, message, qos, retain, subscriptionIds, sharedGroup, _broker.Held);
        Store?.InflightAdded(ClientId, new InflightMessage(id, entry.Sequence, Stored(message, nowMs), qos, retain, subscriptionIds, entry.State)
        {
            FromQueue = fromQueue,
        });
        if (!WritePublish(output, message, id, qos, retain, dup: false, subscriptionIds, nowMs)) RemoveInflightLocked(id, entry);
    }

    /// <summary>Writes the PUBLISH unless it is too large for the client's Maximum Packet Size (then it is
    /// discarded as if delivered, MQTT-3.1.2-25) or expired. Returns whether it was written.</summary>
    private bool WritePublish(IClientOutput output, Message message, ushort packetId, QoS qos, bool retain, bool dup,
        uint[]? subscriptionIds, long nowMs, bool resend = false)
    {
        var fields = new OutgoingPublish
        {
            QoS = qos,
            PacketId = packetId,
            Retain = retain,
            Dup = dup,
            SubscriptionIdentifiers = subscriptionIds,
            MessageExpiryInterval = message.RemainingExpirySeconds(nowMs),
        };
        if (fields.MessageExpiryInterval == 0)
        {
            if (!resend) return false;
            fields.MessageExpiryInterval = 1; // a resend of a started delivery: the least interval that is not "now"
        }
        var mount = _limits.MountPoint;
        if (mount is not null) fields.TopicStart = mount.Length;
        if (_limits.MaxPacketSize != 0 &&
            message.EncodedSize(_limits.Version, fields) > _limits.MaxPacketSize)
        {
            _broker.Dropped(ClientId, message, "larger than the client's Maximum Packet Size");
            return false;
        }
        output.SendPublish(message, fields);
        _broker.Stats.OnMessageSent(message.PayloadLength);
        if (_broker.Hooks.MessageDelivered.IsAttached) _broker.Hooks.MessageDelivered.Invoke(new(ClientId, message, qos));
        return true;
    }

    private void RemoveInflightLocked(ushort packetId, InflightEntry e)
    {
        _inflight.Remove(packetId, e, _broker.Held);
        Store?.InflightCompleted(ClientId, packetId);
    }

    /// <summary>Records the client's will (the connection's, or one waiting for its delay; null: none) in the session
    /// store. The will itself is kept by the connection, or by the broker while it waits.</summary>
    internal void RecordWill(StoredWill? will) => Store?.WillChanged(ClientId, will);

    private StoredMessage Stored(Message message, long nowMs) => StoredForms.ToStored(message, nowMs, _broker.UtcNow);

    /// <summary>When the last connection ended (wall clock); null while connected.</summary>
    private DateTimeOffset? DisconnectedAt()
    {
        if (DisconnectedAtMs == 0) return null;
        return _broker.UtcNow.AddMilliseconds(DisconnectedAtMs - _broker.NowMs);
    }

    /// <summary>A snapshot of the session, as a session store keeps it.</summary>
    public SessionState GetState()
    {
        lock (Sync) return GetStateLocked();
    }

    private SessionState GetStateLocked()
    {
        long now = _broker.NowMs;
        var queued = new List<QueuedMessage>(_queue.Count);
        foreach (var p in _queue.Items) queued.Add(new QueuedMessage(p.Sequence, Stored(p.Message, now), p.QoS, p.Retain, p.SubscriptionIds));
        var inflight = new List<InflightMessage>(_inflight.Count);
        foreach (var (id, e) in _inflight.InSendOrder() ?? [])
        {
            inflight.Add(new InflightMessage(id, e.Sequence, Stored(e.Message, now), e.QoS, e.Retain, e.SubscriptionIds, e.State));
        }
        var incoming = _incomingQoS2.Ids.ToList();
        incoming.Sort();
        return new SessionState(ClientId)
        {
            ExpiryInterval = _expiryInterval,
            DisconnectedAt = DisconnectedAt(),
            Subscriptions = _subscriptions is { } subscriptions ? [.. subscriptions.Values] : [],
            Queued = queued,
            Inflight = inflight,
            IncomingQoS2 = incoming,
            Will = _channel?.StoredWill() ?? _broker.StoredDelayedWill(ClientId),
        };
    }

    /// <summary>A session as a session store kept it (a broker restart), offline: its expiry counts from when its
    /// connection ended (from now when the store says it was connected). Queued messages lose the shared
    /// subscription group they came through (they go to this client); the ACL of the client's last connection is
    /// not known until it connects again (a queued message is checked against it as it leaves).</summary>
    internal static Session Restore(Broker broker, SessionState state, long nowMs, DateTimeOffset utcNow,
        Dictionary<StoredMessage, Message> restored)
    {
        var session = new Session(broker, state.ClientId) { _expiryInterval = state.ExpiryInterval };
        long disconnectedAt = state.DisconnectedAt is { } at ? StoredForms.ToClock(at, nowMs, utcNow) : nowMs;
        session.DisconnectedAtMs = disconnectedAt == 0 ? -1 : disconnectedAt; // 0 would mean connected
        foreach (var sub in state.Subscriptions) (session._subscriptions ??= new(StringComparer.Ordinal))[sub.Filter] = sub;
        session._queue.Reserve(state.Queued.Count);
        foreach (var q in state.Queued)
        {
            var message = StoredForms.Restore(q.Message, nowMs, utcNow, restored);
            session._queue.Restore(new QueuedEntry(message, q.QoS, q.Retain, q.SubscriptionIds, null, q.Sequence), broker.Held);
        }
        foreach (var f in state.Inflight)
        {
            var message = StoredForms.Restore(f.Message, nowMs, utcNow, restored);
            session._inflight.Restore(f.PacketId, new InflightEntry(message, f.QoS, f.Retain, f.SubscriptionIds, f.Sequence, f.State, null),
                broker.Held);
        }
        foreach (var id in state.IncomingQoS2) session._incomingQoS2.Add(id);
        return session;
    }
}

/// <summary>A will held back by its Will Delay Interval until <paramref name="DueMs"/> (broker clock). A reference,
/// not a nullable tuple in every session: 8 bytes instead of 24, and read whole by the broker's tick.</summary>
/// <summary>A will waiting for its delay; <paramref name="Connection"/> is the connection whose will it was, when the
/// cluster was told of it (<see cref="IClusterWills.WillDelayed"/>) and must be told when it goes.</summary>
internal sealed record DelayedWill(Message Will, long DueMs, object? Connection = null);

/// <summary>How the session took an acknowledgement from its client.</summary>
internal enum AckOutcome
{
    /// <summary>It completed (or advanced) the flow of a message in flight.</summary>
    Done,
    /// <summary>No message is in flight under that packet id (a late duplicate, say): ignored.</summary>
    Unknown,
    /// <summary>A message is in flight under that id but waits for another kind of acknowledgement: a protocol
    /// violation.</summary>
    WrongKind,
}

/// <summary>What the current connection of a session allows: negotiated at CONNECT.</summary>
internal struct ClientLimits
{
    public ProtocolVersion Version;
    /// <summary>How many QoS 1/2 messages may be unacknowledged at once (min of the client's Receive Maximum
    /// and max_inflight_messages).</summary>
    public int SendWindow;
    /// <summary>The client's Maximum Packet Size; 0 = no limit.</summary>
    public uint MaxPacketSize;
    /// <summary>The listener's mount point, stripped from topics sent to this client.</summary>
    public string? MountPoint;
    /// <summary>The ACL that decides what this client may receive; null = everything.</summary>
    public Midge.Security.IAclChecker? Acl;
    /// <summary>Who the client is, for the ACL.</summary>
    public Midge.Security.ClientIdentity? Identity;
    /// <summary>The CONNECT had the bridge bit (<see cref="Session.IsBridge"/>).</summary>
    public bool IsBridge;
}
