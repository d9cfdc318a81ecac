using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster;

// Watching a whole bucket for as long as the node is in the cluster (the retained messages, the wills): NATS.Net's
// watch makes its consumer again when the consumer's heartbeats stop (the NATS server holding it died), but only
// once: when JetStream cannot make it then (its leaders still being elected), the watch stays silent for good. So a
// node checks each watch, and makes it again when it fails or falls behind.
public sealed partial class ClusterNode
{
    /// <summary>How often a watch is checked against its bucket (a request to JetStream each time); a failed watch is made
    /// again after half of it.</summary>
    internal static readonly TimeSpan WatchCheck = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Hands every entry of <paramref name="bucket"/> to <paramref name="handle"/>, in the bucket's order, until the node
    /// leaves. The watch is made again, from the revision after the last one handled, when it fails or stalls
    /// (<see cref="WatchdogAsync"/>, every <see cref="WatchCheck"/>).
    /// </summary>
    private async Task WatchBucketAsync(INatsKVStore bucket, Action<NatsKVEntry<byte[]>> handle)
    {
        ulong handled = 0;
        while (!_stop.IsCancellationRequested)
        {
            using var watch = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var watchdog = WatchdogAsync(bucket, () => Interlocked.Read(ref handled), watch);
            try
            {
                var opts = handled == 0 ? null : new NatsKVWatchOpts { ResumeAtRevision = handled + 1 };
                await foreach (var entry in bucket.WatchAsync<byte[]>(">", opts: opts, cancellationToken: watch.Token).ConfigureAwait(false))
                {
                    handle(entry);
                    Interlocked.Exchange(ref handled, entry.Revision);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                Log.WatchStalled(_log, bucket.Bucket, Interlocked.Read(ref handled));
            }
            catch (NatsException e)
            {
                Log.WatchFailed(_log, bucket.Bucket, e.Message);
            }
            await watch.CancelAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);
            try
            {
                await Task.Delay(WatchCheck / 2, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Cancels <paramref name="watch"/> when it stalls: behind the bucket's last revision at one check, and
    /// not one entry further at the next (a long load that moves on is not a stall).</summary>
    private static async Task WatchdogAsync(INatsKVStore bucket, Func<ulong> handled, CancellationTokenSource watch)
    {
        ulong due = 0, before = handled();
        try
        {
            while (true)
            {
                await Task.Delay(WatchCheck, watch.Token).ConfigureAwait(false);
                ulong now = handled();
                if (due > 0 && now < due && now == before)
                {
                    await watch.CancelAsync().ConfigureAwait(false);
                    return;
                }
                before = now;
                try
                {
                    var status = await bucket.GetStatusAsync(watch.Token).ConfigureAwait(false);
                    ulong last = status.Info.State.LastSeq;
                    due = last > now ? last : 0;
                }
                catch (NatsException)
                {
                    due = 0; // JetStream unreachable now: the watch is judged at a later check
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1423, Level = LogLevel.Warning, Message = "Cluster: watching bucket {Bucket} failed: {Error}; watching again")]
        public static partial void WatchFailed(ILogger logger, string bucket, string error);

        [LoggerMessage(EventId = 1432, Level = LogLevel.Warning, Message = "Cluster: the watch of bucket {Bucket} stalled after revision {Revision}; watching again")]
        public static partial void WatchStalled(ILogger logger, string bucket, ulong revision);
    }
}
