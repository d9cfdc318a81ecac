using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;
using Midge.Core.Messages;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Midge.Cluster;

// The cluster's queue of each shared group (docs/cluster.md, "Shared subscriptions"): a message for a group that no
// node can give to a member online now (none is, anywhere NATS could find) waits in a JetStream work-queue stream,
// midge-{cluster}-shared, on the group's subject {group's queue group}.q, instead of in one node's memory. It outlives
// any node, and whichever node has a member online takes it: a node drains the group's subject when one of its members
// comes online, and when another node says it queued one (on {group's queue group}.queued) while it has one online.
// Without JetStream, the group's queue on the node keeps the message, as on one broker.
public sealed partial class ClusterNode
{
    /// <summary>How many queued messages a node takes at a time while it drains a group.</summary>
    private const int DrainBatch = 64;

    /// <summary>How long a node waits before it tries again to drain a group whose drain failed (while a member of the
    /// group is online here).</summary>
    private static readonly TimeSpan DrainRetry = TimeSpan.FromSeconds(1);

    private INatsJSContext? _js;
    private bool _sharedQueue;
    private INatsSub<byte[]>? _queuedNotes;
    // The groups being drained now, and whether another drain was asked meanwhile: one entry per group, while it drains.
    private readonly Dictionary<string, bool> _drains = new(StringComparer.Ordinal);

    // The groups whose queue this node's last drain found empty, with no "queued" note heard since (by any node, for any
    // group) while it ran: a member coming online then costs no JetStream request. At most EmptyGroupsLimit entries
    // (beyond, all are forgotten: drains find out again); forgotten when NATS reconnects (a note may have been missed).
    private readonly HashSet<string> _emptyGroups = new(StringComparer.Ordinal);
    private long _queuedNotesHeard;
    private const int EmptyGroupsLimit = 10_000;

    /// <summary>The JetStream stream of the groups' queues: <c>midge-{cluster}-shared</c>.</summary>
    private string SharedStream => $"midge-{Config.Name}-shared";

    private string QueuedSubject(string filter, string group) => SharedQueueGroup(filter, group) + ".q";

    private string QueuedNoteSubject(string filter, string group) => SharedQueueGroup(filter, group) + ".queued";

    /// <summary>Opens (or makes) the groups' queue stream, bounded per group by <c>max_queued_messages</c> (a message
    /// beyond is refused, as one broker's full group queue refuses it), and listens for other nodes' "queued" notes;
    /// without JetStream the node's own group queues keep what waits.</summary>
    private async Task StartSharedQueueAsync()
    {
        _js = new NatsJSContext(_nats);
        int limit = _broker.Config.MaxQueuedMessages;
        var config = new StreamConfig(SharedStream, [$"{_prefix}.share.*.q"])
        {
            Description = "Midge: messages of shared groups with no member online, by group",
            Retention = StreamConfigRetention.Workqueue,
            Storage = StreamConfigStorage.File,
            NumReplicas = Config.Replicas,
            MaxMsgsPerSubject = limit > 0 ? limit : -1,
            Discard = limit > 0 ? StreamConfigDiscard.New : StreamConfigDiscard.Old,
            DiscardNewPerSubject = limit > 0,
        };
        var js = _js;
        var stream = await OpenJetStreamAsync(SharedStream, async ct => await js.CreateOrUpdateStreamAsync(config, ct).ConfigureAwait(false),
            e => Log.NoSharedQueue(_log, e)).ConfigureAwait(false);
        if (stream is null) return;
        _sharedQueue = true;
        _queuedNotes = await _nats.SubscribeCoreAsync<byte[]>($"{_prefix}.share.*.queued", cancellationToken: _stop.Token).ConfigureAwait(false);
        _ = Task.Run(ListenQueuedNotesAsync);
    }

