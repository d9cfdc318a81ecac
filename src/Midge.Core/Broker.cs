using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Midge.Config;
using Midge.Core.Messages;
using Midge.Core.Retained;
using Midge.Core.Routing;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Core;

/// <summary>
/// The broker: the client registry (<see cref="Clients"/>), the routing index, retained messages and housekeeping
/// (keep-alive, session expiry, delayed wills). Connections drive it through <see cref="Channel.MqttChannel"/>.
/// </summary>
public sealed partial class Broker
{
    private readonly ConcurrentDictionary<Channel.MqttChannel, byte> _channels = new();
    private readonly TimeProvider _time;
    private BrokerConfig _config;

    /// <param name="sessionStore">Where sessions that outlive their connections are recorded, and read back from now
    /// (a broker made again on the same store gets them back); null: sessions live in memory only, and nothing is
    /// recorded.</param>
    public Broker(BrokerConfig config, ILoggerFactory? loggerFactory = null, TimeProvider? time = null, ISessionStore? sessionStore = null)
    {
        _config = config;
        _time = time ?? TimeProvider.System;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Midge.Broker");
        Hooks = new Hooks.BrokerHooks(Logger);
        StartedAtMs = NowMs;
        Security = new Security.SecurityRegistry(config);
        Router = new Router(this); // before the sessions are restored: their subscriptions go into its index
        Clients = new ClientRegistry(this);
        SessionStore = sessionStore;
        if (sessionStore is not null)
        {
            // Sessions and retained messages fill different structures: the retained messages are read first (the
            // shorter read) and go into their tree while the sessions are read, so a large store (a million of each)
            // serves sooner. Nothing is recorded until both reads are done (a store counts its memory from them).
            var stored = sessionStore.LoadRetained();
            var retained = Task.Run(() => RestoreRetained(stored));
            RestoreSessions(sessionStore);
            foreach (string topic in retained.GetAwaiter().GetResult()) sessionStore.RetainedRemoved(topic);
            if (sessionStore.LoadTotals() is { } totals) Stats.Restore(totals);
            RestoreBans(sessionStore);
        }
    }

    private StoredTotals? _savedTotals;
    private long _nextTotalsMs;

    /// <summary>How often <see cref="Tick"/> saves the running totals to the store (when they changed).</summary>
    private const long TotalsIntervalMs = 60_000;

    /// <summary>Saves the running totals to the store, when they changed since the last save (every minute from
    /// <see cref="Tick"/>, and by whoever stops the broker before closing the store).</summary>
    public void SaveTotals()
    {
        if (SessionStore is not { } store) return;
        var totals = Stats.ToStored();
        if (totals == _savedTotals) return;
        _savedTotals = totals;
        store.TotalsSaved(totals);
    }

    /// <summary>Which session owns each client id: client locks and takeover.</summary>
    public IClientRegistry Clients { get; }

    /// <summary>The bridges to other brokers, when something runs them (the hosting's bridge service); null otherwise.</summary>
    public IBridgeDirectory? Bridges { get; set; }

    /// <summary>The cluster this broker is a node of (docs/cluster.md), set by the cluster's service; null when it runs
    /// alone.</summary>
    public IClusterDirectory? Cluster { get; set; }

    /// <summary>Claims client ids across a cluster before the registry takes them (docs/cluster.md); null when the
    /// broker runs alone.</summary>
    public ISessionClaims? SessionClaims { get; set; }

    /// <summary>Where a cluster keeps the wills of this node's connections (null when the broker runs alone).</summary>
    public IClusterWills? ClusterWills { get; set; }

    /// <summary>The store sessions are recorded in; null when there is none.</summary>
    public ISessionStore? SessionStore { get; private set; }

    /// <summary>
    /// Puts a store in front of the one the broker was made with (null: none), before any client connects: a cluster
    /// node replicates its sessions through it (docs/cluster.md). From then on every session change goes to
    /// <paramref name="wrap"/>'s store, which passes them on to the first one; with <c>persistence_mode durable</c>
    /// (the default) acknowledgements wait for its <see cref="ISessionStore.FlushAsync"/>. Sessions the broker holds
    /// already are not told to it.
    /// </summary>
    public void WrapSessionStore(Func<ISessionStore?, ISessionStore> wrap)
    {
        ArgumentNullException.ThrowIfNull(wrap);
        SessionStore = wrap(SessionStore);
    }

