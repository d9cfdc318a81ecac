using Midge.Config;

namespace Midge.Bridges;

/// <summary>
/// How long a bridge waits before it connects again (<c>restart_timeout</c>): a constant, or "decorrelated jitter"
/// between the base and the cap (each wait drawn between the base and three times the last, capped), as Mosquitto
/// does. A successful connection starts again from the base.
/// </summary>
internal sealed class RestartDelay(BridgeConfig config, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;
    private double _last = config.RestartTimeoutBase;

    public TimeSpan Next()
    {
        if (config.RestartTimeoutCap is not { } cap) return TimeSpan.FromSeconds(config.RestartTimeoutBase);
        double low = config.RestartTimeoutBase;
        double high = Math.Max(low, _last * 3);
        _last = Math.Min(cap, low + (_random.NextDouble() * (high - low)));
        return TimeSpan.FromSeconds(_last);
    }

    public void Reset() => _last = config.RestartTimeoutBase;
}
