using Midge.Core;

namespace Midge.Hosting;

/// <summary>
/// Gives memory back to the system once the broker is quiet again. A flood (a subscriber that stopped reading while
/// publishers sent hundreds of megabytes, say) leaves the collector's heap large: the messages dropped or freed are
/// garbage that no collection comes for while nothing allocates, so the process keeps the memory although it holds
/// nothing. Checked once a second by the heartbeat: when no more than <see cref="QuietBytesPerSecond"/> moved for two
/// seconds and the heap's committed memory is <see cref="Slack"/> above what it was after the last trim, one full,
/// compacting collection runs and returns the free memory to the system. It runs only in quiet moments, so its pause
/// (milliseconds for a small heap, tens for a few hundred megabytes) falls on no traffic; a heap that is large because the broker
/// holds that much (retained messages, queues) is not collected again until it grows by the slack once more.
/// </summary>
internal sealed class MemoryTrim(Broker broker)
{
    /// <summary>Growth of committed memory, over the level after the last trim, that is worth a collection.</summary>
    public const long Slack = 16L * 1024 * 1024;

    /// <summary>Bytes in and out per second below which the broker counts as quiet.</summary>
    public const long QuietBytesPerSecond = 1024 * 1024;

    private long _baseline = GC.GetGCMemoryInfo().TotalCommittedBytes;
    private long _lastBytes;
    private int _quietSeconds;

    /// <summary>Called once a second; true when it collected.</summary>
    public bool Tick()
    {
        long bytes = broker.Stats.BytesReceived + broker.Stats.BytesSent;
        bool quiet = bytes - _lastBytes <= QuietBytesPerSecond;
        _lastBytes = bytes;
        _quietSeconds = quiet ? _quietSeconds + 1 : 0;
        if (_quietSeconds < 2) return false;
        long committed = GC.GetGCMemoryInfo().TotalCommittedBytes;
        if (committed < _baseline)
        {
            _baseline = committed; // the collector gave memory back by itself
            return false;
        }
        if (committed - _baseline < Slack) return false;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _baseline = GC.GetGCMemoryInfo().TotalCommittedBytes;
        return true;
    }
}