    /// <summary>Whether PUBACK, PUBREC and PUBCOMP wait until the store has what they acknowledge
    /// (<c>persistence_mode durable</c>, the default, with a store).</summary>
    internal bool HoldsAcknowledgements => SessionStore is not null && Config.PersistenceMode == PersistenceMode.Durable;

    /// <summary>Password and ACL files of every listener.</summary>
    public Security.SecurityRegistry Security { get; }

    public BrokerConfig Config => Volatile.Read(ref _config);

    /// <summary>The hook points that bridges, the rule engine, authentication backends and embedding applications
    /// attach to.</summary>
    public Hooks.BrokerHooks Hooks { get; }

    public BrokerStats Stats { get; } = new();

    internal ILogger Logger { get; }

    internal SubscriptionIndex<Session, Subscription> Subscriptions => Router.Subscriptions;

    internal RetainedStore<Message> Retained { get; } = new();

    /// <summary>Payload bytes held for clients (queued, in flight, retained): what <c>memory_limit</c> limits.</summary>
    internal Protection.HeldBytes Held { get; } = new();

    /// <summary>Payload bytes the broker holds for clients: queued, in flight and retained.</summary>
    public long HeldBytes => Held.Total;

    /// <summary>Broker clock in milliseconds (monotonic).</summary>
    public long NowMs => (long)(_time.GetTimestamp() * 1000.0 / _time.TimestampFrequency);

    public long StartedAtMs { get; }

    public DateTimeOffset UtcNow => _time.GetUtcNow();

    public int SessionCount => Clients.Count;

    public int RetainedCount => Retained.Count;

    public int SubscriptionCount => Subscriptions.Count;

    public int ConnectedCount => _channels.Count;

    /// <summary>
    /// Applies a re-read configuration (SIGHUP): limits at once, password and ACL files re-read, then every
    /// client re-checked: connections whose credentials no longer hold are closed (MQTT 5: DISCONNECT 0x87),
    /// and subscriptions the ACL no longer allows are removed. Listeners are not re-bound. Throws (and changes
    /// nothing) when a security file cannot be read.
    /// </summary>
    public void Reload(BrokerConfig config)
    {
        Security.Reload(config);
        Volatile.Write(ref _config, config);
        foreach (var (channel, _) in _channels) channel.RecheckCredentials(config);
        foreach (var session in Clients) RecheckSubscriptions(session);
    }

    private void RecheckSubscriptions(Session session)
    {
        var (acl, identity) = session.Access;
        if (acl is null || identity is null) return;
        lock (session.Sync)
        {
            if (session.Subscriptions is not { } subscriptions) return;
            List<string>? revoked = null;
            foreach (var filter in subscriptions.Keys)
            {
                if (acl.CanSubscribe(identity, filter) == Midge.Security.SubscribeDecision.Deny) (revoked ??= []).Add(filter);
            }
            if (revoked is null) return;
            foreach (var filter in revoked)
            {
                session.RemoveSubscription(filter, out var sub);
                Subscriptions.Unsubscribe(filter, session);
                if (sub!.Exclusive) ReleaseExclusive(filter, session);
                Channel.Log.SubscriptionRevoked(Logger, session.ClientId, filter);
                if (Hooks.SessionUnsubscribed.IsAttached) Hooks.SessionUnsubscribed.Invoke(new(session.ClientId, filter, sub.QoS));
            }
        }
    }

    /// <summary>A message was dropped for <paramref name="clientId"/> (null: refused from its publisher): counted in
    /// <c>$SYS/broker/publish/messages/dropped</c> and told to the <c>message.dropped</c> hook.</summary>
    internal void Dropped(string? clientId, Message? message, string reason)
    {
        Stats.OnDropped();
        if (Hooks.MessageDropped.IsAttached) Hooks.MessageDropped.Invoke(new(clientId, message, reason));
    }

    /// <summary>Publishes a message made by the broker or a plugin (not from a client connection).</summary>
    public int PublishFromBroker(string topic, ReadOnlyMemory<byte> payload, QoS qos = QoS.AtMostOnce, bool retain = false,
        MqttProperties? properties = null)
    {
        var message = Message.Create(topic, payload, qos, retain, properties, null, NowMs);
        return Publish(message);
    }

