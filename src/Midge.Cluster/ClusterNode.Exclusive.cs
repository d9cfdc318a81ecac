using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster;

// $exclusive/ subscriptions across the cluster (docs/cluster.md): the holder of each filter is a key of a JetStream
// key-value bucket, changed only by compare-and-set, and kept by its node as a lease: renewed while held, gone with the
// node when it dies.
public sealed partial class ClusterNode
{
    /// <summary>How long a claim lives in the bucket unless its node renews it (every third of it): a dead node's
    /// claims go within this.</summary>
    public static readonly TimeSpan ExclusiveLease = TimeSpan.FromSeconds(30);

    private INatsKVStore? _exclusive;

    // The claims this node holds: key -> (client id, the revision it last wrote).
    private readonly ConcurrentDictionary<string, (string ClientId, ulong Revision)> _heldExclusive = new(StringComparer.Ordinal);

    /// <summary>The bucket of <c>$exclusive/</c> holders: <c>midge-{cluster}-exclusive</c>.</summary>
    private string ExclusiveBucket => $"midge-{Config.Name}-exclusive";

    /// <summary>A claim's value: the node, a line feed, the client id (a client id is one client cluster-wide: the
    /// node lets a release delete its own claim only).</summary>
    private string ExclusiveValue(string clientId) => Config.NodeName + "\n" + clientId;

    private async Task StartExclusiveAsync()
    {
        _exclusive = await OpenBucketAsync(ExclusiveBucket, "Midge: the client holding each $exclusive/ filter", ExclusiveLease)
            .ConfigureAwait(false);
        if (_exclusive is not null) _ = Task.Run(RenewExclusiveAsync);
    }

    /// <inheritdoc/>
    public async ValueTask<bool> ClaimExclusiveAsync(string filter, string clientId)
    {
        if (_exclusive is not { } bucket || !IsConnected) return true;
        var key = RetainedKey(filter);
        var value = Encoding.UTF8.GetBytes(ExclusiveValue(clientId));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(ClaimTimeout);
        try
        {
            for (int attempt = 0; attempt < 8; attempt++)
            {
                ulong revision;
                try
                {
                    var entry = await bucket.GetEntryAsync<byte[]>(key, cancellationToken: timeout.Token).ConfigureAwait(false);
                    var holder = entry.Value is { } v ? Encoding.UTF8.GetString(v) : "";
                    if (holder[(holder.IndexOf('\n') + 1)..] != clientId) return false; // another client holds it
                    revision = await bucket.UpdateAsync(key, value, entry.Revision, cancellationToken: timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NatsKVKeyNotFoundException or NatsKVKeyDeletedException)
                {
                    try
                    {
                        revision = await bucket.CreateAsync(key, value, cancellationToken: timeout.Token).ConfigureAwait(false);
                    }
                    catch (NatsKVCreateException)
                    {
                        continue; // another node claimed it meanwhile: look again
                    }
                }
                catch (NatsKVWrongLastRevisionException)
                {
                    continue;
                }
                _heldExclusive[key] = (clientId, revision);
                return true;
            }
            Log.ExclusiveUnsettled(_log, filter);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or NATS.Client.Core.NatsException)
        {
            if (!_stop.IsCancellationRequested) Log.ExclusiveUnsettled(_log, filter);
            return true;
        }
    }

    /// <summary>Whether this node holds the cluster-wide claim of <paramref name="filter"/> (for tests).</summary>
    internal bool HoldsExclusive(string filter) => _heldExclusive.ContainsKey(RetainedKey(filter));

    /// <inheritdoc/>
    public void ReleaseExclusive(string filter, string clientId)
    {
        var key = RetainedKey(filter);
        if (!_heldExclusive.TryGetValue(key, out var held) || held.ClientId != clientId) return;
        if (!_heldExclusive.TryRemove(new KeyValuePair<string, (string, ulong)>(key, held))) return;
        _ = DeleteExclusiveAsync(key, held.Revision);
    }

    /// <summary>Deletes this node's claim, unless it changed since (another node took the client id and the claim).</summary>
    private async Task DeleteExclusiveAsync(string key, ulong revision)
    {
        if (_exclusive is not { } bucket) return;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(ClaimTimeout);
        try
        {
            await bucket.DeleteAsync(key, new NatsKVDeleteOpts { Revision = revision }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or NATS.Client.Core.NatsException)
        {
            // Changed meanwhile, or NATS away: the lease ends it.
        }
    }

    /// <summary>Renews every claim this node holds, every third of <see cref="ExclusiveLease"/>, by compare-and-set: a
    /// claim that changed meanwhile (taken by another node after a lapse) is no longer this node's (logged).</summary>
    private async Task RenewExclusiveAsync()
    {
        using var timer = new PeriodicTimer(ExclusiveLease / 3);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                foreach (var (key, held) in _heldExclusive)
                {
                    try
                    {
                        var revision = await _exclusive!.UpdateAsync(key, Encoding.UTF8.GetBytes(ExclusiveValue(held.ClientId)), held.Revision,
                            cancellationToken: _stop.Token).ConfigureAwait(false);
                        _heldExclusive.TryUpdate(key, (held.ClientId, revision), held);
                    }
                    catch (NatsKVWrongLastRevisionException)
                    {
                        _heldExclusive.TryRemove(new KeyValuePair<string, (string, ulong)>(key, held));
                        Log.ExclusiveLost(_log, held.ClientId);
                    }
                    catch (NATS.Client.Core.NatsException)
                    {
                        // NATS away: tried again at the next tick.
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1418, Level = LogLevel.Warning, Message = "Cluster: could not settle the $exclusive/ claim of {Filter} across the cluster in time; this node decides alone")]
        public static partial void ExclusiveUnsettled(ILogger logger, string filter);

        [LoggerMessage(EventId = 1419, Level = LogLevel.Warning, Message = "Cluster: client {ClientId} lost an $exclusive/ claim across the cluster (its lease lapsed and another client took it)")]
        public static partial void ExclusiveLost(ILogger logger, string clientId);
    }
}
