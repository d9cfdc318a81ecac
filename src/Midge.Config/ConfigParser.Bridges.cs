using System.Globalization;
using System.Security.Authentication;

namespace Midge.Config;

// Bridges: Mosquitto's `connection` blocks. A `connection` line starts a bridge and every bridge option after it
// belongs to that bridge until the next `connection` (as in Mosquitto; other options in between keep their usual
// scope). docs/bridges.md lists every option.
public static partial class ConfigParser
{
    /// <summary>Bridge options .NET's TLS stack cannot honour; they fail, naming the reason.</summary>
    public static IReadOnlyDictionary<string, string> UnsupportedBridgeOptions { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bridge_identity"] = ".NET's TLS stack has no TLS-PSK; use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)",
        ["bridge_psk"] = ".NET's TLS stack has no TLS-PSK; use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)",
    };

    /// <summary>A bridge while it is being read.</summary>
    private sealed class BridgeBuilder
    {
        public required string Name;
        public ConfigSource Source;
        public List<BridgeAddress>? Addresses;
        public ConfigSource? AddressSource;
        public readonly List<BridgeTopic> Topics = [];
        public readonly Dictionary<string, ConfigSource> Seen = new(StringComparer.Ordinal);
        public int ProtocolVersion = 4;
        public bool TryPrivate = true;
        public bool CleanSession;
        public bool? LocalCleanSession;
        public string? RemoteClientId, LocalClientId, RemoteUsername, RemotePassword, LocalUsername, LocalPassword;
        public ConfigSource? RemotePasswordSource;
        public int KeepaliveInterval = 60;
        public int IdleTimeout = 60;
        public BridgeStartType StartType = BridgeStartType.Automatic;
        public int Threshold = 10;
        public int RestartBase = 5;
        public int? RestartCap = 30;
        public bool RoundRobin;
        public bool Notifications = true;
        public bool NotificationsLocalOnly;
        public string? NotificationTopic;
        public bool AttemptUnsubscribe = true;
        public bool OutgoingRetain = true;
        public int MaxPacketSize;
        public string? BindAddress;
        public int ReceiveMaximum;
        public uint? SessionExpiryInterval;
        public int MaxTopicAlias = 10;
        public string? CaFile, CaPath, CertFile, KeyFile, Alpn;
        public ConfigSource? CertFileSource, KeyFileSource, TlsSource;
        public bool Insecure, RequireOcsp;
        public SslProtocols TlsProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
    }

    private sealed partial class ParseState
    {
        private readonly List<BridgeBuilder> _bridges = [];
        private BridgeBuilder? _bridge;

