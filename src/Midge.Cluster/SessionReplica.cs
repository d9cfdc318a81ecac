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
/// and what changed of the persistent sessions is written to the cluster's sessions bucket
/// (<c>midge-{cluster}-sessions</c>), so that another node can resume them when this one dies (docs/cluster.md). A
/// session is one key (the client id as <see cref="ClusterNode.OwnerKey"/> writes it; value: the node's name and the
/// session as <see cref="SessionStateCodec"/> writes it) while its messages hold at most <see cref="InlineBytes"/> of
/// payload. Beyond, it is split: that key keeps the session without its messages (expiry, subscriptions, incoming QoS 2
/// ids, will), and each message has a key of its own, <c>{key}.q.{sequence}</c> queued, <c>{key}.f.{packet id}</c> in
/// flight, so a change costs a write of its own size (a message queued is one small write, not a write of the whole
/// session with everything it queued, which past NATS's max_payload could not be written at all).
/// </summary>
/// <remarks>
/// One loop writes the sessions changed since its last pass, each once however many changes it had: a small one whole,
/// in one write; a split one change by change: the messages queued or in flight (the latest of each), the head when it
/// changed, then the messages gone (deleted after the writes, so that a message moved from the queue into flight is
/// never missing from the bucket; a session read back leaves out a queued message that one in flight came from). A
/// split session's first write by this node, and one after <see cref="ISessionStore.SessionSaved"/> or a failure,
/// writes all of it and deletes the keys of messages it no longer has. <see cref="FlushAsync"/> completes once every
/// change recorded before it is in the bucket, so with <c>persistence_mode durable</c> a PUBACK waits for it; at most
/// <see cref="FlushWait"/>, and at once while the bucket is not open or NATS is unreachable: then acknowledgements go
/// as without replication (logged). What waits is bounded by the sessions: one entry per changed client id, each with
/// at most the sequences and packet ids its session holds to write, and <see cref="MaxNotedDeletes"/> of each to delete.
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
    private Dictionary<string, Changes> _dirty = new(StringComparer.Ordinal);
    private long _recorded, _written;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _wrote = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private INatsKVStore? _bucket;
    private string _node = "";
    private bool _slowLogged;
    private Func<bool> _connected = static () => false;
    private INatsConnection? _nats;

    // The client ids whose last write failed (logged once until one succeeds). Touched by the loop only (ApplyAsync).
    private readonly HashSet<string> _failing = new(StringComparer.Ordinal);

    // The revision of this node's last write of each key: a later write or delete is made against it, so a node
    // that took the client id over (and wrote since) is never overwritten by this one. One entry per session this node
    // wrote and still holds (a delete removes it), so it is bounded as the sessions are. Touched by the loop only.
    private readonly Dictionary<string, ulong> _revisions = new(StringComparer.Ordinal);

    // The sessions this node writes split (their messages under keys of their own: more than InlineBytes of payload).
    // One entry per such session; touched by the loop only.
    private readonly HashSet<string> _split = new(StringComparer.Ordinal);

    // The plain filters of the persistent sessions (what the store sees is theirs only): each client's, and how many
    // clients hold each filter. A filter's first holder and its last one are told to durableFilterChanged, on the
    // thread that made the change. Bounded as the sessions' subscriptions are.
    private readonly Dictionary<string, HashSet<string>> _filtersOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _holders = new(StringComparer.Ordinal);

    /// <summary>The store this one passes changes on to (null: none).</summary>
    public ISessionStore? Inner => inner;

    /// <summary>Starts writing to <paramref name="bucket"/> (sessions changed before are written as they change again).</summary>
    public Task RunAsync(INatsConnection nats, INatsKVStore bucket, string node, Func<bool> connected, CancellationToken stop)
    {
        _nats = nats;
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

    /// <summary>What changed in one session since the loop's last pass took it. Touched under <c>_gate</c> until the
    /// pass takes it, by the pass alone after.</summary>
    private sealed class Changes
    {
        /// <summary>All of it is to be written, and the keys it no longer has deleted.</summary>
        public bool Whole;

        /// <summary>The head changed (expiry, subscriptions, incoming QoS 2 ids, will).</summary>
        public bool Head;

        public readonly HashSet<long> Queued = [], Dequeued = [];
        public readonly HashSet<ushort> Inflight = [], Completed = [];
    }

    private void Dirty<TArg>(string clientId, TArg arg, Action<Changes, TArg> note)
    {
        lock (_gate)
        {
            if (!_dirty.TryGetValue(clientId, out var changes)) _dirty[clientId] = changes = new Changes();
            note(changes, arg);
            _recorded++;
            _changed.TrySetResult();
        }
    }

    /// <summary>How many deletes one session's changes list before they give way to a whole write (which deletes every
    /// key the session no longer has): what a pass that takes long (JetStream slow) leaves waiting stays bounded.</summary>
    private const int MaxNotedDeletes = 4_096;

    /// <summary>A queued message gone (sent, or dropped): deleted from the bucket, unless it was never written.</summary>
    private static void NoteDequeued(Changes changes, long sequence)
    {
        if (!changes.Queued.Remove(sequence)) NoteDelete(changes, changes.Dequeued, sequence);
    }

    private static void NoteDelete<T>(Changes changes, HashSet<T> deletes, T item)
    {
        if (!deletes.Add(item) || deletes.Count <= MaxNotedDeletes) return;
        changes.Whole = true;
        changes.Dequeued.Clear();
        changes.Completed.Clear();
    }

    private async Task WriteLoopAsync(INatsKVStore bucket, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                Task changed;
                Dictionary<string, Changes> dirty;
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
                foreach (var (clientId, changes) in dirty)
                {
                    batch.Add(WriteAsync(bucket, clientId, changes, stop));
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
            foreach (var clientId in failed)
            {
                if (!_dirty.TryGetValue(clientId, out var changes)) _dirty[clientId] = changes = new Changes();
                changes.Whole = true; // what the failed pass did not write is not known: all of it again
            }
            _changed.TrySetResult();
        }
    }

    /// <summary>How many session writes of one pass may be in flight at once.</summary>
    private const int WritesAtOnce = 256;

    /// <summary>What became of one write: the key's new revision (null: the key is no longer this node's to write:
    /// deleted, or taken by another node), or the error that failed it.</summary>
    private readonly record struct Written(string ClientId, string Key, ulong? Revision, string? Error, bool Split = false);

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
            if (w.Split && w.Revision is not null) _split.Add(w.Key);
            else _split.Remove(w.Key);
            _failing.Remove(w.ClientId);
        }
        batch.Clear();
        return failed;
    }

    /// <summary>How many writes of one session may be in flight at once.</summary>
    private const int PartsAtOnce = 64;

    /// <summary>A session whose messages hold more payload than this is written split, a key per message (back to one
    /// value once it holds less than half of it): a small session is cheaper written whole, in one write, than a write
    /// per change, and a large one cannot be (NATS's max_payload, 1 MiB by default) or costs a write of everything for
    /// each message queued.</summary>
    public const int InlineBytes = 64 * 1024;

    /// <summary>Writes what changed of one session, as the mirror has it now (or deletes it when the mirror has no
    /// session): whole, as one value, while it is small; split once it is large (<see cref="InlineBytes"/>), then each
    /// change on its own. The head's write is made against this node's last revision of it, so a node that took the
    /// client id over (and wrote since) is never overwritten by this one. What it reads of the loop's maps it reads
    /// before its first await, on the loop; what it changes is left to <see cref="ApplyAsync"/>.</summary>
    private async Task<Written> WriteAsync(INatsKVStore bucket, string clientId, Changes changes, CancellationToken stop)
    {
        var key = ClusterNode.OwnerKey(clientId);
        bool own = _revisions.TryGetValue(key, out ulong revision);
        bool split = _split.Contains(key);
        try
        {
            var utcNow = DateTimeOffset.UtcNow;
            if (_mirror.Get(clientId) is not { } state)
            {
                if (!own) return new Written(clientId, key, null, null);
                await bucket.DeleteAsync(key, new NatsKVDeleteOpts { Revision = revision }, stop).ConfigureAwait(false);
                if (split) await DeleteAllAsync(bucket, await PartKeysAsync(bucket, key, stop).ConfigureAwait(false), stop).ConfigureAwait(false);
                return new Written(clientId, key, null, null);
            }
            long payload = state.Queued.Sum(q => (long)q.Message.Payload.Length) + state.Inflight.Sum(f => (long)f.Message.Payload.Length);
            if (payload <= (split ? InlineBytes / 2 : InlineBytes))
            {
                // Whole, as one value; then away with the keys of its messages, if it was split (or, at this node's first
                // write, a previous owner's split copy may have left some).
                var value = Encode(_node, state, utcNow);
                ulong written = own
                    ? await bucket.UpdateAsync(key, value, revision, cancellationToken: stop).ConfigureAwait(false)
                    : await bucket.PutAsync(key, value, cancellationToken: stop).ConfigureAwait(false);
                if (split || !own) await DeleteAllAsync(bucket, await PartKeysAsync(bucket, key, stop).ConfigureAwait(false), stop).ConfigureAwait(false);
                return new Written(clientId, key, written, null);
            }
            var head = Encode(_node, state with { Queued = [], Inflight = [] }, utcNow);
            if (!own || !split || changes.Whole)
            {
                // Everything, split: every message first (a copy read back in between has them twice, never none), then
                // the head without them, then away with the keys of messages it no longer has.
                var parts = Parts(key, state, null, null, utcNow);
                await PutAllAsync(bucket, parts, stop).ConfigureAwait(false);
                ulong written = own
                    ? await bucket.UpdateAsync(key, head, revision, cancellationToken: stop).ConfigureAwait(false)
                    : await bucket.PutAsync(key, head, cancellationToken: stop).ConfigureAwait(false);
                var existing = await PartKeysAsync(bucket, key, stop).ConfigureAwait(false);
                existing.ExceptWith(parts.Select(p => p.Key));
                await DeleteAllAsync(bucket, existing, stop).ConfigureAwait(false);
                return new Written(clientId, key, written, null, Split: true);
            }
            await PutAllAsync(bucket, Parts(key, state, changes.Queued, changes.Inflight, utcNow), stop).ConfigureAwait(false);
            if (changes.Head) revision = await bucket.UpdateAsync(key, head, revision, cancellationToken: stop).ConfigureAwait(false);
            var gone = changes.Dequeued.Select(seq => QueuedKey(key, seq))
                .Concat(changes.Completed.Where(id => !state.Inflight.Any(f => f.PacketId == id)).Select(id => InflightKey(key, id)));
            await DeleteAllAsync(bucket, gone, stop).ConfigureAwait(false);
            return new Written(clientId, key, revision, null, Split: true);
        }
        catch (NatsKVWrongLastRevisionException)
        {
            // Another node wrote the client's session since: the client id is that node's now.
            return new Written(clientId, key, null, null);
        }
        catch (NatsException e)
        {
            return new Written(clientId, key, own ? revision : null, e.Message, split);
        }
    }

    internal static string QueuedKey(string key, long sequence) => $"{key}.q.{sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    internal static string InflightKey(string key, ushort packetId) => $"{key}.f.{packetId.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>The keys and values of the session's messages: all of them, or those among <paramref name="queued"/> and
    /// <paramref name="inflight"/> that it still has.</summary>
    private static List<(string Key, byte[] Value)> Parts(string key, SessionState state, HashSet<long>? queued, HashSet<ushort>? inflight,
        DateTimeOffset utcNow)
    {
        var parts = new List<(string, byte[])>();
        foreach (var f in state.Inflight)
        {
            if (inflight is null || inflight.Contains(f.PacketId)) parts.Add((InflightKey(key, f.PacketId), SessionStateCodec.EncodeInflight(f, utcNow)));
        }
        if (queued is null || queued.Count > 0)
        {
            foreach (var q in state.Queued)
            {
                if (queued is null || queued.Contains(q.Sequence)) parts.Add((QueuedKey(key, q.Sequence), SessionStateCodec.EncodeQueued(q, utcNow)));
            }
        }
        return parts;
    }

    private static async Task PutAllAsync(INatsKVStore bucket, List<(string Key, byte[] Value)> parts, CancellationToken stop)
    {
        foreach (var chunk in parts.Chunk(PartsAtOnce))
        {
            await Task.WhenAll(chunk.Select(p => bucket.PutAsync(p.Key, p.Value, cancellationToken: stop).AsTask())).ConfigureAwait(false);
        }
    }

    private static async Task DeleteAllAsync(INatsKVStore bucket, IEnumerable<string> keys, CancellationToken stop)
    {
        foreach (var chunk in keys.Chunk(PartsAtOnce))
        {
            await Task.WhenAll(chunk.Select(k => bucket.DeleteAsync(k, cancellationToken: stop).AsTask())).ConfigureAwait(false);
        }
    }

    /// <summary>The keys of a session's messages in the bucket now.</summary>
    private async Task<HashSet<string>> PartKeysAsync(INatsKVStore bucket, string key, CancellationToken stop)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var (part, _) in PartsAsync(_nats!, bucket.Bucket, key, stop).ConfigureAwait(false)) keys.Add($"{key}.{part}");
        return keys;
    }

    /// <summary>
    /// A session as the bucket has it: its head's value <paramref name="head"/> (the whole session, or the session
    /// without its messages) and its messages' keys (null: expired, or none). A queued message that one in flight came
    /// from is left out (the node died between writing the one and deleting the other).
    /// </summary>
    /// <exception cref="FormatException">Not a session this version writes.</exception>
    internal static async Task<SessionState?> ReadAsync(INatsConnection nats, INatsKVStore bucket, string key, byte[] head, DateTimeOffset utcNow,
        CancellationToken cancellationToken)
    {
        if (Decode(head, utcNow) is not { } state) return null;
        var queued = new List<QueuedMessage>(state.Queued);
        var inflight = new List<InflightMessage>(state.Inflight);
        await foreach (var (part, value) in PartsAsync(nats, bucket.Bucket, key, cancellationToken).ConfigureAwait(false))
        {
            var bytes = new ReadOnlySequence<byte>(value);
            if (part.StartsWith("q.", StringComparison.Ordinal)) queued.Add(SessionStateCodec.DecodeQueued(bytes, utcNow));
            else if (part.StartsWith("f.", StringComparison.Ordinal)) inflight.Add(SessionStateCodec.DecodeInflight(bytes, utcNow));
        }
        var sent = inflight.Where(f => f.FromQueue != 0).Select(f => f.FromQueue).ToHashSet();
        return state with
        {
            // Once each: a node that died while it turned a session from one value into keys of its own, or back, left
            // both (the value's first).
            Queued = [.. queued.Where(q => !sent.Contains(q.Sequence)).DistinctBy(q => q.Sequence).OrderBy(q => q.Sequence)],
            Inflight = [.. inflight.DistinctBy(f => f.PacketId).Select(f => f with { FromQueue = 0 }).OrderBy(f => f.Sequence)],
        };
    }

    /// <summary>
    /// The session's messages in the bucket now: each key's part after the session's key (<c>q.{sequence}</c>,
    /// <c>f.{packet id}</c>) and its value. Read with JetStream's direct get, one request each, which any server with a
    /// copy of the bucket answers: no consumer is made (one placed on a NATS server just killed would not answer).
    /// </summary>
    private static async IAsyncEnumerable<(string Part, byte[] Value)> PartsAsync(INatsConnection nats, string bucket, string key,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string prefix = $"$KV.{bucket}.{key}.";
        ulong seq = 1;
        while (true)
        {
            var request = System.Text.Encoding.UTF8.GetBytes($"{{\"seq\":{seq},\"next_by_subj\":\"{prefix}>\"}}");
            var reply = await nats.RequestAsync<byte[], byte[]>($"$JS.API.DIRECT.GET.KV_{bucket}", request,
                cancellationToken: cancellationToken).ConfigureAwait(false);
            var headers = reply.Headers;
            if (headers is null || headers.Code == 404) yield break; // no more
            if (headers.Code >= 400) throw new NatsException($"reading a session's messages: {headers.Code} {headers.MessageText}");
            if (!headers.TryGetValue("Nats-Sequence", out var seqText)
                || !ulong.TryParse(seqText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong found)
                || !headers.TryGetValue("Nats-Subject", out var subject))
            {
                throw new FormatException("a direct get without its sequence or subject");
            }
            seq = found + 1;
            if (headers.ContainsKey("KV-Operation") || reply.Data is not { Length: > 0 } value) continue; // deleted
            yield return (subject.ToString()[prefix.Length..], value);
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
        Record(state.ClientId, state, static (store, _, s) => store.SessionSaved(s), static (c, _) => c.Whole = true);
        HoldExactly(state.ClientId, state.Subscriptions.Select(s => s.Filter));
    }

    public void SessionRemoved(string clientId)
    {
        Record(clientId, 0, static (store, id, _) => store.SessionRemoved(id), static (c, _) => c.Whole = true);
        HoldExactly(clientId, []);
    }

    public void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt) =>
        Record(clientId, (expiryInterval, disconnectedAt), static (store, id, s) => store.SessionUpdated(id, s.expiryInterval, s.disconnectedAt), HeadChanged);

    public void SubscriptionSet(string clientId, Subscription subscription)
    {
        Record(clientId, subscription, static (store, id, s) => store.SubscriptionSet(id, s), HeadChanged);
        Hold(clientId, subscription.Filter);
    }

    public void SubscriptionRemoved(string clientId, string filter)
    {
        Record(clientId, filter, static (store, id, f) => store.SubscriptionRemoved(id, f), HeadChanged);
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
        Record(clientId, message, static (store, id, m) => store.MessageQueued(id, m), static (c, m) => c.Queued.Add(m.Sequence));

    public void MessageDequeued(string clientId, long sequence) =>
        Record(clientId, sequence, static (store, id, s) => store.MessageDequeued(id, s), NoteDequeued);

    public void InflightAdded(string clientId, InflightMessage message) =>
        Record(clientId, message, static (store, id, m) => store.InflightAdded(id, m), static (c, m) =>
        {
            c.Inflight.Add(m.PacketId);
            if (m.FromQueue != 0) NoteDequeued(c, m.FromQueue);
        });

    public void InflightAdvanced(string clientId, ushort packetId, InflightState state) =>
        Record(clientId, (packetId, state), static (store, id, s) => store.InflightAdvanced(id, s.packetId, s.state), static (c, s) => c.Inflight.Add(s.packetId));

    public void InflightCompleted(string clientId, ushort packetId) =>
        Record(clientId, packetId, static (store, id, p) => store.InflightCompleted(id, p), static (c, p) =>
        {
            c.Inflight.Remove(p);
            NoteDelete(c, c.Completed, p); // deleted unless the packet id is in flight again by the write
        });

    public void IncomingQoS2Added(string clientId, ushort packetId) =>
        Record(clientId, packetId, static (store, id, p) => store.IncomingQoS2Added(id, p), HeadChanged);

    public void IncomingQoS2Removed(string clientId, ushort packetId) =>
        Record(clientId, packetId, static (store, id, p) => store.IncomingQoS2Removed(id, p), HeadChanged);

    public void WillChanged(string clientId, StoredWill? will) =>
        Record(clientId, will, static (store, id, w) => store.WillChanged(id, w), HeadChanged);

    private static void HeadChanged<TArg>(Changes changes, TArg _) => changes.Head = true;

    /// <summary>A change of one session: to the node's store, to the mirror, and noted for the next write.</summary>
    private void Record<TArg>(string clientId, TArg arg, Action<ISessionStore, string, TArg> change, Action<Changes, TArg> note)
    {
        if (inner is not null) change(inner, clientId, arg);
        change(_mirror, clientId, arg);
        Dirty(clientId, arg, note);
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
