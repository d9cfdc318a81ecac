using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Midge.Config;

/// <summary>Reads a mosquitto.conf (Mosquitto 2.0 grammar) into a <see cref="BrokerConfig"/>.</summary>
/// <remarks>
/// Pure and repeatable: nothing is cached between calls and nothing outside the files is touched, so a reload
/// (SIGHUP) can parse again and compare. The vocabulary, defaults and quirks are Mosquitto 2.0's; where Midge is
/// stricter (malformed numbers, extra values) the error names the file and line. docs/configuration.md lists
/// every option.
/// </remarks>
public static partial class ConfigParser
{
    /// <summary>Largest MQTT payload, Mosquitto's upper bound for message_size_limit.</summary>
    public const int MaxPayload = 268_435_455;

    /// <summary>Parses the file, following include_dir. Throws <see cref="ConfigException"/> with file:line.</summary>
    public static BrokerConfig ParseFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var state = new ParseState(Path.GetFullPath(path));
        state.ReadFile(path, level: 0, includedAt: null);
        return state.Build();
    }

    /// <summary>Parses text as if read from <paramref name="fileName"/> (relative include_dir paths resolve
    /// against <paramref name="baseDirectory"/>).</summary>
    public static BrokerConfig Parse(string text, string fileName = "<config>", string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        baseDirectory ??= DirectoryOf(fileName);
        var state = new ParseState(mainFullPath: null);
        state.ReadText(text, fileName, baseDirectory, level: 0);
        return state.Build();
    }

    private static string DirectoryOf(string file)
    {
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(file));
            return string.IsNullOrEmpty(dir) ? Directory.GetCurrentDirectory() : dir;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return Directory.GetCurrentDirectory();
        }
    }

    /// <summary>One configuration line: the option name and what follows it.</summary>
    private readonly struct Line(string name, string rest, ConfigSource source)
    {
        public string Name { get; } = name;
        /// <summary>Everything after the name, trimmed.</summary>
        public string Rest { get; } = rest;
        public ConfigSource Source { get; } = source;

        /// <summary>The value tokens; a token starting with '#' and all after it are a trailing comment.</summary>
        public List<string> Tokens()
        {
            var list = new List<string>();
            foreach (var t in Rest.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (t[0] == '#')
                {
                    break;
                }
                list.Add(t);
            }
            return list;
        }

        /// <summary>Exactly one value token.</summary>
        public string Token()
        {
            var tokens = Tokens();
            if (tokens.Count == 0)
            {
                Fail(Source, $"option '{Name}' needs a value");
            }
            if (tokens.Count > 1)
            {
                Fail(Source, $"option '{Name}' takes a single value, got extra '{tokens[1]}'");
            }
            return tokens[0];
        }

        /// <summary>The rest of the line as one value (paths and formats may contain spaces).</summary>
        public string Text()
        {
            if (Rest.Length == 0)
            {
                Fail(Source, $"option '{Name}' needs a value");
            }
            return Rest;
        }

        /// <summary>true/false (and 1/0, which Mosquitto's parser also takes).</summary>
        public bool Bool()
        {
            var v = Token();
            return v switch
            {
                "true" or "1" => true,
                "false" or "0" => false,
                _ => Fail<bool>(Source, $"'{Name}' must be true or false, got '{v}'"),
            };
        }

        public long Integer(long min, long max, string? rangeMessage = null)
        {
            var v = Token();
            var n = ParseInteger(v);
            if (n < min || n > max)
            {
                Fail(Source, rangeMessage is null
                    ? $"'{Name}' must be between {min} and {max}, got '{v}'"
                    : $"'{Name}' {rangeMessage}, got '{v}'");
            }
            return n;
        }

        public long ParseInteger(string v)
        {
            if (!long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
            {
                Fail(Source, $"'{Name}' must be an integer, got '{v}'");
            }
            return n;
        }
    }

    [DoesNotReturn]
    private static void Fail(ConfigSource source, string message) => throw new ConfigException(source, message);

    private static SharedSubscriptionStrategy ParseStrategy(in Line line, string word) => word switch
    {
        "round_robin" => SharedSubscriptionStrategy.RoundRobin,
        "random" => SharedSubscriptionStrategy.Random,
        "sticky" => SharedSubscriptionStrategy.Sticky,
        "hash_clientid" => SharedSubscriptionStrategy.HashClientId,
        "hash_topic" => SharedSubscriptionStrategy.HashTopic,
        "local" => SharedSubscriptionStrategy.Local,
        _ => Fail<SharedSubscriptionStrategy>(line.Source,
            $"'{line.Name}' strategy must be round_robin, random, sticky, hash_clientid, hash_topic or local, got '{word}'"),
    };

    [DoesNotReturn]
    private static T Fail<T>(ConfigSource source, string message) => throw new ConfigException(source, message);

    /// <summary>The value of the line's single word among <paramref name="choices"/>; anything else fails, saying which
    /// words it may be (<paramref name="expected"/>).</summary>
    private static T OneOf<T>(in Line line, string expected, params (string Word, T Value)[] choices)
    {
        var v = line.Token();
        foreach (var (word, value) in choices)
        {
            if (v == word) return value;
        }
        return Fail<T>(line.Source, $"'{line.Name}' must be {expected}, got '{v}'");
    }

    /// <summary>A listener while it is being read; the default listener is one of these too.</summary>
    private sealed partial class ListenerBuilder
    {
        public int Port = 1883;
        public string? BindAddress;
        public string? UnixSocketPath;
        public string? BindInterface;
        public SocketDomain SocketDomain = SocketDomain.Any;
        public ListenerProtocol Protocol = ListenerProtocol.Mqtt;
        public string? HttpDir;
        public ConfigSource? HttpDirSource;
        public bool ApiAllowAnonymous;
        public ConfigSource? ApiAllowAnonymousSource;
        public int MaxConnections = -1;
        public int MaxQoS = 2;
        public ushort MaxTopicAlias = 10;
        public string? MountPoint;
        public bool UseUsernameAsClientId;
        public bool? AllowAnonymous;
        public bool AllowZeroLengthClientId = true;
        public string? AutoIdPrefix;
        public string? PasswordFile;
        public string? AclFile;
        public string? ServerReference;
        public bool ServerMoved;
        public ConfigSource Source;
        /// <summary>First line that set an option on this listener (used for the default listener).</summary>
        public ConfigSource? FirstOption;
        public string? FirstOptionName;

        public void Touch(in Line line)
        {
            if (FirstOption is null)
            {
                FirstOption = line.Source;
                FirstOptionName = line.Name;
            }
        }
    }

    private sealed partial class ParseState(string? mainFullPath)
    {
        private BrokerConfig _config = new();
        private readonly List<ListenerBuilder> _listeners = [];
        private readonly ListenerBuilder _defaultListener = new();
        private ListenerBuilder? _current;
        private readonly List<ConfigNotice> _notices = [];
        private readonly List<string> _files = [];
        /// <summary>Single-valued string options already set, by scope and name, for "duplicate" errors.</summary>
        private readonly Dictionary<(object Scope, string Name), ConfigSource> _setOnce = [];
        private static readonly object GlobalScope = new();

        private bool _localOnly = true;
        private ConfigSource? _portSource;
        private ConfigSource? _bindAddressSource;
        private ConfigSource? _firstSecurityOption;
        private bool _perListener;

        private readonly List<LogDestination> _logDest = [];
        private bool _logDestSet;
        private LogTypes _logTypes;
        private bool _logTypesSet;

        public void ReadFile(string path, int level, ConfigSource? includedAt)
        {
            var where = includedAt ?? new ConfigSource(path, 0);
            if (Directory.Exists(path))
            {
                Fail(where, $"configuration file '{path}' is a directory");
            }
            string text;
            try
            {
                text = File.ReadAllText(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException
                                          or ArgumentException)
            {
                Fail(where, $"cannot read configuration file '{path}': {e.Message}");
                return;
            }
            ReadText(text, path, DirectoryOf(path), level);
        }

        public void ReadText(string text, string fileName, string baseDirectory, int level)
        {
            // As in Mosquitto, every file starts outside any listener block: listener options at the top of an
            // included file apply to the default listener, and the including file resumes its own block after.
            var outer = _current;
            _current = _defaultListener;
            _files.Add(fileName);
            var lineNo = 0;
            foreach (var raw in text.Split('\n'))
            {
                lineNo++;
                var s = raw.Trim(' ', '\t', '\r', '\f', '\v');
                if (s.Length == 0 || s[0] == '#')
                {
                    continue;
                }
                var cut = s.AsSpan().IndexOfAny(' ', '\t');
                var name = cut < 0 ? s : s[..cut];
                var rest = cut < 0 ? "" : s[(cut + 1)..].Trim(' ', '\t');
                Apply(new Line(name, rest, new ConfigSource(fileName, lineNo)), baseDirectory, level);
            }
            _current = outer ?? _defaultListener;
        }

        private void Notice(in Line line, string message) => _notices.Add(new ConfigNotice(line.Source, message));

        private string SetOnce(object scope, in Line line, string value)
        {
            if (_setOnce.TryGetValue((scope, line.Name), out var first))
            {
                Fail(line.Source, $"duplicate '{line.Name}' (already set at {first})");
            }
            _setOnce[(scope, line.Name)] = line.Source;
            return value;
        }

        /// <summary>The listener that listener options apply to: the current one, or the default listener
        /// before any <c>listener</c> line (as Mosquitto does).</summary>
        private ListenerBuilder ListenerFor(in Line line)
        {
            var l = _current ?? _defaultListener;
            l.Touch(line);
            return l;
        }

        /// <summary>Where a security option goes: the current listener with per_listener_settings, otherwise
        /// global (null).</summary>
        private ListenerBuilder? SecurityTarget(in Line line)
        {
            _firstSecurityOption ??= line.Source;
            if (!_perListener)
            {
                return null;
            }
            return ListenerFor(line);
        }

        private void Apply(in Line line, string baseDirectory, int level)
        {
            if (ApplyTls(line)) return; // ConfigParser.Tls.cs
            if (ApplyBridge(line)) return; // ConfigParser.Bridges.cs
            if (ApplyCluster(line, baseDirectory)) return; // ConfigParser.Cluster.cs
            switch (line.Name)
            {
                // ---- listeners ----
                case "listener":
                    StartListener(line);
                    return;
                case "port":
                {
                    Notice(line, "'port' is deprecated; use 'listener' instead");
                    _localOnly = false;
                    var port = (int)line.Integer(1, 65535);
                    if (_portSource is { } earlier)
                    {
                        Notice(line, $"default listener port given again (first at {earlier}); only the last is used");
                    }
                    _portSource = line.Source;
                    _defaultListener.Port = port;
                    return;
                }
                case "bind_address":
                    Notice(line, "'bind_address' is deprecated; use 'listener PORT ADDRESS' instead");
                    _localOnly = false;
                    _defaultListener.BindAddress = SetOnce(_defaultListener, line, line.Text());
                    _bindAddressSource ??= line.Source;
                    return;
                case "bind_interface":
                {
                    var l = ListenerFor(line);
                    l.BindInterface = SetOnce(l, line, line.Text());
                    return;
                }
                case "max_connections":
                {
                    var l = ListenerFor(line);
                    var n = line.Integer(long.MinValue, int.MaxValue, $"must be at most {int.MaxValue}");
                    l.MaxConnections = n < 0 ? -1 : (int)n;
                    return;
                }
                case "max_qos":
                case "maximum_qos":
                    ListenerFor(line).MaxQoS = (int)line.Integer(0, 2, "must be 0, 1 or 2");
                    return;
                case "max_topic_alias":
                    ListenerFor(line).MaxTopicAlias = (ushort)line.Integer(0, 65535);
                    return;
                case "mount_point":
                {
                    if (_listeners.Count == 0)
                    {
                        Fail(line.Source, "'mount_point' needs a 'listener' line before it");
                    }
                    var value = line.Text();
                    if (value.AsSpan().IndexOfAny('+', '#') >= 0)
                    {
                        Fail(line.Source, $"'mount_point' must not contain the wildcards + or #, got '{value}'");
                    }
                    var l = ListenerFor(line);
                    l.MountPoint = SetOnce(l, line, value);
                    return;
                }
                case "protocol":
                {
                    var v = line.Token();
                    var l = ListenerFor(line);
                    l.Protocol = v switch
                    {
                        "mqtt" => ListenerProtocol.Mqtt,
                        "websockets" => ListenerProtocol.WebSockets,
                        "http" => ListenerProtocol.Http,
                        _ => Fail<ListenerProtocol>(line.Source, $"'protocol' must be mqtt, websockets or http, got '{v}'"),
                    };
                    if (l.Protocol != ListenerProtocol.Mqtt && l.UnixSocketPath is not null)
                    {
                        Fail(line.Source, $"'protocol {v}' is not available on a Unix socket listener (listener 0)");
                    }
                    return;
                }
                case "http_dir":
                {
                    var l = ListenerFor(line);
                    var dir = SetOnce(l, line, line.Text());
                    var full = Path.GetFullPath(dir);
                    if (!Directory.Exists(full))
                    {
                        Fail(line.Source, $"'http_dir' {dir} is not a directory");
                    }
                    l.HttpDir = full;
                    l.HttpDirSource = line.Source;
                    return;
                }
                case "api_key_file":
                {
                    var path = SetOnce(GlobalScope, line, line.Text());
                    _config = _config with { ApiKeyFile = Path.GetFullPath(path), ApiKeyFileSource = line.Source };
                    return;
                }
                case "api_allow_anonymous":
                {
                    if (_listeners.Count == 0)
                    {
                        Fail(line.Source, "'api_allow_anonymous' needs a 'listener' line (with 'protocol http') before it");
                    }
                    var l = ListenerFor(line);
                    l.ApiAllowAnonymous = line.Bool();
                    l.ApiAllowAnonymousSource = line.Source;
                    return;
                }
                case "otlp_endpoint":
                {
                    var v = SetOnce(GlobalScope, line, line.Token());
                    if (!Uri.TryCreate(v, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
                    {
                        Fail(line.Source, $"'otlp_endpoint' must be an http:// or https:// URL, got '{v}'");
                    }
                    _config = _config with { OtlpEndpoint = uri };
                    return;
                }
                case "otlp_protocol":
                    _config = _config with
                    {
                        OtlpProtocol = OneOf(line, "grpc or http/protobuf", ("http/protobuf", OtlpProtocol.HttpProtobuf), ("grpc", OtlpProtocol.Grpc)),
                    };
                    return;
                case "otlp_interval":
                    _config = _config with { OtlpIntervalSeconds = (int)line.Integer(1, 86400, "must be between 1 and 86400 seconds") };
                    return;
                case "websockets_headers_size":
                    _config = _config with
                    {
                        WebSocketsHeadersSize = (int)line.Integer(0, 1024 * 1024, "must be between 0 and 1048576 bytes"),
                    };
                    return;
                case "websockets_log_level":
                    line.Integer(0, int.MaxValue, "must be a log level (a number)");
                    Notice(line, "'websockets_log_level' has no effect: WebSocket connections are logged under 'log_type websockets'");
                    return;
                case "socket_domain":
                {
                    var v = line.Token();
                    ListenerFor(line).SocketDomain = v switch
                    {
                        "ipv4" => SocketDomain.IPv4,
                        "ipv6" => SocketDomain.IPv6,
                        _ => Fail<SocketDomain>(line.Source, $"'socket_domain' must be ipv4 or ipv6, got '{v}'"),
                    };
                    return;
                }
                case "use_username_as_clientid":
                    ListenerFor(line).UseUsernameAsClientId = line.Bool();
                    return;

                // ---- security (global, or per listener with per_listener_settings) ----
                case "per_listener_settings":
                {
                    var v = line.Bool();
                    if (_perListener)
                    {
                        return; // Mosquitto: once true it stays true.
                    }
                    if (v && _firstSecurityOption is { } first)
                    {
                        Fail(line.Source,
                            $"'per_listener_settings true' must come before any security option (first one at {first})");
                    }
                    _perListener = v;
                    _config = _config with { PerListenerSettings = v };
                    return;
                }
                case "allow_anonymous":
                {
                    var v = line.Bool();
                    if (SecurityTarget(line) is { } l)
                    {
                        l.AllowAnonymous = v;
                    }
                    else
                    {
                        _config = _config with { AllowAnonymous = v };
                    }
                    return;
                }
                case "allow_zero_length_clientid":
                {
                    var v = line.Bool();
                    if (SecurityTarget(line) is { } l)
                    {
                        l.AllowZeroLengthClientId = v;
                    }
                    else
                    {
                        _config = _config with { AllowZeroLengthClientId = v };
                    }
                    return;
                }
                case "auto_id_prefix":
                {
                    var v = line.Text();
                    if (SecurityTarget(line) is { } l)
                    {
                        l.AutoIdPrefix = SetOnce(l, line, v);
                    }
                    else
                    {
                        _config = _config with { AutoIdPrefix = SetOnce(GlobalScope, line, v) };
                    }
                    return;
                }
                case "password_file":
                case "acl_file":
                {
                    var path = line.Text();
                    var target = SecurityTarget(line);
                    object scope = (object?)target ?? GlobalScope;
                    path = SetOnce(scope, line, path);
                    if (line.Name == "password_file")
                    {
                        if (target is not null) target.PasswordFile = path;
                        else _config = _config with { PasswordFile = path };
                    }
                    else
                    {
                        if (target is not null) target.AclFile = path;
                        else _config = _config with { AclFile = path };
                    }
                    return;
                }
                case "check_retain_source":
                {
                    var v = line.Bool();
                    SecurityTarget(line);
                    _config = _config with { CheckRetainSource = v };
                    return;
                }
                case "clientid_prefixes":
                    Notice(line, "'clientid_prefixes' is deprecated in Mosquitto");
                    _config = _config with { ClientIdPrefixes = [SetOnce(GlobalScope, line, line.Text())] };
                    return;

                // ---- limits and behaviour (global) ----
                case "allow_duplicate_messages":
                    _config = _config with { AllowDuplicateMessages = line.Bool() };
                    Notice(line, "'allow_duplicate_messages' is deprecated; duplicates are always allowed");
                    return;
                case "connection_messages":
                    _config = _config with { ConnectionMessages = line.Bool() };
                    return;
                case "max_inflight_bytes":
                    _config = _config with { MaxInflightBytes = NonNegative(line.Integer(long.MinValue, long.MaxValue)) };
                    return;
                case "max_inflight_messages":
                {
                    var n = line.Integer(long.MinValue, 65535, "must be at most 65535");
                    // Mosquitto: negative and 65535 both mean "no limit" (0).
                    _config = _config with { MaxInflightMessages = n < 0 || n == 65535 ? 0 : (int)n };
                    return;
                }
                case "max_keepalive":
                    _config = _config with { MaxKeepalive = (ushort)line.Integer(0, 65535) };
                    return;
                case "max_packet_size":
                    _config = _config with
                    {
                        MaxPacketSize = (int)line.Integer(20, int.MaxValue, $"must be between 20 and {int.MaxValue}"),
                    };
                    return;
                case "max_queued_bytes":
                    _config = _config with { MaxQueuedBytes = NonNegative(line.Integer(long.MinValue, long.MaxValue)) };
                    return;
                case "max_queued_messages":
                    _config = _config with
                    {
                        MaxQueuedMessages = (int)NonNegative(line.Integer(long.MinValue, int.MaxValue, $"must be at most {int.MaxValue}")),
                    };
                    return;
                case "memory_limit":
                    _config = _config with { MemoryLimit = line.Integer(0, long.MaxValue, "must not be negative") };
                    return;
                case "message_size_limit":
                    _config = _config with { MessageSizeLimit = (int)line.Integer(0, MaxPayload) };
                    Notice(line, "Mosquitto recommends 'max_packet_size' instead of 'message_size_limit'");
                    return;
                case "persistent_client_expiration":
                    _config = _config with { PersistentClientExpiration = Duration(line) };
                    return;
                case "queue_qos0_messages":
                    _config = _config with { QueueQoS0Messages = line.Bool() };
                    return;
                case "retain_available":
                    _config = _config with { RetainAvailable = line.Bool() };
                    return;
                case "set_tcp_nodelay":
                    _config = _config with { SetTcpNoDelay = line.Bool() };
                    return;
                // ---- MQTT 5 (Midge's own options, in Mosquitto's grammar) ----
                case "max_session_expiry_interval":
                    _config = _config with { MaxSessionExpiryInterval = (uint)line.Integer(0, uint.MaxValue) };
                    return;
                case "max_outgoing_topic_alias":
                    _config = _config with { MaxOutgoingTopicAlias = (ushort)line.Integer(0, 65535) };
                    return;
                case "response_information":
                    _config = _config with { ResponseInformation = SetOnce(GlobalScope, line, line.Text()) };
                    return;
                case "validate_payload_format":
                    _config = _config with { ValidatePayloadFormat = line.Bool() };
                    return;
                case "overlapping_subscriptions":
                    _config = _config with
                    {
                        OverlappingSubscriptions = line.Token() switch
                        {
                            "merge" => OverlappingSubscriptions.Merge,
                            "per_subscription" => OverlappingSubscriptions.PerSubscription,
                            var w => Fail<OverlappingSubscriptions>(line.Source, $"'overlapping_subscriptions' must be merge or per_subscription, got '{w}'"),
                        },
                    };
                    return;
                case "shared_subscription_strategy":
                    _config = _config with { SharedSubscriptionStrategy = ParseStrategy(line, line.Token()) };
                    return;
                case "shared_subscription_group_strategy":
                {
                    var words = line.Tokens();
                    if (words.Count != 2)
                    {
                        Fail(line.Source, "'shared_subscription_group_strategy' takes a group name and a strategy");
                    }
                    var strategies = new Dictionary<string, SharedSubscriptionStrategy>(_config.SharedGroupStrategies, StringComparer.Ordinal)
                    {
                        [words[0]] = ParseStrategy(line, words[1]),
                    };
                    _config = _config with { SharedGroupStrategies = strategies };
                    return;
                }
                case "exclusive_subscriptions":
                    _config = _config with { ExclusiveSubscriptions = line.Bool() };
                    return;
                case "server_reference":
                    ListenerFor(line).ServerReference = SetOnce(ListenerFor(line), line, line.Text());
                    return;
                case "server_moved":
                    ListenerFor(line).ServerMoved = line.Bool();
                    return;
                case "sys_interval":
                    _config = _config with { SysInterval = (int)line.Integer(0, 65535) };
                    return;
                case "upgrade_outgoing_qos":
                    _config = _config with { UpgradeOutgoingQoS = line.Bool() };
                    return;
                case "persistence":
                    _config = _config with { Persistence = line.Bool() };
                    return;
                case "persistence_location":
                    _config = _config with { PersistenceLocation = line.Text() };
                    return;
                case "persistence_file":
                {
                    var name = line.Text();
                    if (name.EndsWith('/'))
                    {
                        Fail(line.Source, $"'persistence_file' is a file name, got the directory '{name}' (the directory is 'persistence_location')");
                    }
                    _config = _config with { PersistenceFile = name };
                    return;
                }
                case "autosave_interval":
                    _config = _config with { AutosaveInterval = (int)line.Integer(0, int.MaxValue) };
                    return;
                case "autosave_on_changes":
                    _config = _config with { AutosaveOnChanges = line.Bool() };
                    return;
                case "persistence_mode":
                    _config = _config with
                    {
                        PersistenceMode = line.Token() switch
                        {
                            "durable" => PersistenceMode.Durable,
                            "snapshot" => PersistenceMode.Snapshot,
                            var v => Fail<PersistenceMode>(line.Source, $"'persistence_mode' must be durable or snapshot, got '{v}'"),
                        },
                    };
                    return;
                case "retry_interval":
                    Notice(line, "'retry_interval' is no longer available in Mosquitto 2.0; ignored");
                    return;
                case "store_clean_interval":
                    Notice(line, "'store_clean_interval' is no longer needed; ignored");
                    return;

                // ---- process ----
                case "pid_file":
                    _config = _config with { PidFile = SetOnce(GlobalScope, line, line.Text()) };
                    return;
                case "user":
                    _config = _config with { User = line.Text() };
                    Notice(line, "'user' is recorded; Midge does not switch user itself (run it as the intended user)");
                    return;

                // ---- logging ----
                case "log_dest":
                    LogDest(line);
                    return;
                case "log_type":
                    LogType(line);
                    return;
                case "log_facility":
                    _config = _config with { LogFacility = (int)line.Integer(0, 7, "must be between 0 and 7 (local0 to local7)") };
                    return;
                case "log_timestamp":
                    _config = _config with { LogTimestamp = line.Bool() };
                    return;
                case "log_timestamp_format":
                    _config = _config with { LogTimestampFormat = SetOnce(GlobalScope, line, line.Text()) };
                    return;
                case "log_format":
                    _config = _config with { LogFormat = OneOf(line, "text or json", ("text", LogFormat.Text), ("json", LogFormat.Json)) };
                    return;

                // ---- files ----
                case "include_dir":
                    IncludeDir(line, baseDirectory, level);
                    return;
            }

            if (ApplyProtection(line)) return;
            if (NotYetSupported.TryGet(line.Name, out var capability))
            {
                Fail(line.Source, $"option '{line.Name}' is not supported yet ({capability})");
            }
            Fail(line.Source, $"unknown option '{line.Name}'");
        }

        private static long NonNegative(long n) => n < 0 ? 0 : n;

        private void StartListener(in Line line)
        {
            _localOnly = false;
            var tokens = line.Tokens();
            if (tokens.Count == 0)
            {
                Fail(line.Source, "option 'listener' needs a port");
            }
            var port = line.ParseInteger(tokens[0]);
            if (port == 0)
            {
                // Mosquitto 2.0: 'listener 0 PATH' listens on a Unix socket at PATH.
                if (tokens.Count != 2)
                {
                    Fail(line.Source, tokens.Count < 2
                        ? "a listener with port 0 must give a Unix socket path"
                        : $"option 'listener 0' takes one Unix socket path, got extra '{tokens[2]}'");
                }
                string path = tokens[1];
                foreach (var other in _listeners)
                {
                    if (other.UnixSocketPath == path) Fail(line.Source, $"listener 0 {path} is already defined at {other.Source}");
                }
                _current = new ListenerBuilder { Port = 0, UnixSocketPath = path, Source = line.Source };
                _listeners.Add(_current);
                return;
            }
            if (port is < 1 or > 65535)
            {
                Fail(line.Source, $"'listener' port must be between 1 and 65535, got '{tokens[0]}'");
            }
            if (tokens.Count > 2)
            {
                Fail(line.Source, $"option 'listener' takes a port and an optional bind address, got extra '{tokens[2]}'");
            }
            var bind = tokens.Count == 2 ? tokens[1] : null;
            foreach (var other in _listeners)
            {
                if (other.UnixSocketPath is null && other.Port == port && other.BindAddress == bind)
                {
                    Fail(line.Source, $"listener {port}{(bind is null ? "" : " " + bind)} is already defined at {other.Source}");
                }
            }
            _current = new ListenerBuilder { Port = (int)port, BindAddress = bind, Source = line.Source };
            _listeners.Add(_current);
        }

        private static TimeSpan Duration(in Line line)
        {
            var v = line.Token();
            const string Expected =
                "must be a number followed by h, d, w, m (30 days) or y (365 days), such as 2h or 14d";
            long unit = v[^1] switch
            {
                'h' => 3600,
                'd' => 86400,
                'w' => 86400 * 7,
                'm' => 86400 * 30,
                'y' => 86400 * 365,
                _ => 0,
            };
            long n = 0;
            var ok = unit != 0
                && long.TryParse(v.AsSpan(0, v.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out n)
                && n > 0 && n <= long.MaxValue / unit / TimeSpan.TicksPerSecond;
            if (!ok)
            {
                Fail(line.Source, $"'{line.Name}' {Expected}, got '{v}'");
            }
            return TimeSpan.FromSeconds(n * unit);
        }

        private void LogDest(in Line line)
        {
            var tokens = line.Tokens();
            if (tokens.Count == 0)
            {
                Fail(line.Source, "option 'log_dest' needs a value");
            }
            if (!_logDestSet)
            {
                _logDestSet = true;
                _logDest.Clear();
            }
            var kind = tokens[0] switch
            {
                "stdout" => LogDestinationKind.Stdout,
                "stderr" => LogDestinationKind.Stderr,
                "file" => LogDestinationKind.File,
                "syslog" => LogDestinationKind.Syslog,
                "topic" => LogDestinationKind.Topic,
                "none" => LogDestinationKind.None,
                "dlt" => LogDestinationKind.Dlt,
                _ => Fail<LogDestinationKind>(line.Source,
                    $"'log_dest' must be stdout, stderr, file PATH, syslog, topic, dlt or none, got '{tokens[0]}'"),
            };
            if (kind == LogDestinationKind.File)
            {
                var path = line.Rest[4..].Trim(' ', '\t');
                if (path.Length == 0)
                {
                    Fail(line.Source, "'log_dest file' needs a file path");
                }
                if (_setOnce.TryGetValue((GlobalScope, "log_dest file"), out var first))
                {
                    Fail(line.Source, $"duplicate 'log_dest file' (already set at {first}); only one log file is allowed");
                }
                _setOnce[(GlobalScope, "log_dest file")] = line.Source;
                _logDest.Add(new LogDestination(kind, path));
                return;
            }
            if (tokens.Count > 1)
            {
                Fail(line.Source, $"option 'log_dest' takes a single value, got extra '{tokens[1]}'");
            }
            if (kind == LogDestinationKind.None)
            {
                _logDest.Clear();
                return;
            }
            if (!_logDest.Exists(d => d.Kind == kind))
            {
                _logDest.Add(new LogDestination(kind));
            }
        }

        private void LogType(in Line line)
        {
            var v = line.Token();
            if (!_logTypesSet)
            {
                _logTypesSet = true;
                _logTypes = LogTypes.None;
            }
            _logTypes = v switch
            {
                "none" => LogTypes.None,
                "all" => LogTypes.All,
                "debug" => _logTypes | LogTypes.Debug,
                "error" => _logTypes | LogTypes.Error,
                "warning" => _logTypes | LogTypes.Warning,
                "notice" => _logTypes | LogTypes.Notice,
                "information" => _logTypes | LogTypes.Information,
                "subscribe" => _logTypes | LogTypes.Subscribe,
                "unsubscribe" => _logTypes | LogTypes.Unsubscribe,
                "websockets" => _logTypes | LogTypes.WebSockets,
                _ => Fail<LogTypes>(line.Source,
                    $"'log_type' must be one of debug, error, warning, notice, information, subscribe, unsubscribe, websockets, all, none; got '{v}'"),
            };
        }

        private void IncludeDir(in Line line, string baseDirectory, int level)
        {
            var dir = line.Text();
            if (level > 0)
            {
                Notice(line, "'include_dir' is only read from the main configuration file; ignored here (as in Mosquitto)");
                return;
            }
            var full = Path.IsPathRooted(dir) ? dir : Path.Combine(baseDirectory, dir);
            if (!Directory.Exists(full))
            {
                Fail(line.Source, $"include_dir '{dir}' does not exist or is not a directory");
            }
            string[] files;
            try
            {
                files = Directory.GetFiles(full);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Fail(line.Source, $"cannot read include_dir '{dir}': {e.Message}");
                return;
            }
            var confs = files.Where(f => f.EndsWith(".conf", StringComparison.Ordinal)).ToList();
            // Mosquitto sorts case-insensitively; ordinal breaks ties so the order is total.
            confs.Sort((a, b) =>
            {
                var c = StringComparer.OrdinalIgnoreCase.Compare(a, b);
                return c != 0 ? c : StringComparer.Ordinal.Compare(a, b);
            });
            foreach (var f in confs)
            {
                if (mainFullPath is not null && string.Equals(Path.GetFullPath(f), mainFullPath, StringComparison.Ordinal))
                {
                    Fail(line.Source, $"include_dir '{dir}' contains the main configuration file");
                }
                ReadFile(f, level + 1, line.Source);
            }
        }

        public BrokerConfig Build()
        {
            var c = _config;
            var listeners = new List<ListenerBuilder>(_listeners);
            var d = _defaultListener;

            var defaultUsed = _portSource is not null || _bindAddressSource is not null || d.BindInterface is not null
                || d.MaxConnections != -1 || d.MaxQoS != 2 || d.Protocol != ListenerProtocol.Mqtt
                || d.SocketDomain != SocketDomain.Any || d.UseUsernameAsClientId
                || (_perListener && !d.AllowZeroLengthClientId) || d.TlsUsed;

            if (_localOnly)
            {
                if (d.FirstOption is { } first)
                {
                    _notices.Add(new ConfigNotice(first,
                        $"'{d.FirstOptionName}' and any other listener option before a 'listener' line have no effect: " +
                        "no listener is defined, so the broker runs in local-only mode (as Mosquitto 2.0 does)"));
                }
            }
            else if (defaultUsed)
            {
                // Mosquitto opens its default listener (port 1883 unless 'port' says otherwise) when any of its
                // options were given before the first 'listener' line.
                d.Source = _portSource ?? _bindAddressSource ?? d.FirstOption ?? default;
                foreach (var other in listeners)
                {
                    if (other.Port == d.Port && other.BindAddress == d.BindAddress)
                    {
                        Fail(d.Source, $"the default listener (port {d.Port}, from options before the first " +
                            $"'listener' line) clashes with listener {other.Port} at {other.Source}");
                    }
                }
                listeners.Add(d);
            }
            else if (d.FirstOption is { } first)
            {
                _notices.Add(new ConfigNotice(first,
                    $"'{d.FirstOptionName}' before the first 'listener' line applies to Mosquitto's default listener, " +
                    "which is not opened; it has no effect"));
            }

            var built = new List<ListenerConfig>(listeners.Count);
            foreach (var l in listeners)
            {
                if (l.HttpDirSource is { } httpDir && l.Protocol != ListenerProtocol.WebSockets)
                {
                    Fail(httpDir, "'http_dir' needs 'protocol websockets' on its listener");
                }
                if (l.ApiAllowAnonymousSource is { } anonymous && l.Protocol != ListenerProtocol.Http)
                {
                    Fail(anonymous, "'api_allow_anonymous' needs 'protocol http' on its listener");
                }
                if (l.TrustedProxiesSource is { } trusted && l.Protocol != ListenerProtocol.WebSockets)
                {
                    Fail(trusted, "'websockets_trusted_proxies' needs 'protocol websockets' on its listener");
                }
                built.Add(new ListenerConfig
                {
                    Port = l.Port,
                    BindAddress = l.BindAddress,
                    UnixSocketPath = l.UnixSocketPath,
                    BindInterface = l.BindInterface,
                    SocketDomain = l.SocketDomain,
                    Protocol = l.Protocol,
                    HttpDir = l.HttpDir,
                    ApiAllowAnonymous = l.ApiAllowAnonymous,
                    MaxConnections = l.MaxConnections,
                    MaxQoS = l.MaxQoS,
                    MaxTopicAlias = l.MaxTopicAlias,
                    MountPoint = l.MountPoint,
                    Tls = BuildTls(l),
                    UseUsernameAsClientId = l.UseUsernameAsClientId,
                    AllowAnonymous = _perListener ? l.AllowAnonymous ?? false : c.AllowAnonymous ?? false,
                    AllowZeroLengthClientId = _perListener ? l.AllowZeroLengthClientId : c.AllowZeroLengthClientId,
                    AutoIdPrefix = _perListener ? l.AutoIdPrefix ?? "auto-" : c.AutoIdPrefix,
                    PasswordFile = _perListener ? l.PasswordFile : c.PasswordFile,
                    AclFile = _perListener ? l.AclFile : c.AclFile,
                    ServerReference = l.ServerReference,
                    ServerMoved = l.ServerMoved,
                    Protection = l.BuildProtection(),
                    ProxyProtocol = l.ProxyProtocol,
                    Source = l.Source,
                });
            }

            return c with
            {
                Listeners = built,
                Bridges = BuildBridges(),
                Cluster = BuildCluster(),
                LogDestinations = _logDestSet ? [.. _logDest] : c.LogDestinations,
                LogFileSource = _logDest.Exists(d => d.Kind == LogDestinationKind.File)
                    ? _setOnce[(GlobalScope, "log_dest file")]
                    : null,
                LogTypes = _logTypesSet ? _logTypes : c.LogTypes,
                Files = [.. _files],
                Notices = [.. _notices],
            };
        }
    }
}
