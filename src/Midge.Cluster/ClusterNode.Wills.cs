using System.Buffers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Midge.Core.Messages;
using Midge.Core.Sessions;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster;

// Wills of a dead node's clients (docs/cluster.md): each node keeps the wills of its connections in a JetStream
// key-value bucket while they are connected, and says it is alive in another bucket whose values lapse; a node whose
// liveness lapsed is dead, and another node publishes each of its wills, once: the one whose compare-and-set delete
// of the will's key succeeds.
public sealed partial class ClusterNode : IClusterWills
{
    /// <summary>How long a node's liveness lives unless renewed (every third of it): a dead node's wills go within this
    /// and one more renewal period.</summary>
    public static readonly TimeSpan AliveLease = TimeSpan.FromSeconds(15);

    /// <summary>Changes of wills that may wait for NATS; beyond, they are dropped (logged).</summary>
    public const int WillQueueCapacity = 65_536;

    private INatsKVStore? _wills, _alive;
    private Task? _willLoop;
    private readonly Channel<(string ClientId, object Connection, byte[]? Value)> _willChanges =
        Channel.CreateBounded<(string, object, byte[]?)>(new BoundedChannelOptions(WillQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });

    // The wills this node put: key -> (connection, revision); touched by the will loop only.
    private readonly Dictionary<string, (object Connection, ulong Revision)> _ownWills = new(StringComparer.Ordinal);

    // Every will in the bucket: key -> node, as the watch saw them; touched by the watch and the reaper (locked).
    private readonly Dictionary<string, string> _willNodes = new(StringComparer.Ordinal);

    private string WillsBucket => $"midge-{Config.Name}-wills";

    private string AliveBucket => $"midge-{Config.Name}-alive";

    private async Task StartWillsAsync()
    {
        _wills = await OpenBucketAsync(WillsBucket, "Midge: the wills of connected clients, by client id").ConfigureAwait(false);
        _alive = await OpenBucketAsync(AliveBucket, "Midge: the nodes alive", AliveLease).ConfigureAwait(false);
        if (_wills is null || _alive is null) return;
        try
        {
            await _alive.PutAsync(Config.NodeName, new byte[] { 1 }, cancellationToken: _stop.Token).ConfigureAwait(false);
        }
        catch (NatsException e)
        {
            // JetStream slow to answer (a leader being elected): the alive loop says it again within a third of the lease,
            // and the node must not stay out of the cluster for it.
            Log.PublishFailed(_log, e.Message);
        }
        _broker.ClusterWills = this;
        _willLoop = Task.Run(WillLoopAsync);
        _ = Task.Run(WatchWillsAsync);
        _ = Task.Run(AliveLoopAsync);
    }

    /// <summary>Whether this node knows of a will of <paramref name="clientId"/> in the bucket (for tests).</summary>
    internal bool KnowsWillOf(string clientId)
    {
        lock (_willNodes) return _willNodes.ContainsKey(OwnerKey(clientId));
    }

