using Midge.Config;
using Midge.Core.Protection;

namespace Midge.Core;

public sealed partial class Broker
{
    /// <summary>flapping_detect: connect counts and bans by client id.</summary>
    internal FlappingDetector Flapping { get; } = new();

    /// <summary>max_connection_rate as applied to CONNECT packets, per listener.</summary>
    internal ConnectRateLimits ConnectRates { get; } = new();

    private void SweepProtection(long now, BrokerConfig config)
    {
        if (Flapping.Count > 0) Flapping.Sweep(now, config.Protection);
    }
}
