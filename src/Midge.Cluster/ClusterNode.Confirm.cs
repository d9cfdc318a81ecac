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
// may miss, and what is acknowledged when"): with persistence_mode durable, a QoS 1 or 2 message that plain filters
// of other nodes' persistent sessions match (the nodes say which of their filters those are) crosses numbered (this node's number for it, in the order it publishes), each of those nodes
// routes it, waits until what that changed is in the cluster's sessions bucket (and its own file), and says so on
// midge.{cluster}.confirm.{publishing node} with the highest number it has kept, one answer for many messages. The
// PUBACK, PUBREC or PUBCOMP of the message waits for those answers (with this node's own flush), at most
// ConfirmWait: so a node that dies after the publisher heard "acknowledged" has its copy in the bucket.
public sealed partial class ClusterNode
{
    /// <summary>How long an acknowledgement may wait for the other nodes before it goes anyway (logged), as long as
    /// it may wait for this node's own writes.</summary>
    public static readonly TimeSpan ConfirmWait = SessionReplica.FlushWait;

    private readonly Lock _confirmGate = new();
    private long _confirmSeq;
    // The highest number each other node confirmed keeping: one entry per node that ever answered.
    private readonly ConcurrentDictionary<string, long> _confirmedBy = new(StringComparer.Ordinal);
    private TaskCompletionSource _confirmSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private INatsSub<byte[]>? _confirmations;
    private bool _confirmSlowLogged;

    // The receiving side: for each publishing node, the highest number routed here and not yet confirmed (one entry per
    // node; a batch of many messages from one node is one entry).
    private readonly Dictionary<string, long> _toConfirm = new(StringComparer.Ordinal);
    private TaskCompletionSource _toConfirmSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The message this thread routed last that waits for other nodes (the acknowledgement that follows on
    /// the same thread takes it).</summary>
    [ThreadStatic] private static PendingConfirmation? t_pending;

    private sealed record PendingConfirmation(ClusterNode Node, long Seq, List<string> Nodes);

    private string ConfirmSubject(string node) => $"{_prefix}.confirm.{node}";

    /// <summary>How many messages this node has sent asking for confirmation (tests).</summary>
    internal long ConfirmationsAsked => Volatile.Read(ref _confirmSeq);

    /// <summary>Whether acknowledgements wait for what they acknowledge to be kept (<c>persistence_mode durable</c>,
    /// the default).</summary>
    private bool HoldsAcknowledgements => _broker.Config.PersistenceMode == PersistenceMode.Durable;

    private async Task StartConfirmationsAsync()
    {
        _confirmations = await _nats.SubscribeCoreAsync<byte[]>(ConfirmSubject(Config.NodeName), cancellationToken: _stop.Token).ConfigureAwait(false);
        _ = Task.Run(ListenConfirmationsAsync);
        _ = Task.Run(ConfirmLoopAsync);
    }

    /// <summary>Queues a message for NATS; one that other nodes' plain filters want and whose acknowledgement waits
    /// gets the next number (taken with its place in the queue, so numbers follow the order NATS gets them in).</summary>
    private void Enqueue(Message message, bool groupsServed, bool wanted)
    {
        if (wanted && message.QoS != Midge.Protocol.QoS.AtMostOnce && HoldsAcknowledgements && NodesWanting(message.Topic) is { } nodes)
        {
            lock (_confirmGate)
            {
                long seq = _confirmSeq + 1;
                if (!_outbound.Writer.TryWrite((message, groupsServed, true, seq)))
                {
                    Counters.OnDropped();
                    return;
                }
                _confirmSeq = seq;
                t_pending = new PendingConfirmation(this, seq, nodes);
            }
            return;
        }
        if (!_outbound.Writer.TryWrite((message, groupsServed, wanted, 0))) Counters.OnDropped();
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
        foreach (var node in pending.Nodes)
        {
            if (_confirmedBy.TryGetValue(node, out long seq) && seq >= pending.Seq) continue;
            if (_peers.TryGetValue(node, out var peer) && !RunsNow(peer, now)) continue;
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
                if (!_confirmSlowLogged) Log.ConfirmSlow(_log, string.Join(", ", pending.Nodes), ConfirmWait.TotalSeconds);
                _confirmSlowLogged = true;
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task ListenConfirmationsAsync()
    {
        try
        {
            await foreach (var msg in _confirmations!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (msg.Data is not { Length: > 0 } data) continue;
                var text = Encoding.UTF8.GetString(data);
                int split = text.IndexOf('\0', StringComparison.Ordinal);
                if (split <= 0 || !long.TryParse(text.AsSpan(split + 1), NumberStyles.None, CultureInfo.InvariantCulture, out long seq))
                {
                    Counters.OnMalformed();
                    continue;
                }
                _confirmedBy.AddOrUpdate(text[..split], seq, (_, old) => Math.Max(old, seq));
                Interlocked.Exchange(ref _confirmSignal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>A numbered message from <paramref name="confirmation"/>'s node was routed here (on the connection's
    /// reader, in that node's order): to be confirmed once kept.</summary>
    private void NoteToConfirm(ClusterWire.Confirmation confirmation)
    {
        lock (_toConfirm)
        {
            _toConfirm[confirmation.Node] = confirmation.Seq;
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
                List<KeyValuePair<string, long>> batch;
                lock (_toConfirm)
                {
                    batch = [.. _toConfirm];
                    _toConfirm.Clear();
                    _toConfirmSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                if (_replica is { } replica) await replica.FlushKeptAsync(_stop.Token).ConfigureAwait(false);
                foreach (var (node, seq) in batch)
                {
                    await PublishOrLogAsync(ConfirmSubject(node), Encoding.UTF8.GetBytes($"{Config.NodeName}\0{seq.ToString(CultureInfo.InvariantCulture)}")).ConfigureAwait(false);
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