    /// <summary>Puts a message for a group nobody could take into the group's queue in JetStream, and tells the nodes
    /// holding the group. True when it is kept there, or refused because the group's queue is full (dropped, logged, as
    /// on one broker); false when JetStream cannot take it now (the node's own group queue keeps it).</summary>
    private async Task<bool> QueueInClusterAsync(ArrayBufferWriter<byte> buffer, Message message, string filter, string group)
    {
        if (!_sharedQueue || _js is not { } js || !IsConnected) return false;
        buffer.ResetWrittenCount();
        ClusterWire.Write(buffer, message, _broker.NowMs);
        try
        {
            var ack = await js.PublishAsync(QueuedSubject(filter, group), buffer.WrittenMemory, cancellationToken: _stop.Token).ConfigureAwait(false);
            ack.EnsureSuccess();
        }
        catch (NatsJSApiException e)
        {
            Counters.OnDropped();
            Log.SharedQueueRefused(_log, group, e.Error.Description ?? e.Message);
            return true;
        }
        catch (NatsException e)
        {
            Log.PublishFailed(_log, e.Message);
            return false;
        }
        Counters.OnSharedQueued();
        MayHoldQueued(InterestKey(filter, group));
        await PublishOrLogAsync(QueuedNoteSubject(filter, group), Encoding.UTF8.GetBytes(InterestKey(filter, group))).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc/>
    public void SharedMemberOnline(string filter, string group)
    {
        if (!_sharedQueue) return;
        lock (_emptyGroups)
        {
            if (_emptyGroups.Contains(InterestKey(filter, group))) return;
        }
        Drain(filter, group);
    }

    /// <summary>Something may wait in the group's queue (queued by this node, or another node said so).</summary>
    private void MayHoldQueued(string key)
    {
        Interlocked.Increment(ref _queuedNotesHeard);
        lock (_emptyGroups) _emptyGroups.Remove(key);
    }

    /// <summary>NATS reconnected: a "queued" note may have been missed meanwhile.</summary>
    private void ForgetEmptyGroups()
    {
        Interlocked.Increment(ref _queuedNotesHeard);
        lock (_emptyGroups) _emptyGroups.Clear();
    }

    /// <summary>Another node queued a message for a group (the note carries it as <c>$share/{group}/{filter}</c>): this
    /// node drains the group when it has a member online.</summary>
    private async Task ListenQueuedNotesAsync()
    {
        try
        {
            await foreach (var msg in _queuedNotes!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (msg.Data is not { Length: > 0 } data || !Midge.Protocol.Topics.TryParseShared(Encoding.UTF8.GetString(data), out var group, out var filter))
                {
                    Counters.OnMalformed();
                    continue;
                }
                MayHoldQueued(InterestKey(filter, group));
                if (_broker.SharedGroupHasOnlineMember(filter, group)) Drain(filter, group);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Drains the group's queue in the background, one drain per group at a time (one asked meanwhile runs
    /// again after it).</summary>
    private void Drain(string filter, string group)
    {
        var key = InterestKey(filter, group);
        lock (_drains)
        {
            if (_drains.ContainsKey(key))
            {
                _drains[key] = true;
                return;
            }
            _drains[key] = false;
        }
        _ = Task.Run(async () =>
        {
            while (true)
            {
                while (!await DrainOnceAsync(filter, group).ConfigureAwait(false) && _broker.SharedGroupHasOnlineMember(filter, group))
                {
                    try
                    {
                        await Task.Delay(DrainRetry, _stop.Token).ConfigureAwait(false); // JetStream did not answer: again
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
                lock (_drains)
                {
                    if (!_drains[key])
                    {
                        _drains.Remove(key);
                        return;
                    }
                    _drains[key] = false;
                }
            }
        });
    }

    /// <summary>Takes the group's queued messages, in order, and gives each to a member online here, until the queue
    /// is empty or no member is online any more (what was taken and not given goes back). A message is acknowledged to
    /// JetStream once a member's session has it; one whose node died before that comes again after JetStream's ack
    /// wait (at least once). False when JetStream failed it.</summary>
    private async Task<bool> DrainOnceAsync(string filter, string group)
    {
        if (_js is not { } js) return true;
        long notesBefore = Interlocked.Read(ref _queuedNotesHeard);
        try
        {
            var consumer = await js.CreateOrUpdateConsumerAsync(SharedStream, new ConsumerConfig("q-" + SharedQueueGroup(filter, group).Replace('.', '-'))
            {
                FilterSubject = QueuedSubject(filter, group),
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = TimeSpan.FromSeconds(30),
                InactiveThreshold = TimeSpan.FromHours(1),
            }, _stop.Token).ConfigureAwait(false);
            while (_broker.SharedGroupHasOnlineMember(filter, group))
            {
                int fetched = 0;
                bool nobody = false;
                await foreach (var msg in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = DrainBatch }, cancellationToken: _stop.Token).ConfigureAwait(false))
                {
                    fetched++;
                    if (nobody)
                    {
                        await msg.NakAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                        continue;
                    }
                    Message message;
                    try
                    {
                        message = ClusterWire.Read(new ReadOnlySequence<byte>(msg.Data ?? []), _broker.NowMs);
                    }
                    catch (FormatException e)
                    {
                        Counters.OnMalformed();
                        Log.Malformed(_log, e.Message);
                        await msg.AckTerminateAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                        continue;
                    }
                    if (message.IsExpired(_broker.NowMs) || _broker.SharedToOnlineMember(message, filter, group))
                    {
                        await msg.AckAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                        Counters.OnSharedDequeued();
                    }
                    else
                    {
                        nobody = true;
                        await msg.NakAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                    }
                }
                if (fetched == 0 && Interlocked.Read(ref _queuedNotesHeard) == notesBefore)
                {
                    lock (_emptyGroups)
                    {
                        if (_emptyGroups.Count >= EmptyGroupsLimit) _emptyGroups.Clear();
                        _emptyGroups.Add(InterestKey(filter, group));
                    }
                }
                if (fetched == 0 || nobody) return true;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (NatsException e)
        {
            Log.SharedQueueDrainFailed(_log, group, e.Message);
            return false;
        }
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1434, Level = LogLevel.Warning, Message = "Cluster: no JetStream stream for the shared groups' queues ({Error}): a group's waiting messages stay on the node that has them")]
        public static partial void NoSharedQueue(ILogger logger, string error);

        [LoggerMessage(EventId = 1435, Level = LogLevel.Warning, Message = "Cluster: shared group {Group} has no member online and its queue refused a message: {Error}")]
        public static partial void SharedQueueRefused(ILogger logger, string group, string error);

        [LoggerMessage(EventId = 1436, Level = LogLevel.Warning, Message = "Cluster: taking the queued messages of shared group {Group} failed: {Error}; trying again every second while a member is online here")]
        public static partial void SharedQueueDrainFailed(ILogger logger, string group, string error);
    }
}
