namespace Midge.Core.Protection;

/// <summary>
/// A token bucket over the broker clock (milliseconds), refilled continuously at <c>rate</c> tokens a second up
/// to <c>burst</c>. Integer arithmetic in thousandths of a token, so a test that moves a manual clock by one
/// second gets exactly one second's worth back.
/// </summary>
/// <remarks>
/// Why not <c>System.Threading.RateLimiting.TokenBucketRateLimiter</c> here: its replenishment reads
/// <c>Stopwatch</c>, not the broker's <see cref="TimeProvider"/>, so channel tests driven by a manual clock
/// could not move it; and a per-client limiter object with its own timer or Tick-driven replenishment costs more
/// than two longs in the channel. The transport's per-listener socket rate, which needs no test clock, does use
/// it (Midge.Transport/ConnectionGuard.cs). Not thread-safe: one owner (a channel's read loop) or a lock.
/// </remarks>
internal struct TokenBucket
{
    private const long Unit = 1000;
    /// <summary>Longest gap worth computing; beyond it the bucket is simply full (and no product overflows).</summary>
    private const long MaxGapMs = 1_000_000;

    private readonly long _perSecond;
    private readonly long _burst;
    private long _tokens;
    private long _lastMs;

    public TokenBucket(long perSecond, long burst, long nowMs)
    {
        _perSecond = perSecond;
        _burst = burst * Unit;
        _tokens = _burst;
        _lastMs = nowMs;
    }

    /// <summary>False for a default (unconfigured) bucket.</summary>
    public readonly bool IsEnabled => _perSecond > 0;

    /// <summary>True when <paramref name="cost"/> tokens may be taken now: the bucket holds them, or it is full
    /// (so one item larger than the burst still passes once the bucket has refilled, leaving a debt).</summary>
    public bool CanTake(long cost, long nowMs)
    {
        Refill(nowMs);
        return _tokens >= cost * Unit || _tokens >= _burst;
    }

    public void Take(long cost) => _tokens -= cost * Unit;

    public bool TryTake(long cost, long nowMs)
    {
        if (!CanTake(cost, nowMs)) return false;
        Take(cost);
        return true;
    }

    private void Refill(long nowMs)
    {
        long gap = nowMs - _lastMs;
        if (gap <= 0) return;
        _lastMs = nowMs;
        _tokens = gap >= MaxGapMs ? _burst : Math.Min(_burst, _tokens + gap * _perSecond);
    }
}
