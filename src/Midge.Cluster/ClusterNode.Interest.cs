using System.Text;
using Microsoft.Extensions.Logging;
using Midge.Core.Routing;
using NATS.Client.Core;

namespace Midge.Cluster;

// Who wants what (docs/cluster.md, "What crosses between nodes"): every node tells the others the filters and shared
// groups it holds, so that a node publishes a message to NATS only when another node, or a shared group anywhere,
// wants it; a message only this node's clients want never leaves it. A node that is not sure what every running node
// holds (joining, after losing NATS, after missing an announcement) publishes everything until it is sure again: the
// map only saves work, it never costs a subscriber a message. It only ever errs on the side of too much: a key a
// node dropped while this one was not listening costs an unneeded publish, never a lost one.
public sealed partial class ClusterNode
{
    /// <summary>How long a node collects the others' sets when it (re)joins before it checks that it heard from every
    /// running node (two heartbeats: by then every running node has said it is up).</summary>
    internal static readonly TimeSpan InterestSyncWindow = TimeSpan.FromSeconds(2);

    private const char DeltaKind = 'D', FullKind = 'F';

    // What an entry of an announcement says of its key: held (no persistent session holds it, or a group), held by
    // persistent sessions (acknowledgements of messages for it wait for this node), no longer held, no longer held by
    // persistent sessions. A full set's entries are Added or DurableOn.
    private const char Added = '+', DurableOn = '*', Removed = '-', DurableOff = '~';