    /// <summary>
    /// Routes a message that another node of a cluster received from its publisher to this node's plain subscriptions
    /// only: the publishing node ran the publish hooks, set the retained message and gave it to the route destinations,
    /// so none of that happens again here (and the message does not go back out to the cluster); shared groups get
    /// theirs through <see cref="SharedFromCluster"/>. Returns how many subscriptions it matched.
    /// </summary>
    public int RouteFromCluster(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Router.Route(message, fromCluster: true);
    }

    /// <summary>
    /// A message the cluster chose this node for, in its shared group <paramref name="group"/> of
    /// <paramref name="filter"/>: delivered to one member online here; with none, and <paramref name="mayHandOff"/>,
    /// handed to another node of the group (<see cref="Routing.IClusterRoute.HandOffShared"/>); otherwise kept in the
    /// group's queue until a member is online, as on one broker. False when this node has no such group (any more: the
    /// caller decides what becomes of the message).
    /// </summary>
    public bool SharedFromCluster(Message message, string filter, string group, bool mayHandOff)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Router.DeliverToSharedGroup(message, filter, group, mayHandOff);
    }

    /// <summary>
    /// A message for this node's shared group <paramref name="group"/> of <paramref name="filter"/> that the cluster
    /// holds (handed on by another node, or waiting in the cluster's queue of the group): delivered to one member online
    /// here, or not at all. True when a member took it.
    /// </summary>
    public bool SharedToOnlineMember(Message message, string filter, string group)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Router.DeliverToOnlineMember(message, filter, group);
    }

    /// <summary>Whether this node's shared group <paramref name="group"/> of <paramref name="filter"/> has a member
    /// online now.</summary>
    public bool SharedGroupHasOnlineMember(string filter, string group) => Router.HasOnlineMember(filter, group);

    /// <summary>
    /// Publishes a message on another node's behalf (the will of a client of a node that died): as one of this node's
    /// clients' messages, with the publish hooks, the retained store, and the cluster.
    /// </summary>
    public int PublishForCluster(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Publish(message);
    }

    /// <summary>Stores the retained state of a message, then routes it (<see cref="Routing.Router"/>) to every matching
    /// subscriber and destination. Returns how many subscriptions or groups it matched.</summary>
    internal int Publish(Message message)
    {
        var hooks = Hooks;
        if (hooks.MessagePublish.IsAttached) hooks.MessagePublish.Invoke(new(message));
        if (message.Retain) StoreRetained(message, hooks);
        return Router.Route(message);
    }

    /// <summary>
    /// A retained message another node of the cluster set, or cleared (empty payload): kept here, and in this node's
    /// session store, as one published here would be, but not routed (the other node routed it).
    /// </summary>
    public void RetainFromCluster(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        StoreRetained(message, Hooks);
    }

    private void StoreRetained(Message message, Hooks.BrokerHooks hooks)
    {
        if (SessionStore is { } store && !message.Topic.StartsWith("$SYS/", StringComparison.Ordinal))
        {
            // The store must see one topic's changes in the order the retained store made them.
            lock (_retainedLocks[(uint)message.Topic.GetHashCode() % (uint)_retainedLocks.Length])
            {
                if (SetRetained(message, hooks))
                {
                    if (message.PayloadLength == 0) store.RetainedRemoved(message.Topic);
                    else store.RetainedSet(StoredForms.ToStored(message, NowMs, UtcNow));
                }
            }
        }
        else
        {
            SetRetained(message, hooks);
        }
    }

    /// <summary>Sets or (empty payload) clears the retained message of the message's topic; false when there was
    /// nothing to clear.</summary>
    private bool SetRetained(Message message, Hooks.BrokerHooks hooks)
    {
        if (message.PayloadLength == 0)
        {
            if (!Retained.Remove(message.Topic, out var removed)) return false;
            Held.Add(-removed!.PayloadLength);
            if (hooks.RetainedChanged.IsAttached) hooks.RetainedChanged.Invoke(new(message.Topic, null));
            return true;
        }
        Held.Add(message.PayloadLength - (Retained.Set(message.Topic, message)?.PayloadLength ?? 0));
        if (hooks.RetainedChanged.IsAttached) hooks.RetainedChanged.Invoke(new(message.Topic, message));
        return true;
    }

    /// <summary>Striped locks that keep a topic's retained changes and their records in the store in one order (only
    /// taken when there is a store).</summary>
    private readonly object[] _retainedLocks = CreateLocks(64);

    private static object[] CreateLocks(int count)
    {
        var locks = new object[count];
        for (int i = 0; i < count; i++) locks[i] = new object();
        return locks;
    }

    /// <summary>Wills waiting for their Will Delay Interval, by client id: at most one per client id that has
    /// gone away, each kept no longer than its delay (or its session's expiry, if sooner).</summary>
    private readonly ConcurrentDictionary<string, DelayedWill> _delayedWills = new(StringComparer.Ordinal);

    internal int DelayedWillCount => _delayedWills.Count;

    internal void ScheduleWill(string clientId, DelayedWill will) => _delayedWills[clientId] = will;

    /// <summary>The client id connected again before its will was due: the will is not sent (MQTT-3.1.3-9).</summary>
    internal void CancelDelayedWill(string clientId)
    {
        if (!_delayedWills.IsEmpty && _delayedWills.TryRemove(clientId, out var will)) DelayedWillGone(clientId, will);
    }

    /// <summary>The session of <paramref name="clientId"/> ended: a will still waiting for its delay goes now.</summary>
    internal void PublishDelayedWill(string clientId)
    {
        if (_delayedWills.IsEmpty || !_delayedWills.TryRemove(clientId, out var will)) return;
        Publish(will.Will);
        DelayedWillGone(clientId, will);
    }

    /// <summary>A delayed will left this node (published or cancelled): the cluster that kept it forgets it.</summary>
    private void DelayedWillGone(string clientId, DelayedWill will)
    {
        if (will.Connection is { } connection) ClusterWills?.WillEnded(clientId, connection);
    }

    /// <summary>The will waiting for its delay for <paramref name="clientId"/>, as a session store keeps it; null when none.</summary>
    internal StoredWill? StoredDelayedWill(string clientId)
    {
        if (_delayedWills.IsEmpty || !_delayedWills.TryGetValue(clientId, out var will)) return null;
        long now = NowMs;
        var utcNow = UtcNow;
        uint remaining = (uint)Math.Max(0, (will.DueMs - now + 999) / 1000);
        return new StoredWill(StoredForms.ToStored(will.Will, now, utcNow), remaining) { DueAt = utcNow.AddMilliseconds(will.DueMs - now) };
    }

    /// <summary>A delayed will was published: a session store forgets it, unless the client is back (and its new
    /// connection has recorded its own).</summary>
    private void OnDelayedWillPublished(string clientId)
    {
        if (SessionStore is null) return;
        lock (Clients.Lock(clientId))
        {
            if (Clients.TryGet(clientId, out var session) && !session.IsOnline) session.RecordWill(null);
        }
    }

    /// <summary>A session left the registry (<see cref="IClientRegistry.Remove"/>): it leaves the routing index, the
    /// messages it got through shared subscriptions and never finished go to another member of their group, and its
    /// state is dropped.</summary>
    internal void DiscardSession(Session session)
    {
        lock (session.Sync)
        {
            if (session.Subscriptions is { } subscriptions)
            {
                foreach (var (filter, sub) in subscriptions)
                {
                    Subscriptions.Unsubscribe(filter, session);
                    if (sub.Exclusive) ReleaseExclusive(filter, session);
                }
            }
        }
        RequeueSharedMessages(session);
        session.Clear();
    }

    /// <summary>Reads the sessions back from the store (at start): each offline, its subscriptions in the routing
    /// index, its queue and window as they were, a will that was waiting for its delay scheduled again.</summary>
    private void RestoreSessions(ISessionStore store)
    {
        long now = NowMs;
        var utcNow = UtcNow;
        var states = store.LoadAll();
        int messages = 0;
        foreach (var state in states) messages += state.Queued.Count + state.Inflight.Count;
        // Sized for every row: a million queued messages would otherwise rehash it twenty times.
        var restored = new Dictionary<StoredMessage, Message>(messages, ReferenceEqualityComparer.Instance);
        foreach (var state in states)
        {
            if (state.ExpiryInterval == 0)
            {
                store.SessionRemoved(state.ClientId); // cannot outlive its connection: not a stored session
                continue;
            }
            RestoreSession(state, now, utcNow, restored);
        }
    }

    /// <summary>Registers one session as a store or another node kept it: offline, its subscriptions in the routing
    /// index, its queue and window as they were, a will that was waiting for its delay scheduled again. False when
    /// the client id has a session here already.</summary>
    private bool RestoreSession(SessionState state, long now, DateTimeOffset utcNow, Dictionary<StoredMessage, Message> restored)
    {
        var session = Session.Restore(this, state, now, utcNow, restored);
        if (!Clients.Restore(session))
        {
            session.Clear();
            return false;
        }
        foreach (var sub in state.Subscriptions)
        {
            Subscriptions.Subscribe(sub.Filter, session, sub);
            // A session handed over by another node claims its filters across the cluster again (under its new node).
            if (sub.Exclusive && TryClaimExclusive(sub.Filter, session) && Router.Cluster is { } cluster)
            {
                _ = cluster.ClaimExclusiveAsync(sub.Filter, state.ClientId).AsTask();
            }
        }
        if (state.Will is { } will)
        {
            // A will without a due time belonged to a connection that was up when the broker stopped. A clean
            // stop discards those, so this one outlived a crash: the connection ended then, without DISCONNECT,
            // and its will goes after its delay (counted from now: when the crash was is not known).
            var due = will.DueAt ?? utcNow.AddSeconds(will.DelayInterval);
            ScheduleWill(state.ClientId, new DelayedWill(StoredForms.WillMessage(will, now), StoredForms.ToClock(due, now, utcNow)));
            if (will.DueAt is null) session.RecordWill(will with { DueAt = due });
        }
        return true;
    }

    /// <summary>
    /// A session another node of the cluster gave up to this one (<see cref="ISessionClaims.ClaimAsync"/>): registered
    /// here, offline, as a store's would be at start (and saved to this node's store), for the CONNECT that claimed
    /// it to resume. Dropped under <paramref name="cleanStart"/> or when this node has a session for the client id
    /// already (the newer one).
    /// </summary>
    internal void ImportSession(SessionState? state, bool cleanStart)
    {
        if (state is null || cleanStart || state.ExpiryInterval == 0) return;
        lock (Clients.Lock(state.ClientId))
        {
            if (Clients.TryGet(state.ClientId, out _)) return;
            // Its connection was taken over on the other node: its will is not this node's to send.
            state = state with { Will = null, DisconnectedAt = UtcNow };
            if (RestoreSession(state, NowMs, UtcNow, new(ReferenceEqualityComparer.Instance))) SessionStore?.SessionSaved(state);
        }
    }

    /// <summary>
    /// Gives up <paramref name="clientId"/>'s session to another node that claimed the client id: a connection still
    /// attached is taken over (MQTT 5 DISCONNECT 0x8E; its will goes, as on a takeover here), a will waiting for its
    /// delay is cancelled (the client is back), and the session leaves this node. Returns its state for the other node
    /// to resume, or null when there was none or it does not outlive its connection.
    /// </summary>
    public SessionState? HandOverSession(string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        lock (Clients.Lock(clientId))
        {
            CancelDelayedWill(clientId);
            if (!Clients.TryGet(clientId, out var session)) return null;
            if (session.Channel is { } old)
            {
                session.Detach(old, NowMs);
                old.TakeOver();
            }
            var state = session.ExpiryInterval == 0 ? null : session.GetState();
            Clients.Remove(session);
            return state;
        }
    }

    /// <summary>
    /// A client's QoS 2 message that another broker had received and not routed yet when its state was taken over
    /// (Mosquitto routes at PUBREL, Midge at PUBLISH): routed now, once, and its packet id kept as awaiting PUBREL, so
    /// the client's PUBREL completes the flow. Call at start, before clients connect.
    /// </summary>
    public void RouteTakenOverQoS2(string clientId, ushort packetId, StoredMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Publish(StoredForms.ToMessage(message, NowMs, UtcNow));
        lock (Clients.Lock(clientId))
        {
            if (Clients.TryGet(clientId, out var session)) session.AddIncomingQoS2(packetId);
        }
    }

    /// <summary>Puts the retained messages read back from the store (at start) into the retained tree; gives back the
    /// topics of those that expired meanwhile, for the store to forget.</summary>
    private List<string> RestoreRetained(IReadOnlyList<StoredMessage> stored)
    {
        long now = NowMs;
        var utcNow = UtcNow;
        var expired = new List<string>();
        foreach (var record in stored)
        {
            var message = StoredForms.ToMessage(record, now, utcNow);
            if (message.IsExpired(now))
            {
                expired.Add(record.Topic);
                continue;
            }
            message.StoredForm = record;
            Held.Add(message.PayloadLength - (Retained.Set(message.Topic, message)?.PayloadLength ?? 0));
        }
        return expired;
    }

    private readonly ConcurrentDictionary<string, Session> _exclusive = new(StringComparer.Ordinal);

    /// <summary>$exclusive/{filter}: true if <paramref name="session"/> holds (or now takes) the filter.</summary>
    internal bool TryClaimExclusive(string filter, Session session) => _exclusive.GetOrAdd(filter, session) == session;

    internal void ReleaseExclusive(string filter, Session session)
    {
        if (_exclusive.TryRemove(new KeyValuePair<string, Session>(filter, session))) Router.Cluster?.ReleaseExclusive(filter, session.ClientId);
    }

    internal void OnChannelOpened(Channel.MqttChannel channel) => _channels.TryAdd(channel, 0);

    internal void OnChannelClosed(Channel.MqttChannel channel) => _channels.TryRemove(channel, out _);

    /// <summary>Runs once a second: keep-alive, delayed wills, session and message expiry.</summary>
    public void Tick()
    {
        long now = NowMs;
        // Enumerating the dictionaries directly takes no snapshot (Keys/Values would copy every entry each second).
        foreach (var (channel, _) in _channels) channel.Tick(now);
        if (SessionStore is not null && now >= _nextTotalsMs)
        {
            _nextTotalsMs = now + TotalsIntervalMs;
            SaveTotals();
        }
        var config = Config;
        SweepProtection(now, config);
        if (!_delayedWills.IsEmpty)
        {
            foreach (var (clientId, will) in _delayedWills)
            {
                if (now >= will.DueMs && _delayedWills.TryRemove(new KeyValuePair<string, DelayedWill>(clientId, will)))
                {
                    Publish(will.Will);
                    DelayedWillGone(clientId, will);
                    OnDelayedWillPublished(clientId);
                }
            }
        }
        foreach (var session in Clients)
        {
            if (session.IsOnline || session.DisconnectedAtMs == 0) continue;
            long expiryMs = SessionExpiryMs(session, config);
            if (expiryMs >= 0 && now - session.DisconnectedAtMs >= expiryMs)
            {
                if (Clients.EndIfOffline(session))
                {
                    Stats.OnSessionExpired();
                    if (Hooks.SessionExpired.IsAttached) Hooks.SessionExpired.Invoke(new(session.ClientId));
                }
                continue;
            }
            session.ExpireQueued(now);
        }
    }

    /// <summary>How long an offline session lives, in ms; -1 = forever.</summary>
    internal static long SessionExpiryMs(ISession session, BrokerConfig config)
    {
        long ms = session.ExpiryInterval == uint.MaxValue ? -1 : session.ExpiryInterval * 1000L;
        if (config.PersistentClientExpiration is { } cap)
        {
            long capMs = (long)cap.TotalMilliseconds;
            if (ms < 0 || ms > capMs) ms = capMs;
        }
        return ms;
    }

    /// <summary>
    /// Disconnects a client by administrative action: MQTT 5 clients get DISCONNECT 0x98, the will is published.
    /// With <paramref name="endSession"/> its session is discarded too, as if it had expired.
    /// Returns false when no such client is connected (and, with endSession, no such session exists).
    /// </summary>
    public bool DisconnectClient(string clientId, bool endSession = false)
    {
        bool found = false;
        if (Clients.TryGet(clientId, out var session))
        {
            if (session.Channel is { } channel)
            {
                channel.ServerDisconnect(ReasonCode.AdministrativeAction, publishWill: true, "disconnected by an administrator");
                found = true;
            }
            if (endSession)
            {
                // The connection's own close detaches it; the session goes now, and its close will find it gone.
                session.ExpiryInterval = 0;
                if (!session.IsOnline) Clients.EndIfOffline(session);
                found = true;
            }
        }
        return found;
    }

    /// <summary>Closes every connection (MQTT 5 clients get DISCONNECT 0x8B) for a clean shutdown.</summary>
    public void Shutdown()
    {
        foreach (var (channel, _) in _channels) channel.ServerDisconnect(ReasonCode.ServerShuttingDown, publishWill: false);
    }
}
