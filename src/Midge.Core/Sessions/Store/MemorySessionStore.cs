using System.Collections.Concurrent;
using Midge.Core.Protection;

namespace Midge.Core.Sessions.Store;

/// <summary>
/// A session store in memory: what it is told is kept in dictionaries, so that a broker made again in the same
/// process with the same store gets its sessions back (embedded brokers, tests). Nothing survives the process. Each
/// session has its own lock: changes of different sessions never wait for one another. It holds no more than the
/// sessions it mirrors: a message is recorded only once the session queued it or sent it in flight (within
/// max_queued_messages, max_queued_bytes and the inflight window) and forgotten when the session lets it go.
/// </summary>
public sealed class MemorySessionStore : ISessionStore
{
    private readonly ConcurrentDictionary<string, Entry> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StoredMessage> _retained = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(BanKind, string), Ban> _bans = new();
    private StoredTotals? _totals;

    /// <summary>How many sessions it holds.</summary>
    public int Count => _sessions.Count;

    public IReadOnlyList<SessionState> LoadAll()
    {
        var all = new List<SessionState>(_sessions.Count);
        foreach (var (_, entry) in _sessions)
        {
            lock (entry)
            {
                if (!entry.Removed) all.Add(entry.ToState());
            }
        }
        return all;
    }

    /// <summary>The session held for <paramref name="clientId"/>, or null.</summary>
    public SessionState? Get(string clientId)
    {
        if (!_sessions.TryGetValue(clientId, out var entry)) return null;
        lock (entry) return entry.Removed ? null : entry.ToState();
    }

    public void SessionSaved(SessionState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        while (true)
        {
            var entry = _sessions.GetOrAdd(state.ClientId, static id => new Entry(id));
            lock (entry)
            {
                // A removal may have taken the entry out between the lookup and the lock: start again with a new one.
                if (entry.Removed) continue;
                entry.Load(state);
                return;
            }
        }
    }

    public void SessionRemoved(string clientId)
    {
        if (!_sessions.TryRemove(clientId, out var entry)) return;
        lock (entry) entry.Removed = true;
    }

    public void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt) =>
        Change(clientId, (expiryInterval, disconnectedAt), static (e, s) =>
        {
            e.ExpiryInterval = s.expiryInterval;
            e.DisconnectedAt = s.disconnectedAt;
        });

    public void SubscriptionSet(string clientId, Subscription subscription) =>
        Change(clientId, subscription, static (e, s) => e.Subscriptions[s.Filter] = s);

    public void SubscriptionRemoved(string clientId, string filter) =>
        Change(clientId, filter, static (e, f) => e.Subscriptions.Remove(f));

    public void MessageQueued(string clientId, QueuedMessage message) =>
        Change(clientId, message, static (e, m) => e.Queued[m.Sequence] = m);

    public void MessageDequeued(string clientId, long sequence) =>
        Change(clientId, sequence, static (e, s) => e.Queued.Remove(s));

    public void InflightAdded(string clientId, InflightMessage message) =>
        Change(clientId, message, static (e, m) =>
        {
            e.Inflight[m.PacketId] = m with { FromQueue = 0 };
            if (m.FromQueue != 0) e.Queued.Remove(m.FromQueue);
        });

    public void InflightAdvanced(string clientId, ushort packetId, InflightState state) =>
        Change(clientId, (packetId, state), static (e, s) =>
        {
            if (e.Inflight.TryGetValue(s.packetId, out var m)) e.Inflight[s.packetId] = m with { State = s.state };
        });

    public void InflightCompleted(string clientId, ushort packetId) =>
        Change(clientId, packetId, static (e, id) => e.Inflight.Remove(id));

    public void IncomingQoS2Added(string clientId, ushort packetId) =>
        Change(clientId, packetId, static (e, id) => e.IncomingQoS2.Add(id));

    public void IncomingQoS2Removed(string clientId, ushort packetId) =>
        Change(clientId, packetId, static (e, id) => e.IncomingQoS2.Remove(id));

    public void WillChanged(string clientId, StoredWill? will) =>
        Change(clientId, will, static (e, w) => e.Will = w);

    public IReadOnlyList<StoredMessage> LoadRetained() => _retained.Values.ToList();

    public void RetainedSet(StoredMessage message) => _retained[message.Topic] = message;

    public void RetainedRemoved(string topic) => _retained.TryRemove(topic, out _);

    public StoredTotals? LoadTotals() => Volatile.Read(ref _totals);

    public void TotalsSaved(StoredTotals totals) => Volatile.Write(ref _totals, totals);

    public IReadOnlyList<Ban> LoadBans() => _bans.Values.ToList();

    public void BanSet(Ban ban)
    {
        ArgumentNullException.ThrowIfNull(ban);
        _bans[(ban.As, ban.Who)] = ban;
    }

    public void BanRemoved(BanKind kind, string who) => _bans.TryRemove((kind, who), out _);

    /// <summary>Every change is applied as it is recorded: a group needs nothing.</summary>
    public void BeginGroup()
    {
    }

    public void EndGroup()
    {
    }

    /// <summary>Nothing is ever pending: every change is applied when it is recorded.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    private void Change<TState>(string clientId, TState state, Action<Entry, TState> change)
    {
        if (!_sessions.TryGetValue(clientId, out var entry)) return; // not held (removed meanwhile): ignored
        lock (entry)
        {
            if (!entry.Removed) change(entry, state);
        }
    }

    /// <summary>One session's state, guarded by locking the entry.</summary>
    private sealed class Entry(string clientId)
    {
        public bool Removed;
        public uint ExpiryInterval;
        public DateTimeOffset? DisconnectedAt;
        public readonly Dictionary<string, Subscription> Subscriptions = new(StringComparer.Ordinal);
        public readonly SortedDictionary<long, QueuedMessage> Queued = [];
        public readonly Dictionary<ushort, InflightMessage> Inflight = [];
        public readonly SortedSet<ushort> IncomingQoS2 = [];
        public StoredWill? Will;

        public void Load(SessionState state)
        {
            ExpiryInterval = state.ExpiryInterval;
            DisconnectedAt = state.DisconnectedAt;
            Subscriptions.Clear();
            foreach (var s in state.Subscriptions) Subscriptions[s.Filter] = s;
            Queued.Clear();
            foreach (var m in state.Queued) Queued[m.Sequence] = m;
            Inflight.Clear();
            foreach (var m in state.Inflight) Inflight[m.PacketId] = m;
            IncomingQoS2.Clear();
            foreach (var id in state.IncomingQoS2) IncomingQoS2.Add(id);
            Will = state.Will;
        }

        public SessionState ToState()
        {
            var inflight = Inflight.Values.ToList();
            inflight.Sort(static (a, b) => a.Sequence.CompareTo(b.Sequence));
            return new SessionState(clientId)
            {
                ExpiryInterval = ExpiryInterval,
                DisconnectedAt = DisconnectedAt,
                Subscriptions = Subscriptions.Values.ToList(),
                Queued = Queued.Values.ToList(),
                Inflight = inflight,
                IncomingQoS2 = IncomingQoS2.ToList(),
                Will = Will,
            };
        }
    }
}
