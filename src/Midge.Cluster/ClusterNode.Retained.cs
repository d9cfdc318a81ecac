using System.Buffers;
using Midge.Core.Messages;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster;

// Cluster-wide retained messages (docs/cluster.md): a JetStream key-value bucket holds the last retained message of
// every topic; every node watches all of it and keeps the whole set in its own retained store, so a subscription on
// any node is answered from memory, one lookup for a wildcard, as on one broker.
public sealed partial class ClusterNode
{
    private INatsKVStore? _retained;
    private readonly TaskCompletionSource _retainedLoaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once this node holds every retained message the cluster held when it joined (or when the
    /// cluster has no retained bucket: no JetStream).</summary>
    public Task RetainedLoaded => _retainedLoaded.Task;

    /// <summary>The bucket of retained messages: <c>midge-{cluster}-retained</c>.</summary>
    private string RetainedBucket => $"midge-{Config.Name}-retained";

    /// <summary>The bucket's key of a topic: its UTF-8 in base64url, or for a very long topic a SHA-256 of it (the
    /// value carries the topic).</summary>
    internal static string RetainedKey(string topic) => OwnerKey(topic);

    private async Task StartRetainedAsync()
    {
        _retained = await OpenBucketAsync(RetainedBucket, "Midge: the retained message of each topic").ConfigureAwait(false);
        if (_retained is null)
        {
            _retainedLoaded.TrySetResult();
            return;
        }
        try
        {
            var status = await _retained.GetStatusAsync(_stop.Token).ConfigureAwait(false);
            if (status.Info.State.Messages == 0) _retainedLoaded.TrySetResult();
        }
        catch (NatsException e)
        {
            // JetStream slow to answer: the watch says when the bucket is loaded; the node must not stay out for it.
            Log.PublishFailed(_log, e.Message);
        }
        _ = Task.Run(WatchRetainedAsync);
    }

    /// <summary>Applies every retained message of the bucket, in the bucket's order (the last one of a topic wins on
    /// every node), including this node's own: the bucket is the truth. The watch outlives a NATS server's death
    /// (<see cref="WatchBucketAsync"/>).</summary>
    private Task WatchRetainedAsync() => WatchBucketAsync(_retained!, entry =>
    {
        if (entry.Operation == NatsKVOperation.Put && entry.Value is { Length: > 0 } value)
        {
            try
            {
                var message = ClusterWire.Read(new ReadOnlySequence<byte>(value), _broker.NowMs);
                _broker.RetainFromCluster(Aged(message, entry.Created));
            }
            catch (FormatException e)
            {
                Counters.OnMalformed();
                Log.Malformed(_log, e.Message);
            }
        }
        if (entry.Delta == 0) _retainedLoaded.TrySetResult();
    });

    /// <summary>The message with its expiry counted from when it was put in the bucket, not from now.</summary>
    private Message Aged(Message message, DateTimeOffset put)
    {
        if (message.ExpiresAtMs == 0) return message;
        long elapsed = Math.Max(0, (long)(_broker.UtcNow - put).TotalMilliseconds);
        return new Message(message.Topic, message.Payload, message.QoS, message.Retain, message.Properties, message.OriginClientId,
            message.OriginUserName, Math.Max(1, message.ExpiresAtMs - elapsed));
    }

    /// <summary>Puts a retained message (or its clearing: an empty payload) in the bucket, in order with the messages
    /// the publish loop sends, without waiting for JetStream's acknowledgement.</summary>
    private ValueTask PutRetainedAsync(ReadOnlyMemory<byte> encoded, string topic) =>
        _retained is null
            ? ValueTask.CompletedTask
            : _nats.PublishAsync($"$KV.{RetainedBucket}.{RetainedKey(topic)}", encoded, cancellationToken: _stop.Token);
}
