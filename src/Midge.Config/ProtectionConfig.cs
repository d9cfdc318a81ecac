using System.Net;
using System.Net.Sockets;

namespace Midge.Config;

/// <summary>
/// Connection protection of one listener (Midge's own options, not Mosquitto's): which addresses may connect,
/// how fast new connections are accepted, how many may be in the handshake at once and how long CONNECT may
/// take. Every limit is off by default. docs/configuration.md, "Rate limits and connection protection".
/// </summary>
public sealed record ListenerProtection
{
    /// <summary><c>max_connection_rate</c>: new connections per second; 0 = no limit.</summary>
    public int MaxConnectionRate { get; init; }
    /// <summary><c>max_pending_connections</c>: connections that have not completed CONNECT; 0 = no limit.</summary>
    public int MaxPendingConnections { get; init; }
    /// <summary><c>connect_timeout</c>: seconds a new connection has to send CONNECT (Midge's default 10).</summary>
    public int ConnectTimeoutSeconds { get; init; } = 10;
    /// <summary><c>allow_address</c>: when not empty, only these networks may connect.</summary>
    public IReadOnlyList<IPNetwork> AllowAddresses { get; init; } = [];
    /// <summary><c>deny_address</c>: these networks may not connect (deny wins over allow).</summary>
    public IReadOnlyList<IPNetwork> DenyAddresses { get; init; } = [];
    /// <summary><c>websockets_trusted_proxies</c>: peers of a WebSocket listener whose <c>X-Forwarded-For</c> header is
    /// believed; empty = the header is ignored.</summary>
    public IReadOnlyList<IPNetwork> TrustedProxies { get; init; } = [];

    /// <summary>Value equality, lists compared element by element (so a re-parsed configuration compares equal).</summary>
    public bool Equals(ListenerProtection? other) =>
        other is not null && MaxConnectionRate == other.MaxConnectionRate &&
        MaxPendingConnections == other.MaxPendingConnections && ConnectTimeoutSeconds == other.ConnectTimeoutSeconds &&
        AllowAddresses.SequenceEqual(other.AllowAddresses) && DenyAddresses.SequenceEqual(other.DenyAddresses) &&
        TrustedProxies.SequenceEqual(other.TrustedProxies);

    public override int GetHashCode() =>
        HashCode.Combine(MaxConnectionRate, MaxPendingConnections, ConnectTimeoutSeconds, AllowAddresses.Count, DenyAddresses.Count, TrustedProxies.Count);

    /// <summary>True when the allow/deny lists let <paramref name="address"/> in. IPv4-mapped IPv6 addresses
    /// (from dual-mode sockets) are matched as IPv4.</summary>
    public bool Admits(IPAddress address)
    {
        if (AllowAddresses.Count == 0 && DenyAddresses.Count == 0) return true;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var net in DenyAddresses)
        {
            if (net.Contains(address)) return false;
        }
        if (AllowAddresses.Count == 0) return true;
        foreach (var net in AllowAddresses)
        {
            if (net.Contains(address)) return true;
        }
        return false;
    }

    /// <summary>True when <paramref name="address"/> is one of <see cref="TrustedProxies"/> (IPv4-mapped as IPv4).</summary>
    public bool Trusts(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var net in TrustedProxies)
        {
            if (net.Contains(address)) return true;
        }
        return false;
    }

    /// <summary>Parses <c>ADDRESS[/PREFIX]</c> (IPv4 or IPv6); host bits below the prefix are cleared, so
    /// <c>127.0.0.1/8</c> means <c>127.0.0.0/8</c>. A bare address is one host.</summary>
    public static bool TryParseNetwork(string text, out IPNetwork network)
    {
        network = default;
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText, out var address)) return false;
        bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
        if (!v4 && address.ScopeId != 0) return false; // a zone (fe80::1%eth0) is not a network
        int bits = v4 ? 32 : 128;
        int prefix = bits;
        if (slash >= 0)
        {
            var p = text.AsSpan(slash + 1);
            if (p.Length is 0 or > 3 || !int.TryParse(p, System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out prefix) || prefix > bits)
            {
                return false;
            }
        }
        var bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(prefix - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF00 >> keep);
        }
        network = new IPNetwork(new IPAddress(bytes), prefix);
        return true;
    }
}

/// <summary>
/// Per-client limits of the whole broker (Midge's own options): publish rates, flapping detection and caps on
/// subscriptions and topic depth. Every limit is off by default.
/// </summary>
public sealed record ClientProtection
{
    /// <summary><c>max_publish_rate</c>: PUBLISH packets per second per client; 0 = no limit.</summary>
    public int MaxPublishRate { get; init; }
    /// <summary><c>max_publish_bytes_rate</c>: payload bytes per second per client; 0 = no limit.</summary>
    public long MaxPublishBytesRate { get; init; }
    /// <summary><c>publish_rate_disconnect_after</c>: a client refused at least once in every second for this
    /// many seconds is disconnected; 0 = never.</summary>
    public int PublishRateDisconnectAfterSeconds { get; init; } = 5;

    /// <summary><c>flapping_detect</c>: ban client ids that connect too often.</summary>
    public bool FlappingDetect { get; init; }
    /// <summary><c>flapping_max_connects</c>: connects allowed within the window (EMQX's default 15).</summary>
    public int FlappingMaxConnects { get; init; } = 15;
    /// <summary><c>flapping_window</c>: seconds (EMQX's default 1 minute).</summary>
    public int FlappingWindowSeconds { get; init; } = 60;
    /// <summary><c>flapping_ban_time</c>: seconds (EMQX's default 5 minutes).</summary>
    public int FlappingBanTimeSeconds { get; init; } = 300;

    /// <summary><c>max_subscriptions_per_client</c>: 0 = no limit.</summary>
    public int MaxSubscriptionsPerClient { get; init; }
    /// <summary><c>max_topic_levels</c>: deepest topic name or filter; 0 = no limit. The default is Mosquitto's
    /// fixed limit (<see cref="DefaultMaxTopicLevels"/>): a filter of tens of thousands of levels would
    /// otherwise cost a node per level in the routing index.</summary>
    public int MaxTopicLevels { get; init; } = DefaultMaxTopicLevels;

    public const int DefaultMaxTopicLevels = 200;
}
