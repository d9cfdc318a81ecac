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

        public ListenerProtection BuildProtection() => new()
        {
            MaxConnectionRate = MaxConnectionRate,
            MaxPendingConnections = MaxPendingConnections,
            ConnectTimeoutSeconds = ConnectTimeoutSeconds,
            AllowAddresses = [.. AllowAddresses],
            DenyAddresses = [.. DenyAddresses],
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