    // The plain filters and shared groups ($share/{group}/{filter}) of the other nodes, and this node's own shared
    // groups (its own plain filters are served without NATS), each keyed by the node that holds it. Bounded as the
    // nodes' filters and groups are: one entry per (node, filter), whatever the clients publish.
    private readonly SubscriptionIndex<string, byte> _wanted = new();
    private readonly Lock _interestGate = new();
    // Guarded by _interestGate: what each other node announced, in which of its runs, up to which announcement, and
    // whether it is complete (a full set was applied, and no announcement was missed since). One entry per node heard
    // from (a node that stops cleanly takes its entry with it), its keys bounded as that node's filters are.
    private readonly Dictionary<string, PeerInterest> _interestOf = new(StringComparer.Ordinal);
    // Guarded by _interestGate: this node's announced keys, the plain filters its persistent sessions hold (announced
    // as such while they are announced keys), and the number of its last announcement. Bounded as this node's
    // filters and groups are (the routing index and the persistent sessions' subscriptions).
    private readonly HashSet<string> _ownInterest = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ownDurable = new(StringComparer.Ordinal);
    private long _ownInterestSeq;
    // This run of the node: a node restarted under the same name starts its announcements again.
    private readonly string _incarnation = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray(), 0, 8);
    private volatile bool _interestSynced;
    private int _interestSyncing, _interestResync;
    private INatsSub<byte[]>? _interestSub, _interestSyncSub;

    private string InterestSubject => _prefix + ".interest";

    private sealed class PeerInterest(string incarnation)
    {
        public string Incarnation { get; } = incarnation;

        public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);

        public long Seq { get; set; }

        public bool Complete { get; set; }

        /// <summary>When the node last announced something (<see cref="Environment.TickCount64"/>).</summary>
        public long LastHeard { get; set; } = Environment.TickCount64;
    }

    /// <summary>Whether another node (or a shared group, this node's included) may want a message on
    /// <paramref name="topic"/>: yes unless this node knows what every running node holds and none matches.</summary>
    internal bool IsWanted(string topic)
    {
        if (!_interestSynced) return true;
        var any = new AnyMatch();
        _wanted.Match(topic, ref any);
        return any.Found;
    }

    /// <summary>Whether this node knows what every running node holds (tests).</summary>
    internal bool InterestSynced => _interestSynced;

    private struct AnyMatch : ISubscriptionVisitor<string, byte>
    {
        public bool Found;

        public void OnSubscription(string subscriber, string filter, byte value) => Found = true;

        public void OnSharedGroup(SharedGroup<string, byte> group) => Found = true;
    }

    /// <summary>This node's shared groups go into the map at once (on the subscribing thread): the router leaves them
    /// to NATS from the moment they exist, so a message for one must go to NATS from then on.</summary>
    private void OnOwnGroupChanged(string filter, string group, bool added)
    {
        var key = InterestKey(filter, group);
        if (added) _wanted.Subscribe(key, Config.NodeName, 0);
        else _wanted.Unsubscribe(key, Config.NodeName);
    }

    /// <summary>Listens to the others' announcements and requests, says this node's set to everyone (before any
    /// announcement of its own goes out), and asks for theirs.</summary>
    private async Task StartInterestAsync()
    {
        _interestSub = await _nats.SubscribeCoreAsync<byte[]>(InterestSubject, cancellationToken: _stop.Token).ConfigureAwait(false);
        _interestSyncSub = await _nats.SubscribeCoreAsync<byte[]>(InterestSubject + ".sync", cancellationToken: _stop.Token).ConfigureAwait(false);
        _ = Task.Run(ListenInterestAsync);
        _ = Task.Run(AnswerInterestSyncAsync);
        _nats.ConnectionDisconnected += (_, _) =>
        {
            _interestSynced = false; // announcements may be missed from now on
            return ValueTask.CompletedTask;
        };
        _nats.ConnectionOpened += (_, _) =>
        {
            _ = Task.Run(SyncInterestAsync);
            return ValueTask.CompletedTask;
        };
        await PublishOrLogAsync(InterestSubject, FullSet()).ConfigureAwait(false);
        _ = Task.Run(SyncInterestAsync);
    }

    /// <summary>Asks every node for its set and collects the answers for <see cref="InterestSyncWindow"/>; done once
    /// every running node's set is complete here, else asks again (while connected). One at a time: a request for
    /// another round while one runs makes that one go round again.</summary>
    private async Task SyncInterestAsync()
    {
        _interestSynced = false;
        Volatile.Write(ref _interestResync, 1);
        if (Interlocked.Exchange(ref _interestSyncing, 1) == 1) return;
        try
        {
            while (!_stop.IsCancellationRequested && IsConnected && Interlocked.Exchange(ref _interestResync, 0) == 1)
            {
                try
                {
                    await foreach (var reply in _nats.RequestManyAsync<byte[], byte[]>(InterestSubject + ".sync", Encoding.UTF8.GetBytes(Config.NodeName),
                        replyOpts: new NatsSubOpts { Timeout = InterestSyncWindow }, cancellationToken: _stop.Token).ConfigureAwait(false))
                    {
                        if (reply.Data is { Length: > 0 } data) ApplyInterest(data);
                    }
                }
                catch (NatsNoRespondersException)
                {
                    // no other node: nothing to learn
                }
                catch (NatsException e)
                {
                    Log.InterestSyncFailed(_log, e.Message);
                    Volatile.Write(ref _interestResync, 1);
                    await Task.Delay(InterestSyncWindow, _stop.Token).ConfigureAwait(false);
                    continue;
                }
                if (!AllRunningPeersKnown()) Volatile.Write(ref _interestResync, 1);
                else if (Volatile.Read(ref _interestResync) == 0 && IsConnected) _interestSynced = true;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            Volatile.Write(ref _interestSyncing, 0);
        }
        // A request that came in as this round ended: go round again.
        if (Volatile.Read(ref _interestResync) == 1 && !_stop.IsCancellationRequested && IsConnected) _ = Task.Run(SyncInterestAsync);
    }

    /// <summary>Whether every node heard from lately (a heartbeat saying it runs, or an announcement) has a complete set
    /// here.</summary>
    private bool AllRunningPeersKnown()
    {
        var now = _broker.UtcNow;
        long recently = Environment.TickCount64 - (long)HeartbeatTimeout.TotalMilliseconds;
        lock (_interestGate)
        {
            foreach (var (name, peer) in _peers)
            {
                if (!RunsNow(peer, now)) continue;
                if (!_interestOf.TryGetValue(name, out var known) || !known.Complete) return false;
            }
            foreach (var known in _interestOf.Values)
            {
                if (!known.Complete && known.LastHeard >= recently) return false;
            }
        }
        return true;
    }

    /// <summary>A heartbeat from <paramref name="node"/>: a running node whose set is not complete here makes this
    /// node unsure (and ask); a node that stopped cleanly takes its set with it.</summary>
    private void OnPeerHeartbeat(string node, bool running)
    {
        bool unknown;
        lock (_interestGate)
        {
            if (!running)
            {
                if (_interestOf.Remove(node, out var gone)) Forget(node, gone.Keys);
                return;
            }
            unknown = !_interestOf.TryGetValue(node, out var known) || !known.Complete;
        }
        if (unknown && _interestSynced) _ = Task.Run(SyncInterestAsync);
    }

    private async Task ListenInterestAsync()
    {
        try
        {
            await foreach (var msg in _interestSub!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                // Applied: the announcer may go on (never an answer to this node's own, which NATS echoes back).
                if (msg.Data is { Length: > 0 } data && ApplyInterest(data) && msg.ReplyTo is { } replyTo) _ = ReplyAsync(replyTo, Taken);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task AnswerInterestSyncAsync()
    {
        try
        {
            await foreach (var msg in _interestSyncSub!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (msg.ReplyTo is null || msg.Data is null || Encoding.UTF8.GetString(msg.Data) == Config.NodeName) continue;
                await PublishOrLogAsync(msg.ReplyTo, FullSet()).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>This node's set, as a full announcement: <c>F{seq}\0{node}\0{incarnation}\0+{key}\0*{key}…</c>.</summary>
    private byte[] FullSet()
    {
        lock (_interestGate)
        {
            var text = new StringBuilder().Append(FullKind).Append(_ownInterestSeq).Append('\0').Append(Config.NodeName).Append('\0').Append(_incarnation);
            foreach (var key in _ownInterest) text.Append('\0').Append(_ownDurable.Contains(key) ? DurableOn : Added).Append(key);
            return Encoding.UTF8.GetBytes(text.ToString());
        }
    }

    /// <summary>Announces a batch of this node's changes (<c>D{seq}\0{node}\0{incarnation}\0+{key}\0-{key}…</c>) and
    /// waits, at most <see cref="SubscribeWait"/>, until every running node has applied it: from then on each of them
    /// publishes what this node's new filters want.</summary>
    private async Task AnnounceInterestAsync(List<(char Op, string Key)> changes)
    {
        byte[] payload;
        lock (_interestGate)
        {
            var text = new StringBuilder().Append(DeltaKind).Append(++_ownInterestSeq).Append('\0').Append(Config.NodeName).Append('\0').Append(_incarnation);
            foreach (var (op, key) in changes)
            {
                char said = op;
                switch (op)
                {
                    case Added:
                        _ownInterest.Add(key);
                        if (_ownDurable.Contains(key)) said = DurableOn;
                        break;
                    case Removed:
                        _ownInterest.Remove(key);
                        break;
                    case DurableOn:
                        _ownDurable.Add(key);
                        if (!_ownInterest.Contains(key)) continue; // said when it is added (a filter NATS cannot carry never is)
                        break;
                    default:
                        _ownDurable.Remove(key);
                        if (!_ownInterest.Contains(key)) continue;
                        break;
                }
                text.Append('\0').Append(said).Append(key);
            }
            payload = Encoding.UTF8.GetBytes(text.ToString());
        }
        int expected = RunningPeerCount();
        if (expected == 0 || !IsConnected)
        {
            await PublishOrLogAsync(InterestSubject, payload).ConfigureAwait(false);
            return;
        }
        int answered = 0;
        try
        {
            await foreach (var _ in _nats.RequestManyAsync<byte[], byte[]>(InterestSubject, payload,
                replyOpts: new NatsSubOpts { Timeout = SubscribeWait, MaxMsgs = expected }, cancellationToken: _stop.Token).ConfigureAwait(false))
            {
                answered++;
            }
        }
        catch (NatsNoRespondersException)
        {
        }
        catch (NatsException e)
        {
            Log.PublishFailed(_log, e.Message);
        }
        if (answered < expected) Log.InterestSlow(_log, answered, expected, SubscribeWait.TotalMilliseconds);
    }

    /// <summary>The other nodes a change of this node's filters waits for: those running (heard from within the
    /// heartbeat timeout), and those that announced their filters within it but whose heartbeat has not come yet (a node
    /// just joined: it already publishes by what it knows of this node's filters).</summary>
    private int RunningPeerCount()
    {
        var now = _broker.UtcNow;
        int running = _peers.Values.Count(p => RunsNow(p, now));
        long tick = Environment.TickCount64;
        lock (_interestGate)
        {
            foreach (var (name, interest) in _interestOf)
            {
                if (!_peers.ContainsKey(name) && tick - interest.LastHeard < (long)HeartbeatTimeout.TotalMilliseconds) running++;
            }
        }
        return running;
    }

    private async Task<bool> PublishOrLogAsync(string subject, ReadOnlyMemory<byte> payload)
    {
        try
        {
            await _nats.PublishAsync(subject, payload, cancellationToken: _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (NatsException e)
        {
            Log.PublishFailed(_log, e.Message);
            return false;
        }
    }

    /// <summary>Applies another node's announcement (full or a batch of changes); one of an earlier run of that node,
    /// a gap in its numbers, or changes from a node whose set is not complete here make this node unsure until it
    /// has asked everyone again. Malformed ones are counted and dropped.</summary>
    /// <returns>Whether it was another node's, and applied.</returns>
    internal bool ApplyInterest(byte[] data)
    {
        var parts = Encoding.UTF8.GetString(data).Split('\0');
        if (parts.Length < 3 || parts[0].Length < 2 || (parts[0][0] != DeltaKind && parts[0][0] != FullKind) ||
            !long.TryParse(parts[0].AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long seq))
        {
            Counters.OnMalformed();
            return false;
        }
        string node = parts[1], incarnation = parts[2];
        if (node == Config.NodeName) return false;
        bool unsure = false;
        try
        {
            lock (_interestGate)
            {
                if (!_interestOf.TryGetValue(node, out var known) || known.Incarnation != incarnation)
                {
                    if (known is not null) Forget(node, known.Keys);
                    _interestOf[node] = known = new PeerInterest(incarnation);
                }
                known.LastHeard = Environment.TickCount64;
                if (parts[0][0] == FullKind) ApplyFull(node, known, seq, parts);
                else unsure = ApplyChanges(node, known, seq, parts);
            }
        }
        catch (ArgumentException)
        {
            Counters.OnMalformed(); // not a filter
            return false;
        }
        if (unsure)
        {
            _interestSynced = false; // from now on, until everyone has answered
            _ = Task.Run(SyncInterestAsync);
        }
        return true;
    }

    /// <summary>A node's whole set (entries from <paramref name="parts"/>[3]), under the gate: replaces what is known of
    /// it, unless what is known is newer; when what is known is incomplete, it is kept too (a change newer than this
    /// set must not be lost: an extra key costs an unneeded publish, a missing one a lost message).</summary>
    private void ApplyFull(string node, PeerInterest known, long seq, string[] parts)
    {
        if (known.Complete && seq <= known.Seq) return; // an older answer: later changes are applied already
        if (known.Complete)
        {
            var keys = new HashSet<string>(parts.Skip(3).Where(e => e.Length > 1).Select(e => e[1..]), StringComparer.Ordinal);
            foreach (var stale in known.Keys.Where(k => !keys.Contains(k)).ToList())
            {
                known.Keys.Remove(stale);
                _wanted.Unsubscribe(stale, node);
            }
        }
        for (int i = 3; i < parts.Length; i++)
        {
            if (parts[i].Length > 1) Remember(node, known, parts[i][1..], durable: parts[i][0] == DurableOn);
        }
        known.Seq = Math.Max(known.Seq, seq);
        known.Complete = true;
    }

    /// <summary>A batch of a node's changes, under the gate. Returns whether this node is now unsure of that node's set
    /// (a gap in its numbers, or no complete set of it yet).</summary>
    private bool ApplyChanges(string node, PeerInterest known, long seq, string[] parts)
    {
        if (known.Complete && seq <= known.Seq) return false; // in a full set applied already
        bool unsure = !known.Complete || seq != known.Seq + 1;
        if (unsure) known.Complete = false;
        known.Seq = seq;
        for (int i = 3; i < parts.Length; i++)
        {
            var entry = parts[i];
            if (entry.Length < 2) continue;
            var key = entry[1..];
            switch (entry[0])
            {
                case Added or DurableOn:
                    Remember(node, known, key, durable: entry[0] == DurableOn);
                    break;
                case DurableOff:
                    if (known.Keys.Contains(key)) _wanted.Subscribe(key, node, 0);
                    break;
                default:
                    if (known.Keys.Remove(key)) _wanted.Unsubscribe(key, node);
                    break;
            }
        }
        return unsure;
    }

    /// <summary>Enters (or updates) a key of another node: durable when its persistent sessions hold it.</summary>
    private void Remember(string node, PeerInterest known, string key, bool durable)
    {
        known.Keys.Add(key);
        _wanted.Subscribe(key, node, durable ? (byte)1 : (byte)0);
    }

    private void Forget(string node, IEnumerable<string> keys)
    {
        foreach (var key in keys) _wanted.Unsubscribe(key, node);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1409, Level = LogLevel.Warning, Message = "Cluster: {Answered} of {Expected} running nodes confirmed a new filter within {Milliseconds} ms; its SUBACK goes anyway")]
        public static partial void InterestSlow(ILogger logger, int answered, int expected, double milliseconds);

        [LoggerMessage(EventId = 1410, Level = LogLevel.Warning, Message = "Cluster: cannot ask the other nodes what they subscribe to: {Error}; publishing every message to NATS meanwhile")]
        public static partial void InterestSyncFailed(ILogger logger, string error);
    }
}
