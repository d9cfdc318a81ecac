using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Messages;
using Midge.Core.Routing;
using NATS.Client.Core;

namespace Midge.Cluster;

// A publisher's acknowledgement waits for the other nodes that want the message (docs/cluster.md, "What a subscriber
// may miss, and what is acknowledged when"). With persistence_mode durable, a QoS 1 or 2 message that plain filters of
// other nodes' persistent sessions match (the nodes say which of their filters those are) crosses numbered: for each
// of those nodes, its place in this node's stream of numbered messages to that node. A receiving node routes them in
// that order, and only once each: a gap (a message NATS lost, as when a NATS server dies) holds what follows until the
// missing one is sent again; a number seen before is not routed twice. It waits until what they changed is in the
// cluster's sessions bucket (and its own file), and says so on midge.{cluster}.confirm.{publishing node} with the
// highest number up to which it has kept every one, one answer for many messages. The PUBACK, PUBREC or PUBCOMP of
// the message waits for those answers (with this node's own flush), at most ConfirmWait: so a node that dies after the
// publisher heard "acknowledged" has its copy in the bucket. What a node has not confirmed ResendAfter after it was
// sent goes again, to that node alone (midge.{cluster}.resend.{node}).
public sealed partial class ClusterNode
{
    /// <summary>How long an acknowledgement may wait for the other nodes before it goes anyway (logged), as long as
    /// it may wait for this node's own writes.</summary>
    public static readonly TimeSpan ConfirmWait = SessionReplica.FlushWait;

    /// <summary>How long a numbered message may stay unconfirmed after it was sent before it is sent again.</summary>
    public static readonly TimeSpan ResendAfter = TimeSpan.FromMilliseconds(750);

    /// <summary>How often the numbered streams are looked at (sending again, giving up on a gap).</summary>
    private static readonly TimeSpan StreamTick = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a numbered message is kept for sending again: past ConfirmWait its acknowledgement went anyway.</summary>
    private static readonly long HoldForMs = (long)ConfirmWait.TotalMilliseconds + 1_000;

    /// <summary>How long a receiving node holds what follows a gap before it routes it without the missing ones (the
    /// publishing node died, or let them go after <see cref="HoldForMs"/>).</summary>
    private static readonly long GapWaitMs = HoldForMs + 1_000;

    /// <summary>The most numbered messages kept unconfirmed for one receiving node, and the most a receiving node
    /// holds behind a gap from one publishing node: beyond, the oldest goes (its acknowledgement waits out
    /// <see cref="ConfirmWait"/>), or the gap is given up.</summary>
    public const int StreamCapacity = 16_384;

    /// <summary>The most payload bytes a receiving node holds behind a gap from one publishing node.</summary>
    public const long StreamHeldBytes = 64L << 20;

    /// <summary>The most messages sent again to one node per tick.</summary>
    private const int ResendBatch = 1_024;

    // This node's run: its numbers start again at each start, and answers for another run are not this one's.
    private readonly long _epoch = Random.Shared.NextInt64(1, long.MaxValue);

    // The sending side, under _confirmGate: per receiving node, the last number given and the numbered messages it has
    // not confirmed (oldest first, at most StreamCapacity, none older than HoldForMs).
    private readonly Lock _confirmGate = new();
    private readonly Dictionary<string, OutStream> _outStreams = new(StringComparer.Ordinal);
    private long _confirmationsAsked;
    // The highest number each other node confirmed keeping (all before it kept too), in this run: one entry per node.
    private readonly ConcurrentDictionary<string, long> _confirmedBy = new(StringComparer.Ordinal);
    private TaskCompletionSource _confirmSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private INatsSub<byte[]>? _confirmations;
    private RouteSubscription? _resends;
    private bool _confirmSlowLogged;

