using System.Net;

namespace Midge.Config;

// Midge's own rate-limit and connection-protection options, kept apart from Mosquitto's vocabulary.
// docs/configuration.md, "Rate limits and connection protection".
public static partial class ConfigParser
{
    private sealed partial class ListenerBuilder
    {
        public int MaxConnectionRate;
        public int MaxPendingConnections;
        public int ConnectTimeoutSeconds = 10;
        public readonly List<IPNetwork> AllowAddresses = [];
        public readonly List<IPNetwork> DenyAddresses = [];
        public readonly List<IPNetwork> TrustedProxies = [];
        public ConfigSource? TrustedProxiesSource;
        public int ProxyProtocol;

        public ListenerProtection BuildProtection() => new()
        {
            MaxConnectionRate = MaxConnectionRate,
            MaxPendingConnections = MaxPendingConnections,
            ConnectTimeoutSeconds = ConnectTimeoutSeconds,
            AllowAddresses = [.. AllowAddresses],
            DenyAddresses = [.. DenyAddresses],
            TrustedProxies = [.. TrustedProxies],
        };
    }

    private sealed partial class ParseState
    {
        /// <summary>Handles the protection options; false when <paramref name="line"/> is not one of them.</summary>
        private bool ApplyProtection(in Line line)
        {
            var p = _config.Protection;
            switch (line.Name)
            {
                // ---- listener ----
                case "max_connection_rate":
                    ListenerFor(line).MaxConnectionRate = (int)line.Integer(0, 1_000_000);
                    return true;
                case "max_pending_connections":
                    ListenerFor(line).MaxPendingConnections = (int)line.Integer(0, 1_000_000);
                    return true;
                case "connect_timeout":
                    ListenerFor(line).ConnectTimeoutSeconds = (int)line.Integer(1, 3600);
                    return true;
                case "allow_address":
                case "deny_address":
                {
                    var v = line.Token();
                    if (!ListenerProtection.TryParseNetwork(v, out var network))
                    {
                        Fail(line.Source, $"'{line.Name}' must be an IPv4 or IPv6 address with an optional /prefix " +
                            $"(such as 10.0.0.0/8 or fd00::/8), got '{v}'");
                    }
                    var l = ListenerFor(line);
                    (line.Name == "allow_address" ? l.AllowAddresses : l.DenyAddresses).Add(network);
                    return true;
                }
                case "enable_proxy_protocol":
                    // Mosquitto 2.1's option: the listener takes headers of this one version.
                    ListenerFor(line).ProxyProtocol = (int)line.Integer(1, 2, "must be 1 (PROXY protocol v1) or 2 (v2)");
                    return true;
                case "websockets_trusted_proxies":
                {
                    var tokens = line.Tokens();
                    if (tokens.Count == 0) Fail(line.Source, $"option '{line.Name}' needs a value");
                    var l = ListenerFor(line);
                    foreach (var v in tokens)
                    {
                        if (!ListenerProtection.TryParseNetwork(v, out var network))
                        {
                            Fail(line.Source, $"'{line.Name}' takes IPv4 or IPv6 addresses with an optional /prefix " +
                                $"(such as 10.0.0.0/8 127.0.0.1), got '{v}'");
                        }
                        l.TrustedProxies.Add(network);
                    }
                    l.TrustedProxiesSource ??= line.Source;
                    return true;
                }

                // ---- global, per client ----
                case "max_publish_rate":
                    _config = _config with { Protection = p with { MaxPublishRate = (int)line.Integer(0, 1_000_000) } };
                    return true;
                case "max_publish_bytes_rate":
                    _config = _config with { Protection = p with { MaxPublishBytesRate = line.Integer(0, 1L << 40) } };
                    return true;
                case "publish_rate_disconnect_after":
                    _config = _config with { Protection = p with { PublishRateDisconnectAfterSeconds = (int)line.Integer(0, 3600) } };
                    return true;
                case "flapping_detect":
                    _config = _config with { Protection = p with { FlappingDetect = line.Bool() } };
                    return true;
                case "flapping_max_connects":
                    _config = _config with { Protection = p with { FlappingMaxConnects = (int)line.Integer(1, 1_000_000) } };
                    return true;
                case "flapping_window":
                    _config = _config with { Protection = p with { FlappingWindowSeconds = (int)line.Integer(1, 86_400) } };
                    return true;
                case "flapping_ban_time":
                    _config = _config with { Protection = p with { FlappingBanTimeSeconds = (int)line.Integer(1, 31_536_000) } };
                    return true;
                case "max_subscriptions_per_client":
                    _config = _config with { Protection = p with { MaxSubscriptionsPerClient = (int)line.Integer(0, int.MaxValue) } };
                    return true;
                case "max_topic_levels":
                    _config = _config with { Protection = p with { MaxTopicLevels = (int)line.Integer(0, 65535) } };
                    return true;
            }
            return false;
        }
    }
}