    /// <summary>Leaving cleanly: this node's connections' wills are its own to publish or discard (a clean stop discards
    /// them), so they leave the bucket, and so does its liveness.</summary>
    private async Task StopWillsAsync()
    {
        _willChanges.Writer.TryComplete();
        if (_willLoop is null) return;
        await _willLoop.ConfigureAwait(false);
        foreach (var (key, own) in _ownWills)
        {
            try
            {
                await _wills!.DeleteAsync(key, new NatsKVDeleteOpts { Revision = own.Revision }).ConfigureAwait(false);
            }
            catch (NatsKVWrongLastRevisionException)
            {
            }
        }
        await _alive!.DeleteAsync(Config.NodeName).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void WillSet(string clientId, object connection, Message will, uint delaySeconds)
    {
        var value = new ArrayBufferWriter<byte>(256);
        ClusterWire.WriteString(value, Config.NodeName);
        ClusterWire.WriteUInt32(value, delaySeconds);
        ClusterWire.Write(value, will, _broker.NowMs);
        if (!_willChanges.Writer.TryWrite((clientId, connection, value.WrittenSpan.ToArray())) && _broker.ClusterWills == this) Log.WillDropped(_log, clientId);
    }

    /// <summary>In a will's value in place of its delay: the will waits for a due time (the int64 that follows, Unix
    /// milliseconds): its connection has ended.</summary>
    private const uint DueFollows = uint.MaxValue;

    /// <inheritdoc/>
    public void WillDelayed(string clientId, object connection, Message will, DateTimeOffset dueAt)
    {
        var value = new ArrayBufferWriter<byte>(256);
        ClusterWire.WriteString(value, Config.NodeName);
        ClusterWire.WriteUInt32(value, DueFollows);
        ClusterWire.WriteInt64(value, dueAt.ToUnixTimeMilliseconds());
        ClusterWire.Write(value, will, _broker.NowMs);
        if (!_willChanges.Writer.TryWrite((clientId, connection, value.WrittenSpan.ToArray())) && _broker.ClusterWills == this) Log.WillDropped(_log, clientId);
    }

    /// <inheritdoc/>
    public void WillEnded(string clientId, object connection)
    {
        // Dropped only when the queue is full (logged) or the node is leaving (its wills leave the bucket).
        if (!_willChanges.Writer.TryWrite((clientId, connection, null)) && _broker.ClusterWills == this) Log.WillDropped(_log, clientId);
    }

    /// <summary>Puts and deletes this node's wills in order; a delete removes only the will its connection put (by
    /// revision: another node's put for the same client id stays).</summary>
    private async Task WillLoopAsync()
    {
        var reader = _willChanges.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var change))
                {
                    var key = OwnerKey(change.ClientId);
                    try
                    {
                        if (change.Value is { } value)
                        {
                            _ownWills[key] = (change.Connection, await _wills!.PutAsync(key, value, cancellationToken: _stop.Token).ConfigureAwait(false));
                        }
                        else if (_ownWills.TryGetValue(key, out var own) && own.Connection == change.Connection)
                        {
                            _ownWills.Remove(key);
                            await _wills!.DeleteAsync(key, new NatsKVDeleteOpts { Revision = own.Revision }, _stop.Token).ConfigureAwait(false);
                        }
                    }
                    catch (NatsKVWrongLastRevisionException)
                    {
                        // Another node put the client's will since: it is that node's now.
                    }
                    catch (NatsException e)
                    {
                        Log.PublishFailed(_log, e.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Keeps which node holds each will in the bucket (the node's name only). The watch outlives a NATS
    /// server's death (<see cref="WatchBucketAsync"/>).</summary>
    private Task WatchWillsAsync() => WatchBucketAsync(_wills!, entry =>
    {
        lock (_willNodes)
        {
            if (entry.Operation == NatsKVOperation.Put && entry.Value is { Length: > 0 } value && NodeOf(value) is { } node)
            {
                _willNodes[entry.Key] = node;
            }
            else
            {
                _willNodes.Remove(entry.Key);
            }
        }
    });

    /// <summary>The client id is back (claimed from <paramref name="owner"/>): a will of its that was to wait for its
    /// delay is not sent (MQTT-3.1.3-9). A live owner cancels its own when it hands the session over; this is for an
    /// owner that died, whose will would otherwise be published by some node when due. Deleted by revision: a will
    /// put since (the returning connection's own) stays.</summary>
    private async Task CancelDelayedWillAsync(string clientId, string owner)
    {
        if (_wills is null) return;
        var key = OwnerKey(clientId);
        try
        {
            var entry = await _wills.GetEntryAsync<byte[]>(key, cancellationToken: _stop.Token).ConfigureAwait(false);
            if (entry.Value is not { } value || NodeOf(value) != owner || !IsDelayed(value)) return;
            await _wills.DeleteAsync(key, new NatsKVDeleteOpts { Revision = entry.Revision }, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NatsException or OperationCanceledException)
        {
            // None, changed since, or NATS away: nothing to cancel here.
        }
    }

    /// <summary>Whether a will waits for a delay (its connection ended, or it has a Will Delay Interval).</summary>
    private static bool IsDelayed(byte[] value)
    {
        try
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(value));
            ClusterWire.ReadString(ref reader);
            return ClusterWire.ReadUInt32(ref reader) != 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>When a will whose connection ended is due (null: its connection was up, so it is due when its node
    /// dies).</summary>
    private static DateTimeOffset? DueOf(byte[] value)
    {
        try
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(value));
            ClusterWire.ReadString(ref reader);
            return ClusterWire.ReadUInt32(ref reader) == DueFollows ? DateTimeOffset.FromUnixTimeMilliseconds(ClusterWire.ReadInt64(ref reader)) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static string? NodeOf(byte[] value)
    {
        try
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(value));
            return ClusterWire.ReadString(ref reader);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Renews this node's liveness every third of <see cref="AliveLease"/>, and each time publishes the wills
    /// of the nodes whose liveness lapsed.</summary>
    private async Task AliveLoopAsync()
    {
        using var timer = new PeriodicTimer(AliveLease / 3);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await _alive!.PutAsync(Config.NodeName, new byte[] { 1 }, cancellationToken: _stop.Token).ConfigureAwait(false);
                    await PublishDeadNodesWillsAsync().ConfigureAwait(false);
                }
                catch (NatsException e)
                {
                    Log.PublishFailed(_log, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task PublishDeadNodesWillsAsync()
    {
        List<(string Key, string Node)> wills;
        lock (_willNodes) wills = [.. _willNodes.Where(w => w.Value != Config.NodeName).Select(w => (w.Key, w.Value))];
        var alive = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var (key, node) in wills)
        {
            if (!alive.TryGetValue(node, out bool isAlive)) alive[node] = isAlive = await IsAliveAsync(node).ConfigureAwait(false);
            if (isAlive) continue;
            NatsKVEntry<byte[]> entry;
            try
            {
                entry = await _wills!.GetEntryAsync<byte[]>(key, cancellationToken: _stop.Token).ConfigureAwait(false);
                if (entry.Value is not { } value || NodeOf(value) != node) continue; // changed since
                if (DueOf(value) > _broker.UtcNow) continue; // a will that waits for its delay: at a later look
                // Only the node whose delete succeeds publishes it: once, cluster-wide.
                await _wills.DeleteAsync(key, new NatsKVDeleteOpts { Revision = entry.Revision }, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NatsKVKeyNotFoundException or NatsKVKeyDeletedException or NatsKVWrongLastRevisionException)
            {
                continue;
            }
            try
            {
                var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(entry.Value));
                ClusterWire.ReadString(ref reader);
                if (ClusterWire.ReadUInt32(ref reader) == DueFollows) ClusterWire.ReadInt64(ref reader);
                var will = ClusterWire.Read(reader.UnreadSequence, _broker.NowMs);
                _broker.PublishForCluster(will);
                Log.DeadNodesWill(_log, will.OriginClientId ?? "", node);
            }
            catch (FormatException e)
            {
                Counters.OnMalformed();
                Log.Malformed(_log, e.Message);
            }
        }
    }

    private async Task<bool> IsAliveAsync(string node)
    {
        try
        {
            await _alive!.GetEntryAsync<byte[]>(node, cancellationToken: _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is NatsKVKeyNotFoundException or NatsKVKeyDeletedException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1421, Level = LogLevel.Warning, Message = "Cluster: the will of client {ClientId} could not be queued for the cluster; if this node dies, it is lost")]
        public static partial void WillDropped(ILogger logger, string clientId);

        [LoggerMessage(EventId = 1422, Level = LogLevel.Information, Message = "Cluster: published the will of client {ClientId} of node {Node}, which is gone")]
        public static partial void DeadNodesWill(ILogger logger, string clientId, string node);
    }
}
