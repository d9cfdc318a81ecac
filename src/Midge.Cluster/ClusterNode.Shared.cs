using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Midge.Core.Messages;
using NATS.Client.Core;

namespace Midge.Cluster;

// Shared subscriptions across nodes (docs/cluster.md): each shared group is subscribed in NATS, by every node holding
// it, with a queue group of its own, so NATS hands each message to one of those nodes, which gives it to one member.
// A message for a group with no member online on its node is handed on to another node of the group, by request.
public sealed partial class ClusterNode
{
    /// <summary>Messages of shared groups that may wait to be handed on to another node; beyond, the group's queue on
    /// this node keeps them.</summary>
    public const int HandOffCapacity = 4_096;

    /// <summary>How long handing one message on may wait for the other node's answer before this node's group keeps
    /// it (the other node may have taken it meanwhile: then it is delivered twice, at least once).</summary>
    public static readonly TimeSpan HandOffWait = TimeSpan.FromSeconds(2);

    private static readonly byte[] Taken = [1], NotTaken = [0];

    private readonly Channel<(Message Message, string Filter, string Group)> _handOffs =
        Channel.CreateBounded<(Message, string, string)>(new BoundedChannelOptions(HandOffCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });

    /// <inheritdoc/>
    /// <remarks>Yes once joined and while both connections are up, for a topic NATS can carry (not <c>$SYS/</c>,
    /// not too long for a subject): the message then reaches each group through NATS, this node's groups included
    /// (through the second connection, which receives what the first publishes).</remarks>
    public bool TakesSharedGroups(Message message) =>
        _joined.Task.IsCompleted && BothConnected && !message.Topic.StartsWith("$SYS/", StringComparison.Ordinal) &&
        Subjects.Fits(_prefix, message.Topic);

    /// <summary>The NATS queue group of a shared group, the same on every node: a digest of <c>$share/{group}/{filter}</c>
    /// (a group name has no <c>/</c>, so no two groups give the same text), bounded in length whatever the filter. The
    /// group's hand-on subject is this and <c>.handoff</c>.</summary>
    internal string SharedQueueGroup(string filter, string group) =>
        _prefix + ".share." + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(InterestKey(filter, group))), 0, 16);

    /// <inheritdoc/>
    public bool HandOffShared(Message message, string filter, string group) =>
        _joined.Task.IsCompleted && BothConnected && _handOffs.Writer.TryWrite((message, filter, group));

    /// <summary>Hands each message on, in order, by request on the group's hand-on subject, which the other nodes of the
    /// group subscribe to on their first connection (NATS chooses one; never this node, whose first connection does not
    /// receive what it publishes). No answer, or "not taken": this node's group keeps it.</summary>
    private async Task HandOffLoopAsync()
    {
        var reader = _handOffs.Reader;
        var buffer = new ArrayBufferWriter<byte>(1024);
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    if (await HandOnAsync(buffer, item.Message, item.Filter, item.Group).ConfigureAwait(false))
                    {
                        Counters.OnHandedOff();
                    }
                    else if (await QueueInClusterAsync(buffer, item.Message, item.Filter, item.Group).ConfigureAwait(false))
                    {
                        // in the cluster's queue of the group (or refused there, as a full queue refuses it)
                    }
                    else if (!_broker.SharedFromCluster(item.Message, item.Filter, item.Group, mayHandOff: false))
                    {
                        Counters.OnDropped(); // nobody took it, and the group has gone from this node too
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task<bool> HandOnAsync(ArrayBufferWriter<byte> buffer, Message message, string filter, string group)
    {
        if (!BothConnected) return false;
        buffer.ResetWrittenCount();
        ClusterWire.Write(buffer, message, _broker.NowMs);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(HandOffWait);
        try
        {
            var reply = await _nats.RequestAsync<byte[], byte[]>(SharedQueueGroup(filter, group) + ".handoff", buffer.WrittenMemory.ToArray(),
                cancellationToken: timeout.Token).ConfigureAwait(false);
            return reply.Data is [1];
        }
        catch (NatsNoRespondersException)
        {
            return false; // no other node holds the group
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            Log.HandOffSlow(_log, group, HandOffWait.TotalSeconds);
            return false;
        }
        catch (NatsException e)
        {
            Log.PublishFailed(_log, e.Message);
            return false;
        }
    }

    /// <summary>A message another node handed on to this node's group (on the connection's reader): to one member
    /// online here, answered "taken"; with none (or the group gone from this node), "not taken", and the other node
    /// queues it in the cluster's queue of the group.</summary>
    private void OnHandedOn(in ReadOnlySequence<byte> payload, string? replyTo, string filter, string group)
    {
        bool taken = false;
        try
        {
            var message = ClusterWire.Read(payload, _broker.NowMs);
            Counters.OnReceived();
            taken = _broker.SharedToOnlineMember(message, filter, group);
        }
        catch (FormatException e)
        {
            Counters.OnMalformed();
            Log.Malformed(_log, e.Message);
        }
        if (replyTo is not null) _ = ReplyAsync(replyTo, taken ? Taken : NotTaken);
    }

    private async Task ReplyAsync(string replyTo, byte[] answer)
    {
        try
        {
            await _nats.PublishAsync(replyTo, answer, cancellationToken: _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NatsException or OperationCanceledException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1408, Level = LogLevel.Warning, Message = "Cluster: handing a message of shared group {Group} to another node took longer than {Seconds} s; this node's group keeps it")]
        public static partial void HandOffSlow(ILogger logger, string group, double seconds);
    }
}
