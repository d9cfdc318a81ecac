using Midge.Config;
using Midge.Core.Protection;

namespace Midge.Core;

public sealed partial class Broker
{
    /// <summary>flapping_detect: connect counts and bans by client id.</summary>
    internal FlappingDetector Flapping { get; } = new();

    /// <summary>max_connection_rate as applied to CONNECT packets, per listener.</summary>
    internal ConnectRateLimits ConnectRates { get; } = new();

    /// <summary>Banned client ids, user names and addresses (the HTTP API's <c>/banned</c>, and flapping_detect's bans).</summary>
    public BanList Bans { get; } = new();

    private void SweepProtection(long now, BrokerConfig config)
    {
        Bans.Sweep(UtcNow);
        if (Flapping.Count > 0) Flapping.Sweep(now, config.Protection);
    }
}
