using Midge.Core;

namespace Midge.Hosting;

/// <summary>
/// Gives memory back to the system once the broker is idle again. A flood (a subscriber that stopped reading while
/// publishers sent hundreds of megabytes, say) leaves the collector's heap large: the messages dropped or freed are
/// garbage that no collection comes for while little is allocated, so the process keeps the memory although it
/// holds nothing. Checked once a second by the heartbeat: when no more than <see cref="IdleBytesPerSecond"/> moved
/// for <see cref="IdleSeconds"/> seconds and the heap's committed memory is <see cref="Slack"/> above its level after
/// the last trim (or at start), one full, compacting collection runs and returns the free memory to the system; at
/// most one every <see cref="MinIntervalSeconds"/> seconds. Its pause (milliseconds for a small heap) therefore falls
/// on an idle broker, never on traffic (the latency benchmark's 5,000 messages a second are far above the threshold).
/// </summary>
internal sealed class MemoryTrim(Broker broker)
{
    /// <summary>Growth of committed memory over its level after the last trim that is worth a collection.</summary>
    public const long Slack = 16L * 1024 * 1024;

    /// <summary>Bytes in and out per second below which the broker counts as idle (keep-alives, a few messages).</summary>
    public const long IdleBytesPerSecond = 16 * 1024;

    public const int IdleSeconds = 2, MinIntervalSeconds = 30;

    private long _baseline = GC.GetGCMemoryInfo().TotalCommittedBytes;
    private int _ticks;
    private int _lastTrimTick = -MinIntervalSeconds;
    private long _lastBytes;
    private int _idleSeconds;

    /// <summary>Called once a second; true when it collected.</summary>
    public bool Tick()
    {
        int tick = ++_ticks;
        long bytes = broker.Stats.BytesReceived + broker.Stats.BytesSent;
        _idleSeconds = bytes - _lastBytes <= IdleBytesPerSecond ? _idleSeconds + 1 : 0;
        _lastBytes = bytes;
        if (_idleSeconds < IdleSeconds || tick - _lastTrimTick < MinIntervalSeconds) return false;
        long committed = GC.GetGCMemoryInfo().TotalCommittedBytes;
        if (committed - _baseline < Slack)
        {
            if (committed < _baseline) _baseline = committed; // the collector gave memory back by itself
            return false;
        }
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _lastTrimTick = tick;
        _baseline = GC.GetGCMemoryInfo().TotalCommittedBytes;
        return true;
    }
}
