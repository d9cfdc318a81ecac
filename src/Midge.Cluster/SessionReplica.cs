using System.Buffers;
using Microsoft.Extensions.Logging;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster;

/// <summary>
/// The session store a cluster node puts in front of its own (<see cref="Midge.Core.Broker.WrapSessionStore"/>): every
/// change goes on to the node's store (its file with <c>persistence true</c>; none otherwise) and to a mirror in memory,
/// and the persistent sessions that changed are written, whole, to the cluster's sessions bucket
/// (<c>midge-{cluster}-sessions</c>; key: the client id as <see cref="ClusterNode.OwnerKey"/> writes it; value: the
/// node's name and the session as <see cref="SessionStateCodec"/> writes it), so that another node can resume them
/// when this one dies (docs/cluster.md).
/// </summary>
/// <remarks>
/// One loop writes: the sessions changed since its last pass, each once, however many changes it had (a burst of
/// queued messages costs one write of the session). <see cref="FlushAsync"/> completes once every change recorded
/// before it is in the bucket, so with <c>persistence_mode durable</c> a PUBACK waits for it; at most
/// <see cref="FlushWait"/>, and at once while the bucket is not open or NATS is unreachable: then acknowledgements
/// go as without replication (logged). What waits is bounded by the sessions: one entry per changed client id.
/// </remarks>
internal sealed partial class SessionReplica(ISessionStore? inner, ILogger log, Func<Task?>? takeConfirmation = null,
    Action<string, bool>? durableFilterChanged = null) : ISessionStore, IDisposable
{
    /// <summary>How long an acknowledgement may wait for the bucket before it goes anyway.</summary>
    public static readonly TimeSpan FlushWait = TimeSpan.FromSeconds(3);

    /// <summary>How long a session whose write failed waits before it is written again.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly MemorySessionStore _mirror = new();
    private readonly object _gate = new();
    private HashSet<string> _dirty = new(StringComparer.Ordinal);
    private long _recorded, _written;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _wrote = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private INatsKVStore? _bucket;
    private string _node = "";
    private bool _slowLogged;
    private Func<bool> _connected = static () => false;

    // The client ids whose last write failed (logged once until one succeeds). Touched by the loop only (ApplyAsync).
    private readonly HashSet<string> _failing = new(StringComparer.Ordinal);

    // The revision of this node's last write of each key: a later write or delete is made against it, so a node
    // that took the client id over (and wrote since) is never overwritten by this one. One entry per session this node
    // wrote and still holds (a delete removes it), so it is bounded as the sessions are. Touched by the loop only.
    private readonly Dictionary<string, ulong> _revisions = new(StringComparer.Ordinal);

    // The plain filters of the persistent sessions (what the store sees is theirs only): each client's, and how many
    // clients hold each filter. A filter's first holder and its last one are told to durableFilterChanged, on the
    // thread that made the change. Bounded as the sessions' subscriptions are.
    private readonly Dictionary<string, HashSet<string>> _filtersOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _holders = new(StringComparer.Ordinal);

    /// <summary>The store this one passes changes on to (null: none).</summary>
    public ISessionStore? Inner => inner;

    /// <summary>Starts writing to <paramref name="bucket"/> (sessions changed before are written as they change again).</summary>
    public Task RunAsync(INatsKVStore bucket, string node, Func<bool> connected, CancellationToken stop)
    {
        _node = node;
        _connected = connected;
        Volatile.Write(ref _bucket, bucket);
        return Task.Run(() => WriteLoopAsync(bucket, stop));
    }

    /// <summary>Stops holding acknowledgements for the bucket (the node leaves the cluster).</summary>
    public void Detach()
    {
        Volatile.Write(ref _bucket, null);
        lock (_gate) _wrote.TrySetResult();
    }

    private void Dirty(string clientId)
    {
        lock (_gate)
        {
            _dirty.Add(clientId);
            _recorded++;
            _changed.TrySetResult();
        }
    }

    private async Task WriteLoopAsync(INatsKVStore bucket, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                Task changed;
                HashSet<string> dirty;
                long upTo;
                lock (_gate)
                {
                    changed = _changed.Task;
                    if (_dirty.Count == 0)
                    {
                        _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
                        changed = _changed.Task;
                        dirty = [];
                    }
                    else
                    {
                        dirty = _dirty;
                        _dirty = new(StringComparer.Ordinal);
                    }
                    upTo = _recorded;
                }
                if (dirty.Count == 0)
                {
                    await changed.WaitAsync(stop).ConfigureAwait(false);
                    continue;
                }
                // The sessions of a pass are written side by side (at most WritesAtOnce in flight): a pass takes about one
                // round trip to JetStream, not one per session, and so does the acknowledgement that waits for it.
                List<string>? failed = null;
                var batch = new List<Task<Written>>(Math.Min(dirty.Count, WritesAtOnce));
                foreach (var clientId in dirty)
                {
                    batch.Add(WriteAsync(bucket, clientId, stop));
                    if (batch.Count == WritesAtOnce) failed = await ApplyAsync(batch, failed).ConfigureAwait(false);
                }
                failed = await ApplyAsync(batch, failed).ConfigureAwait(false);
                // A failed write does not hold acknowledgements (they go as without replication; logged): the session is
                // written again after a pause.
                lock (_gate)
                {
                    _written = upTo;
                    _wrote.TrySetResult();
                    _wrote = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                // Written again after a pause, without pausing the others: a session that cannot be written (larger than
                // NATS's max_payload) must not hold every other session's acknowledgements for the pause.
                if (failed is not null) _ = RetryLaterAsync(failed, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private async Task RetryLaterAsync(List<string> failed, CancellationToken stop)
    {
        try
        {
            await Task.Delay(RetryDelay, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        lock (_gate)
        {
            _dirty.UnionWith(failed);
            _changed.TrySetResult();
        }
    }

    /// <summary>How many session writes of one pass may be in flight at once.</summary>
    private const int WritesAtOnce = 256;

    /// <summary>What became of one write: the key's new revision (null: the key is no longer this node's to write:
    /// deleted, or taken by another node), or the error that failed it.</summary>
    private readonly record struct Written(string ClientId, string Key, ulong? Revision, string? Error);

    /// <summary>Waits for a batch of writes and records what they did (on the loop: the maps are the loop's alone);
    /// returns the client ids to write again.</summary>
    private async Task<List<string>?> ApplyAsync(List<Task<Written>> batch, List<string>? failed)
    {
        foreach (var write in batch)
        {
            var w = await write.ConfigureAwait(false);
            if (w.Error is not null)
            {
                if (_failing.Add(w.ClientId)) Log.WriteFailed(log, w.ClientId, w.Error); // once until a write succeeds
                (failed ??= []).Add(w.ClientId);
                continue;
            }
            if (w.Revision is { } revision) _revisions[w.Key] = revision;
            else _revisions.Remove(w.Key);
            _failing.Remove(w.ClientId);
        }
        batch.Clear();
        return failed;
    }

    /// <summary>Writes one session as the mirror has it now (or deletes it when the mirror has none). What it reads of
    /// the loop's maps it reads before its first await, on the loop; what it changes is left to <see cref="ApplyAsync"/>.</summary>
    private async Task<Written> WriteAsync(INatsKVStore bucket, string clientId, CancellationToken stop)
    {
        var key = ClusterNode.OwnerKey(clientId);
        bool own = _revisions.TryGetValue(key, out ulong revision);
        try
        {
            if (_mirror.Get(clientId) is not { } state)
            {
                if (own) await bucket.DeleteAsync(key, new NatsKVDeleteOpts { Revision = revision }, stop).ConfigureAwait(false);
                return new Written(clientId, key, null, null);
            }
            var value = Encode(_node, state, DateTimeOffset.UtcNow);
            return new Written(clientId, key, own
                ? await bucket.UpdateAsync(key, value, revision, cancellationToken: stop).ConfigureAwait(false)
                : await bucket.PutAsync(key, value, cancellationToken: stop).ConfigureAwait(false), null);
        }
        catch (NatsKVWrongLastRevisionException)
        {
            // Another node wrote the client's session since: the client id is that node's now.
            return new Written(clientId, key, null, null);
        }
        catch (NatsException e)
        {
            return new Written(clientId, key, own ? revision : null, e.Message);
        }
    }

    /// <summary>A bucket value: the writing node's name, then the session.</summary>
    internal static byte[] Encode(string node, SessionState state, DateTimeOffset utcNow)
    {
        var w = new ArrayBufferWriter<byte>(256);
        ClusterWire.WriteString(w, node);
        w.Write(SessionStateCodec.Encode(state, utcNow));
        return w.WrittenSpan.ToArray();
    }

    /// <summary>The session of a bucket value, or null when it expired (its client away longer than its expiry).</summary>
    /// <exception cref="FormatException">Not a value this version writes.</exception>
    internal static SessionState? Decode(byte[] value, DateTimeOffset utcNow)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(value));
        ClusterWire.ReadString(ref reader);
        var state = SessionStateCodec.Decode(reader.UnreadSequence, utcNow);
        bool expired = state.ExpiryInterval != uint.MaxValue && state.DisconnectedAt is { } at && at.AddSeconds(state.ExpiryInterval) < utcNow;
        return expired || state.ExpiryInterval == 0 ? null : state;
    }

    /// <summary>What an acknowledgement waits for: every change recorded before the call kept (<see cref="FlushKeptAsync"/>)
    /// and, for the message routed last on this thread, the other nodes that want it (<c>takeConfirmation</c>, taken
    /// before anything is awaited: it is the calling thread's).</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        var confirmed = takeConfirmation?.Invoke();
        await FlushKeptAsync(cancellationToken).ConfigureAwait(false);
        if (confirmed is not null) await confirmed.ConfigureAwait(false);
    }

    /// <summary>Completes once every change recorded before the call is in the node's own store and in the bucket (at
    /// most <see cref="FlushWait"/>; at once while the bucket is not open or NATS is unreachable).</summary>
    public async ValueTask FlushKeptAsync(CancellationToken cancellationToken = default)
    {
        long upTo;
        lock (_gate) upTo = _recorded;
        if (inner is not null) await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        long deadline = Environment.TickCount64 + (long)FlushWait.TotalMilliseconds;
        while (Volatile.Read(ref _bucket) is not null && _connected())
        {
            Task wrote;
            lock (_gate)
            {
                if (_written >= upTo) return;
                wrote = _wrote.Task;
            }
            long left = deadline - Environment.TickCount64;
            try
            {
                if (left <= 0) throw new TimeoutException();
                await wrote.WaitAsync(TimeSpan.FromMilliseconds(left), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                if (!_slowLogged) Log.FlushSlow(log, FlushWait.TotalSeconds);
                _slowLogged = true;
                return;
            }
        }
    }

    public IReadOnlyList<SessionState> LoadAll() => inner?.LoadAll() ?? [];

    public void SessionSaved(SessionState state)
    {
        Record(state.ClientId, state, static (store, _, s) => store.SessionSaved(s));
        HoldExactly(state.ClientId, state.Subscriptions.Select(s => s.Filter));
    }

    public void SessionRemoved(string clientId)
    {
        Record(clientId, 0, static (store, id, _) => store.SessionRemoved(id));
        HoldExactly(clientId, []);
    }

    public void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt) =>
        Record(clientId, (expiryInterval, disconnectedAt), static (store, id, s) => store.SessionUpdated(id, s.expiryInterval, s.disconnectedAt));

    public void SubscriptionSet(string clientId, Subscription subscription)
    {
        Record(clientId, subscription, static (store, id, s) => store.SubscriptionSet(id, s));
        Hold(clientId, subscription.Filter);
    }

    public void SubscriptionRemoved(string clientId, string filter)
    {
        Record(clientId, filter, static (store, id, f) => store.SubscriptionRemoved(id, f));
        Release(clientId, filter);
    }

    private void Hold(string clientId, string filter)
    {
        if (durableFilterChanged is null || Midge.Protocol.Topics.TryParseShared(filter, out _, out _)) return;
        lock (_filtersOf)
        {
            if (!_filtersOf.TryGetValue(clientId, out var filters)) _filtersOf[clientId] = filters = new(StringComparer.Ordinal);
            if (!filters.Add(filter)) return;
            int holders = _holders.GetValueOrDefault(filter) + 1;
            _holders[filter] = holders;
            if (holders == 1) durableFilterChanged(filter, true);
        }
    }

    private void Release(string clientId, string filter)
    {
        if (durableFilterChanged is null) return;
        lock (_filtersOf)
        {
            if (!_filtersOf.TryGetValue(clientId, out var filters) || !filters.Remove(filter)) return;
            if (filters.Count == 0) _filtersOf.Remove(clientId);
            if (_holders[filter] > 1)
            {
                _holders[filter]--;
                return;
            }
            _holders.Remove(filter);
            durableFilterChanged(filter, false);
        }
    }

    /// <summary>The client holds these filters now, and no others (a whole session saved, or removed).</summary>
    private void HoldExactly(string clientId, IEnumerable<string> filters)
    {
        if (durableFilterChanged is null) return;
        var now = filters.ToHashSet(StringComparer.Ordinal);
        List<string> gone;
        lock (_filtersOf) gone = _filtersOf.TryGetValue(clientId, out var held) ? [.. held.Where(f => !now.Contains(f))] : [];
        foreach (var filter in gone) Release(clientId, filter);
        foreach (var filter in now) Hold(clientId, filter);
    }

    public void MessageQueued(string clientId, QueuedMessage message) =>
        Record(clientId, message, static (store, id, m) => store.MessageQueued(id, m));

    public void MessageDequeued(string clientId, long sequence) =>
        Record(clientId, sequence, static (store, id, s) => store.MessageDequeued(id, s));

    public void InflightAdded(string clientId, InflightMessage message) =>
        Record(clientId, message, static (store, id, m) => store.InflightAdded(id, m));

    public void InflightAdvanced(string clientId, ushort packetId, InflightState state) =>
        Record(clientId, (packetId, state), static (store, id, s) => store.InflightAdvanced(id, s.packetId, s.state));

    public void InflightCompleted(string clientId, ushort packetId) =>
        Record(clientId, packetId, static (store, id, p) => store.InflightCompleted(id, p));

    public void IncomingQoS2Added(string clientId, ushort packetId) =>
        Record(clientId, packetId, static (store, id, p) => store.IncomingQoS2Added(id, p));

    public void IncomingQoS2Removed(string clientId, ushort packetId) =>
        Record(clientId, packetId, static (store, id, p) => store.IncomingQoS2Removed(id, p));

    public void WillChanged(string clientId, StoredWill? will) =>
        Record(clientId, will, static (store, id, w) => store.WillChanged(id, w));

    /// <summary>A change of one session: to the node's store, to the mirror, and the session is to be written.</summary>
    private void Record<TArg>(string clientId, TArg arg, Action<ISessionStore, string, TArg> change)
    {
        if (inner is not null) change(inner, clientId, arg);
        change(_mirror, clientId, arg);
        Dirty(clientId);
    }

    // Retained messages, totals and bans are the node's own store's (the cluster has its own retained bucket).
    public IReadOnlyList<StoredMessage> LoadRetained() => inner?.LoadRetained() ?? [];

    public void RetainedSet(StoredMessage message) => inner?.RetainedSet(message);

    public void RetainedRemoved(string topic) => inner?.RetainedRemoved(topic);

    public StoredTotals? LoadTotals() => inner?.LoadTotals();

    public void TotalsSaved(StoredTotals totals) => inner?.TotalsSaved(totals);

    public IReadOnlyList<Ban> LoadBans() => inner?.LoadBans() ?? [];

    public void BanSet(Ban ban) => inner?.BanSet(ban);

    public void BanRemoved(BanKind kind, string who) => inner?.BanRemoved(kind, who);

    public void BeginGroup() => inner?.BeginGroup();

    public void EndGroup() => inner?.EndGroup();

    public void Dispose() => (inner as IDisposable)?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(EventId = 1430, Level = LogLevel.Warning, Message = "Cluster: cannot replicate the session of client {ClientId}: {Error}; acknowledging without it, trying again every second")]
        public static partial void WriteFailed(ILogger logger, string clientId, string error);

        [LoggerMessage(EventId = 1431, Level = LogLevel.Warning, Message = "Cluster: the sessions bucket did not confirm within {Seconds} s; acknowledging anyway (a node's death may lose what it did not have)")]
        public static partial void FlushSlow(ILogger logger, double seconds);
    }
}