        /// <summary>Handles a bridge option; false when <paramref name="line"/> is not one.</summary>
        private bool ApplyBridge(in Line line)
        {
            if (UnsupportedBridgeOptions.TryGetValue(line.Name, out var why))
            {
                Fail(line.Source, $"option '{line.Name}' is not supported: {why}");
            }
            if (line.Name == "connection")
            {
                var name = line.Token();
                foreach (var other in _bridges)
                {
                    if (other.Name == name) Fail(line.Source, $"bridge '{name}' is already defined at {other.Source}");
                }
                _bridge = new BridgeBuilder { Name = name, Source = line.Source };
                _bridges.Add(_bridge);
                return true;
            }
            if (!IsBridgeOption(line.Name)) return false;
            var b = _bridge ?? Fail<BridgeBuilder>(line.Source, $"'{line.Name}' needs a 'connection' line before it (bridge options belong to a bridge)");
            switch (line.Name)
            {
                case "address":
                case "addresses":
                    if (b.AddressSource is { } first) Fail(line.Source, $"duplicate '{line.Name}' in bridge '{b.Name}' (already set at {first})");
                    b.AddressSource = line.Source;
                    b.Addresses = ParseAddresses(line);
                    return true;
                case "topic":
                    b.Topics.Add(ParseTopic(line));
                    return true;
                case "bridge_protocol_version":
                    b.ProtocolVersion = line.Token() switch
                    {
                        "mqttv31" => 3,
                        "mqttv311" => 4,
                        "mqttv50" => 5,
                        var v => Fail<int>(line.Source, $"'bridge_protocol_version' must be mqttv31, mqttv311 or mqttv50, got '{v}'"),
                    };
                    return true;
                case "try_private": b.TryPrivate = line.Bool(); return true;
                case "cleansession": b.CleanSession = line.Bool(); return true;
                case "local_cleansession": b.LocalCleanSession = line.Bool(); return true;
                case "remote_clientid":
                case "clientid":
                    b.RemoteClientId = Once(b, line, "remote_clientid", line.Token());
                    return true;
                case "local_clientid": b.LocalClientId = Once(b, line, line.Name, line.Token()); return true;
                case "remote_username":
                case "username":
                    b.RemoteUsername = Once(b, line, "remote_username", line.Text());
                    return true;
                case "remote_password":
                case "password":
                    b.RemotePassword = Once(b, line, "remote_password", line.Text());
                    b.RemotePasswordSource = line.Source;
                    return true;
                case "local_username": b.LocalUsername = Once(b, line, line.Name, line.Text()); return true;
                case "local_password": b.LocalPassword = Once(b, line, line.Name, line.Text()); return true;
                case "keepalive_interval":
                    b.KeepaliveInterval = (int)line.Integer(5, 65535, "must be between 5 and 65535 seconds");
                    return true;
                case "idle_timeout": b.IdleTimeout = (int)line.Integer(1, int.MaxValue, "must be at least 1 second"); return true;
                case "start_type":
                    b.StartType = line.Token() switch
                    {
                        "automatic" => BridgeStartType.Automatic,
                        "lazy" => BridgeStartType.Lazy,
                        "once" => BridgeStartType.Once,
                        var v => Fail<BridgeStartType>(line.Source, $"'start_type' must be automatic, lazy or once, got '{v}'"),
                    };
                    return true;
                case "threshold": b.Threshold = (int)line.Integer(1, int.MaxValue, "must be at least 1 message"); return true;
                case "restart_timeout":
                {
                    var tokens = line.Tokens();
                    if (tokens.Count is 0 or > 2) Fail(line.Source, "'restart_timeout' takes a constant, or a base and a cap (seconds)");
                    b.RestartBase = RestartSeconds(line, tokens[0]);
                    b.RestartCap = tokens.Count == 2 ? RestartSeconds(line, tokens[1]) : null;
                    if (b.RestartCap < b.RestartBase) Fail(line.Source, $"'restart_timeout' cap ({b.RestartCap}) is below its base ({b.RestartBase})");
                    return true;
                }
                case "round_robin": b.RoundRobin = line.Bool(); return true;
                case "notifications": b.Notifications = line.Bool(); return true;
                case "notifications_local_only": b.NotificationsLocalOnly = line.Bool(); return true;
                case "notification_topic":
                {
                    var t = Once(b, line, line.Name, line.Text());
                    if (!IsTopicName(t)) Fail(line.Source, $"'notification_topic' must be a topic name without wildcards, got '{t}'");
                    b.NotificationTopic = t;
                    return true;
                }
                case "bridge_attempt_unsubscribe": b.AttemptUnsubscribe = line.Bool(); return true;
                case "bridge_outgoing_retain": b.OutgoingRetain = line.Bool(); return true;
                case "bridge_max_packet_size": b.MaxPacketSize = (int)line.Integer(0, int.MaxValue); return true;
                case "bridge_bind_address": b.BindAddress = Once(b, line, line.Name, line.Token()); return true;
                case "bridge_receive_maximum": b.ReceiveMaximum = (int)line.Integer(1, 65535); return true;
                case "bridge_session_expiry_interval": b.SessionExpiryInterval = (uint)line.Integer(0, uint.MaxValue); return true;
                case "bridge_max_topic_alias": b.MaxTopicAlias = (int)line.Integer(0, 65535); return true;
                case "bridge_cafile": b.CaFile = Once(b, line, line.Name, line.Text()); b.TlsSource ??= line.Source; return true;
                case "bridge_capath": b.CaPath = Once(b, line, line.Name, line.Text()); b.TlsSource ??= line.Source; return true;
                case "bridge_certfile":
                    b.CertFile = Once(b, line, line.Name, line.Text());
                    b.CertFileSource = line.Source;
                    return true;
                case "bridge_keyfile":
                    b.KeyFile = Once(b, line, line.Name, line.Text());
                    b.KeyFileSource = line.Source;
                    return true;
                case "bridge_insecure": b.Insecure = line.Bool(); return true;
                case "bridge_require_ocsp": b.RequireOcsp = line.Bool(); return true;
                case "bridge_alpn": b.Alpn = Once(b, line, line.Name, line.Token()); return true;
                case "bridge_tls_version":
                {
                    var v = line.Token();
                    b.TlsProtocols = v switch
                    {
                        "tlsv1.3" => SslProtocols.Tls13,
                        "tlsv1.2" or "tlsv1.1" => SslProtocols.Tls12 | SslProtocols.Tls13,
                        _ => Fail<SslProtocols>(line.Source, $"'bridge_tls_version' must be tlsv1.3, tlsv1.2 or tlsv1.1, got '{v}'"),
                    };
                    if (v == "tlsv1.1") Notice(line, "'bridge_tls_version tlsv1.1': TLS 1.1 is not offered by .NET; TLS 1.2 and 1.3 are");
                    return true;
                }
            }
            return false;
        }