    // The receiving side, under its own lock: per publishing node, where its stream to this node is (one entry per
    // node), and the numbers routed here and not yet confirmed (the highest per node).
    private readonly Dictionary<string, InStream> _inStreams = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Epoch, long Seq)> _toConfirm = new(StringComparer.Ordinal);
    private TaskCompletionSource _toConfirmSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The message this thread routed last that waits for other nodes (the acknowledgement that follows on
    /// the same thread takes it).</summary>
    [ThreadStatic] private static PendingConfirmation? t_pending;

    private sealed record PendingConfirmation(ClusterNode Node, Outstanding[] Numbers);

    /// <summary>A numbered message for one receiving node, kept until that node confirms it.</summary>
    private sealed class Outstanding(string node, long seq, Message message, long enqueuedMs)
    {
        public string Node { get; } = node;
        public long Seq { get; } = seq;
        public Message Message { get; } = message;
        public long EnqueuedMs { get; } = enqueuedMs;

        /// <summary>When it was last sent (0: not yet; it waits in the outbound queue).</summary>
        public long SentMs;
    }

    private sealed class OutStream
    {
        public long Last;
        public readonly Queue<Outstanding> Unconfirmed = new();

        /// <summary>The lowest number still held (the next to be given when none is).</summary>
        public long Floor => Unconfirmed.TryPeek(out var head) ? head.Seq : Last + 1;
    }

    private sealed class InStream(long epoch, long next)
    {
        public long Epoch { get; } = epoch;

        /// <summary>The next number to route (every one below was routed, or given up).</summary>
        public long Next = next;

        /// <summary>What arrived after a gap, by number, and since when something has been held.</summary>
        public readonly SortedDictionary<long, Message> Held = [];
        public long HeldBytes;
        public long HeldSinceMs;
    }

    private string ConfirmSubject(string node) => $"{_prefix}.confirm.{node}";

    private string ResendSubject(string node) => $"{_prefix}.resend.{node}";

    /// <summary>How many messages this node has sent asking for confirmation (tests).</summary>
    internal long ConfirmationsAsked => Interlocked.Read(ref _confirmationsAsked);

    /// <summary>Test hook: called with each numbered message about to go to NATS; true drops it (a message NATS lost).</summary>
    internal Func<Message, bool>? LoseNumberedForTest { get; set; }

    /// <summary>Whether acknowledgements wait for what they acknowledge to be kept (<c>persistence_mode durable</c>,
    /// the default).</summary>
    private bool HoldsAcknowledgements => _broker.Config.PersistenceMode == PersistenceMode.Durable;

    private async Task StartConfirmationsAsync()
    {
        _confirmations = await _nats.SubscribeCoreAsync<byte[]>(ConfirmSubject(Config.NodeName), cancellationToken: _stop.Token).ConfigureAwait(false);
        _resends = new RouteSubscription(this, _nats, ResendSubject(Config.NodeName), _queueGroup, "#", group: null, handOff: false);
        await _nats.AddSubAsync(_resends, _stop.Token).ConfigureAwait(false);
        _ = Task.Run(ListenConfirmationsAsync);
        _ = Task.Run(ConfirmLoopAsync);
        _ = Task.Run(StreamLoopAsync);
    }

    /// <summary>Queues a message for NATS; one that other nodes' plain filters want and whose acknowledgement waits
    /// gets the next number of each of those nodes (taken with its place in the queue, so numbers follow the order NATS
    /// gets them in).</summary>
    private void Enqueue(Message message, bool groupsServed, bool wanted)
    {
        if (wanted && message.QoS != Midge.Protocol.QoS.AtMostOnce && HoldsAcknowledgements && NodesWanting(message.Topic) is { } nodes)
        {
            long now = Environment.TickCount64;
            lock (_confirmGate)
            {
                var numbers = new Outstanding[nodes.Count];
                for (int i = 0; i < numbers.Length; i++)
                {
                    var stream = OutStreamOf(nodes[i]);
                    numbers[i] = new Outstanding(nodes[i], stream.Last + 1, message, now);
                }
                if (!_outbound.Writer.TryWrite((message, groupsServed, true, numbers)))
                {
                    Counters.OnDropped();
                    return;
                }
                foreach (var number in numbers)
                {
                    var stream = _outStreams[number.Node];
                    stream.Last = number.Seq;
                    stream.Unconfirmed.Enqueue(number);
                    if (stream.Unconfirmed.Count > StreamCapacity) stream.Unconfirmed.Dequeue();
                }
                _confirmationsAsked++;
                t_pending = new PendingConfirmation(this, numbers);
            }
            return;
        }
        if (!_outbound.Writer.TryWrite((message, groupsServed, wanted, null))) Counters.OnDropped();
    }

    private OutStream OutStreamOf(string node)
    {
        if (!_outStreams.TryGetValue(node, out var stream)) _outStreams[node] = stream = new OutStream();
        return stream;
    }

    /// <summary>The numbering a queued message crosses with, each number with its node's floor now (publish loop).</summary>
    private ClusterWire.Numbering? NumberingOf(Outstanding[]? numbers)
    {
        if (numbers is null) return null;
        var result = new ClusterWire.Number[numbers.Length];
        lock (_confirmGate)
        {
            for (int i = 0; i < numbers.Length; i++)
            {
                var n = numbers[i];
                result[i] = new ClusterWire.Number(n.Node, n.Seq, Math.Min(n.Seq, _outStreams[n.Node].Floor));
            }
        }
        return new ClusterWire.Numbering(Config.NodeName, _epoch, result);
    }

    /// <summary>Notes that a queued message went to NATS (the clock of sending it again starts).</summary>
    private static void Sent(Outstanding[]? numbers)
    {
        if (numbers is null) return;
        long now = Environment.TickCount64;
        foreach (var n in numbers) Volatile.Write(ref n.SentMs, now);
    }

    /// <summary>The other nodes whose plain filters held by persistent sessions match <paramref name="topic"/> (null:
    /// none): only their copies outlive a node's death, so only they are waited for.</summary>
    private List<string>? NodesWanting(string topic)
    {
        var collect = new CollectNodes();
        _wanted.Match(topic, ref collect);
        return collect.Nodes;
    }

    private struct CollectNodes : ISubscriptionVisitor<string, byte>
    {
        public List<string>? Nodes;

        public void OnSubscription(string subscriber, string filter, byte value)
        {
            if (value == 0) return;
            Nodes ??= [];
            if (!Nodes.Contains(subscriber)) Nodes.Add(subscriber);
        }

        public void OnSharedGroup(SharedGroup<string, byte> group)
        {
        }
    }

    /// <summary>Called first thing by the session store's flush, on the thread that routed the message an
    /// acknowledgement is for: what that acknowledgement must also wait for (null: nothing).</summary>
    internal Task? TakePendingConfirmation()
    {
        var pending = t_pending;
        if (pending is null || pending.Node != this) return null;
        t_pending = null;
        return Confirmed(pending) ? null : WaitConfirmedAsync(pending);
    }

    /// <summary>Whether every node the message went to has confirmed it, or is gone (a node not heard from for the
    /// heartbeat timeout, or NATS away: nobody can confirm).</summary>
    private bool Confirmed(PendingConfirmation pending)
    {
        if (!IsConnected) return true;
        var now = _broker.UtcNow;
        foreach (var number in pending.Numbers)
        {
            if (_confirmedBy.TryGetValue(number.Node, out long seq) && seq >= number.Seq) continue;
            if (_peers.TryGetValue(number.Node, out var peer) && !RunsNow(peer, now)) continue;
            return false;
        }
        return true;
    }

    private async Task WaitConfirmedAsync(PendingConfirmation pending)
    {
        long deadline = Environment.TickCount64 + (long)ConfirmWait.TotalMilliseconds;
        while (true)
        {
            var signal = Volatile.Read(ref _confirmSignal); // before the check: an answer swaps it after its write
            if (Confirmed(pending)) return;
            long left = deadline - Environment.TickCount64;
            try
            {
                if (left <= 0) throw new TimeoutException();
                await signal.Task.WaitAsync(TimeSpan.FromMilliseconds(left), _stop.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Counters.OnConfirmSlow();
                if (!_confirmSlowLogged) Log.ConfirmSlow(_log, string.Join(", ", pending.Numbers.Select(n => n.Node)), ConfirmWait.TotalSeconds);
                _confirmSlowLogged = true;
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Answers of the other nodes: "node\0run\0number", the highest number of this run up to which that node
    /// kept every message.</summary>
    private async Task ListenConfirmationsAsync()
    {
        try
        {
            await foreach (var msg in _confirmations!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                var parts = msg.Data is { Length: > 0 } data ? Encoding.UTF8.GetString(data).Split('\0') : [];
                if (parts.Length != 3 || parts[0].Length == 0
                    || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long epoch)
                    || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out long seq))
                {
                    Counters.OnMalformed();
                    continue;
                }
                if (epoch != _epoch) continue; // an answer to this node's previous run
                string node = parts[0];
                _confirmedBy.AddOrUpdate(node, seq, (_, old) => Math.Max(old, seq));
                lock (_confirmGate)
                {
                    if (_outStreams.TryGetValue(node, out var stream))
                    {
                        while (stream.Unconfirmed.TryPeek(out var head) && head.Seq <= seq) stream.Unconfirmed.Dequeue();
                    }
                }
                Interlocked.Exchange(ref _confirmSignal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Every <see cref="StreamTick"/>: sends again what a running node has not confirmed
    /// <see cref="ResendAfter"/> after it was sent, lets go of what is older than <see cref="HoldForMs"/>, and routes
    /// what waited behind a gap for longer than <see cref="GapWaitMs"/>.</summary>
    private async Task StreamLoopAsync()
    {
        using var timer = new PeriodicTimer(StreamTick);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                foreach (var (node, again) in DueForResend())
                {
                    foreach (var number in again)
                    {
                        buffer.ResetWrittenCount();
                        ClusterWire.Write(buffer, number.Message, _broker.NowMs, numbering: NumberingOf([number]));
                        if (!await PublishOrLogAsync(ResendSubject(node), buffer.WrittenMemory).ConfigureAwait(false)) break;
                        Counters.OnResent();
                    }
                }
                ReleaseStalledGaps();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private List<(string Node, List<Outstanding> Again)> DueForResend()
    {
        var due = new List<(string, List<Outstanding>)>();
        if (!IsConnected) return due;
        long now = Environment.TickCount64;
        var utcNow = _broker.UtcNow;
        lock (_confirmGate)
        {
            foreach (var (node, stream) in _outStreams)
            {
                var queue = stream.Unconfirmed;
                while (queue.TryPeek(out var head) && now - head.EnqueuedMs > HoldForMs) queue.Dequeue();
                if (!queue.TryPeek(out var oldest)) continue;
                long sent = Volatile.Read(ref oldest.SentMs);
                if (sent == 0 || now - sent < ResendAfter.TotalMilliseconds) continue; // still queued, or not due
                if (_peers.TryGetValue(node, out var peer) && !RunsNow(peer, utcNow)) continue;
                var again = new List<Outstanding>();
                foreach (var number in queue)
                {
                    if (again.Count == ResendBatch || Volatile.Read(ref number.SentMs) == 0) break;
                    Volatile.Write(ref number.SentMs, now);
                    again.Add(number);
                }
                due.Add((node, again));
            }
        }
        return due;
    }

    /// <summary>A message from another node, numbered for this one (on the connection's reader, in NATS's order; a
    /// message sent again comes the same way): routed in its node's order, once; what follows a gap waits for it.</summary>
    private void AcceptNumbered(ClusterWire.Numbering numbering, ClusterWire.Number number, Message message)
    {
        lock (_inStreams)
        {
            if (!_inStreams.TryGetValue(numbering.Origin, out var stream) || stream.Epoch != numbering.Epoch)
            {
                // The first from this run of that node: nothing below its floor will come again.
                _inStreams[numbering.Origin] = stream = new InStream(numbering.Epoch, number.Floor);
            }
            if (number.Floor > stream.Next) RouteHeld(stream, below: number.Floor); // the sender let those go
            if (number.Seq < stream.Next)
            {
                Counters.OnDuplicate();
            }
            else if (number.Seq == stream.Next)
            {
                _broker.RouteFromCluster(message);
                stream.Next++;
                RouteHeld(stream, below: stream.Next);
            }
            else if (stream.Held.Count < StreamCapacity && stream.HeldBytes + message.PayloadLength <= StreamHeldBytes)
            {
                if (stream.Held.TryAdd(number.Seq, message))
                {
                    if (stream.Held.Count == 1) stream.HeldSinceMs = Environment.TickCount64;
                    stream.HeldBytes += message.PayloadLength;
                }
            }
            else
            {
                // Too much waits behind the gap: give it up.
                RouteHeld(stream, below: number.Seq);
                _broker.RouteFromCluster(message);
                stream.Next = number.Seq + 1;
                RouteHeld(stream, below: stream.Next);
            }
            NoteToConfirm(numbering.Origin, numbering.Epoch, stream.Next - 1);
        }
    }

    /// <summary>Routes, in order, what <paramref name="stream"/> holds below <paramref name="below"/> (given up on the
    /// gaps among them), then what follows without a gap; <see cref="InStream.Next"/> moves past all of it.</summary>
    private void RouteHeld(InStream stream, long below)
    {
        if (stream.Next < below)
        {
            Counters.OnGapSkipped();
            stream.Next = below;
        }
        while (stream.Held.Count > 0)
        {
            var (seq, message) = stream.Held.First();
            if (seq >= stream.Next && seq != stream.Next) break;
            stream.Held.Remove(seq);
            stream.HeldBytes -= message.PayloadLength;
            if (seq == stream.Next) stream.Next++;
            _broker.RouteFromCluster(message);
        }
        if (stream.Held.Count > 0) stream.HeldSinceMs = Environment.TickCount64;
    }

    /// <summary>Routes what waited behind a gap for longer than <see cref="GapWaitMs"/>: what is missing is not coming.</summary>
    private void ReleaseStalledGaps()
    {
        long now = Environment.TickCount64;
        lock (_inStreams)
        {
            foreach (var (origin, stream) in _inStreams)
            {
                if (stream.Held.Count == 0 || now - stream.HeldSinceMs < GapWaitMs) continue;
                RouteHeld(stream, below: stream.Held.Keys.Max() + 1);
                NoteToConfirm(origin, stream.Epoch, stream.Next - 1);
            }
        }
    }

    /// <summary>Numbers up to <paramref name="seq"/> of <paramref name="node"/>'s run <paramref name="epoch"/> were
    /// routed here: to be confirmed once kept.</summary>
    private void NoteToConfirm(string node, long epoch, long seq)
    {
        lock (_toConfirm)
        {
            _toConfirm[node] = (epoch, seq);
            _toConfirmSignal.TrySetResult();
        }
    }

    /// <summary>Confirms, in batches: waits until what the routed messages changed is kept (the sessions bucket, and
    /// the node's own file), then tells each publishing node the highest number it has kept.</summary>
    private async Task ConfirmLoopAsync()
    {
        try
        {
            while (true)
            {
                Task signal;
                lock (_toConfirm) signal = _toConfirmSignal.Task;
                await signal.WaitAsync(_stop.Token).ConfigureAwait(false);
                List<KeyValuePair<string, (long Epoch, long Seq)>> batch;
                lock (_toConfirm)
                {
                    batch = [.. _toConfirm];
                    _toConfirm.Clear();
                    _toConfirmSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                if (_replica is { } replica) await replica.FlushKeptAsync(_stop.Token).ConfigureAwait(false);
                foreach (var (node, (epoch, seq)) in batch)
                {
                    var answer = string.Join('\0', Config.NodeName, epoch.ToString(CultureInfo.InvariantCulture), seq.ToString(CultureInfo.InvariantCulture));
                    await PublishOrLogAsync(ConfirmSubject(node), Encoding.UTF8.GetBytes(answer)).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1411, Level = LogLevel.Warning, Message = "Cluster: node(s) {Nodes} did not confirm keeping a message within {Seconds} s; acknowledging anyway (a node's death may lose what it did not keep)")]
        public static partial void ConfirmSlow(ILogger logger, string nodes, double seconds);
    }
}