        private static bool IsBridgeOption(string name) => name is "address" or "addresses" or "topic" or "bridge_protocol_version"
            or "try_private" or "cleansession" or "local_cleansession" or "remote_clientid" or "clientid" or "local_clientid"
            or "remote_username" or "username" or "remote_password" or "password" or "local_username" or "local_password"
            or "keepalive_interval" or "idle_timeout" or "start_type" or "threshold" or "restart_timeout" or "round_robin"
            or "notifications" or "notifications_local_only" or "notification_topic" or "bridge_attempt_unsubscribe"
            or "bridge_outgoing_retain" or "bridge_max_packet_size" or "bridge_bind_address" or "bridge_receive_maximum"
            or "bridge_session_expiry_interval" or "bridge_max_topic_alias" or "bridge_cafile" or "bridge_capath"
            or "bridge_certfile" or "bridge_keyfile" or "bridge_insecure" or "bridge_require_ocsp" or "bridge_alpn"
            or "bridge_tls_version";

        private static int RestartSeconds(in Line line, string t)
        {
            var n = line.ParseInteger(t);
            if (n < 1 || n > 86_400) Fail(line.Source, $"'restart_timeout' values must be between 1 and 86400 seconds, got '{t}'");
            return (int)n;
        }

        private static string Once(BridgeBuilder b, in Line line, string key, string value)
        {
            if (b.Seen.TryGetValue(key, out var first)) Fail(line.Source, $"duplicate '{line.Name}' in bridge '{b.Name}' (already set at {first})");
            b.Seen[key] = line.Source;
            return value;
        }

        private static List<BridgeAddress> ParseAddresses(in Line line)
        {
            var tokens = line.Tokens();
            if (tokens.Count == 0) Fail(line.Source, $"option '{line.Name}' needs at least one host[:port]");
            var list = new List<BridgeAddress>(tokens.Count);
            foreach (var t in tokens)
            {
                string host = t;
                int port = 1883;
                if (t.StartsWith('['))
                {
                    int close = t.IndexOf(']', StringComparison.Ordinal);
                    if (close < 0) Fail(line.Source, $"'{line.Name}': '{t}' has no closing ']'");
                    host = t[1..close];
                    var rest = t[(close + 1)..];
                    if (rest.Length > 0)
                    {
                        if (rest[0] != ':') Fail(line.Source, $"'{line.Name}': '{t}' must be [address]:port");
                        port = Port(line, t, rest[1..]);
                    }
                }
                else
                {
                    // As in Mosquitto, the port follows the last colon (an IPv6 address needs its port).
                    int colon = t.LastIndexOf(':');
                    if (colon == 0) Fail(line.Source, $"'{line.Name}': '{t}' has no host");
                    if (colon > 0)
                    {
                        host = t[..colon];
                        port = Port(line, t, t[(colon + 1)..]);
                    }
                }
                list.Add(new BridgeAddress(host, port));
            }
            return list;
        }

        private static int Port(in Line line, string token, string text)
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                Fail(line.Source, $"'{line.Name}': the port of '{token}' must be between 1 and 65535");
            }
            return port;
        }

        private static BridgeTopic ParseTopic(in Line line)
        {
            // '#' is a pattern here, not the start of a comment; a comment may follow the fifth value.
            var tokens = line.Rest.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToList();
            if (tokens.Count > 5 && tokens[5][0] == '#') tokens.RemoveRange(5, tokens.Count - 5);
            if (tokens.Count is 0 or > 5)
            {
                Fail(line.Source, "'topic' takes: pattern [[[out|in|both] qos-level] local-prefix remote-prefix]");
            }
            static string Unquote(string s) => s == "\"\"" ? "" : s;
            var pattern = Unquote(tokens[0]);
            var direction = BridgeDirection.Out;
            int qos = 0;
            if (tokens.Count > 1)
            {
                direction = tokens[1] switch
                {
                    "out" => BridgeDirection.Out,
                    "in" => BridgeDirection.In,
                    "both" => BridgeDirection.Both,
                    var v => Fail<BridgeDirection>(line.Source, $"'topic' direction must be out, in or both, got '{v}'"),
                };
            }
            if (tokens.Count > 2)
            {
                qos = tokens[2] switch
                {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    var v => Fail<int>(line.Source, $"'topic' QoS must be 0, 1 or 2, got '{v}'"),
                };
            }
            string local = tokens.Count > 3 ? Unquote(tokens[3]) : "";
            string remote = tokens.Count > 4 ? Unquote(tokens[4]) : "";
            if (pattern.Length == 0 && (local.Length == 0 || remote.Length == 0))
            {
                Fail(line.Source, "'topic \"\"' (an empty pattern) needs both a local and a remote prefix: they are the topics on each side");
            }
            foreach (var (what, prefix) in new[] { ("local prefix", local), ("remote prefix", remote) })
            {
                if (prefix.AsSpan().IndexOfAny('+', '#') >= 0) Fail(line.Source, $"'topic' {what} must not contain the wildcards + or #, got '{prefix}'");
            }
            var t = new BridgeTopic
            {
                Pattern = pattern,
                Direction = direction,
                QoS = qos,
                LocalPrefix = local,
                RemotePrefix = remote,
                Source = line.Source,
            };
            if (!IsTopicFilter(t.LocalFilter)) Fail(line.Source, $"'topic': '{t.LocalFilter}' is not a valid topic filter");
            if (!IsTopicFilter(t.RemoteFilter)) Fail(line.Source, $"'topic': '{t.RemoteFilter}' is not a valid topic filter");
            return t;
        }

        /// <summary>MQTT's filter rules: '#' alone as the last level, '+' alone in its level, not empty.</summary>
        private static bool IsTopicFilter(string filter)
        {
            if (filter.Length == 0 || filter.Contains('\0', StringComparison.Ordinal)) return false;
            var levels = filter.Split('/');
            for (int i = 0; i < levels.Length; i++)
            {
                var level = levels[i];
                if (level.Contains('#', StringComparison.Ordinal) && (level != "#" || i != levels.Length - 1)) return false;
                if (level.Contains('+', StringComparison.Ordinal) && level != "+") return false;
            }
            return true;
        }

        private static bool IsTopicName(string topic) => topic.Length > 0 && topic.AsSpan().IndexOfAny('+', '#', '\0') < 0;

        private IReadOnlyList<BridgeConfig> BuildBridges()
        {
            var list = new List<BridgeConfig>(_bridges.Count);
            string? host = null;
            foreach (var b in _bridges)
            {
                if (b.Addresses is null) Fail(b.Source, $"bridge '{b.Name}' needs an 'address' line");
                if (b.RemotePassword is not null && b.RemoteUsername is null)
                {
                    Fail(b.RemotePasswordSource!.Value, $"'remote_password' in bridge '{b.Name}' needs 'remote_username'");
                }
                if (b.LocalPassword is not null && b.LocalUsername is null)
                {
                    Fail(b.Seen["local_password"], $"'local_password' in bridge '{b.Name}' needs 'local_username'");
                }
                if (b.Topics.Count == 0)
                {
                    _notices.Add(new ConfigNotice(b.Source, $"bridge '{b.Name}' has no 'topic' line: it connects but carries no message"));
                }
                BridgeTlsConfig? tls = null;
                if (b.CaFile is not null || b.CaPath is not null || b.CertFile is not null || b.KeyFile is not null)
                {
                    if (b.CaFile is null && b.CaPath is null)
                    {
                        Fail(b.CertFileSource ?? b.KeyFileSource ?? b.Source, $"TLS in bridge '{b.Name}' needs 'bridge_cafile' or 'bridge_capath'");
                    }
                    if ((b.CertFile is null) != (b.KeyFile is null))
                    {
                        Fail(b.CertFileSource ?? b.KeyFileSource!.Value, $"'bridge_certfile' and 'bridge_keyfile' in bridge '{b.Name}' go together");
                    }
                    tls = new BridgeTlsConfig
                    {
                        CaFile = b.CaFile,
                        CaPath = b.CaPath,
                        CertFile = b.CertFile,
                        KeyFile = b.KeyFile,
                        Insecure = b.Insecure,
                        Protocols = b.TlsProtocols,
                        Alpn = b.Alpn,
                        RequireOcsp = b.RequireOcsp,
                    };
                }
                host ??= System.Net.Dns.GetHostName();
                var remoteId = b.RemoteClientId ?? $"{host}.{b.Name}";
                list.Add(new BridgeConfig
                {
                    Name = b.Name,
                    Source = b.Source,
                    Addresses = b.Addresses!,
                    Topics = [.. b.Topics],
                    ProtocolVersion = b.ProtocolVersion,
                    TryPrivate = b.TryPrivate,
                    CleanSession = b.CleanSession,
                    LocalCleanSession = b.LocalCleanSession ?? b.CleanSession,
                    RemoteClientId = remoteId,
                    LocalClientId = b.LocalClientId ?? "local." + remoteId,
                    RemoteUsername = b.RemoteUsername,
                    RemotePassword = b.RemotePassword,
                    LocalUsername = b.LocalUsername,
                    LocalPassword = b.LocalPassword,
                    KeepaliveInterval = b.KeepaliveInterval,
                    IdleTimeout = b.IdleTimeout,
                    StartType = b.StartType,
                    Threshold = b.Threshold,
                    RestartTimeoutBase = b.RestartBase,
                    RestartTimeoutCap = b.RestartCap,
                    RoundRobin = b.RoundRobin,
                    Notifications = b.Notifications,
                    NotificationsLocalOnly = b.NotificationsLocalOnly,
                    NotificationTopic = b.NotificationTopic ?? $"$SYS/broker/connection/{remoteId}/state",
                    AttemptUnsubscribe = b.AttemptUnsubscribe,
                    OutgoingRetain = b.OutgoingRetain,
                    MaxPacketSize = b.MaxPacketSize,
                    BindAddress = b.BindAddress,
                    ReceiveMaximum = b.ReceiveMaximum,
                    SessionExpiryInterval = b.SessionExpiryInterval,
                    MaxTopicAlias = b.MaxTopicAlias,
                    Tls = tls,
                });
            }
            return list;
        }
    }
}
