namespace Midge.Config;

/// <summary>Where an option came from, for error messages ("file:line").</summary>
public readonly record struct ConfigSource(string File, int Line)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}" : File;
}

public enum ListenerProtocol
{
    Mqtt,
    WebSockets,
    /// <summary>The HTTP management API (docs/http-api.md): REST under <c>/api/v5</c>, Prometheus at <c>/metrics</c>.</summary>
    Http,
}

public enum SocketDomain
{
    Any,
    IPv4,
    IPv6,
}

[Flags]
public enum LogTypes
{
    None = 0,
    Debug = 1,
    Error = 2,
    Warning = 4,
    Notice = 8,
    Information = 16,
    Subscribe = 32,
    Unsubscribe = 64,
    WebSockets = 128,
    /// <summary>Mosquitto's default: error, warning, notice, information.</summary>
    Default = Error | Warning | Notice | Information,
    All = Debug | Error | Warning | Notice | Information | Subscribe | Unsubscribe | WebSockets,
}

/// <summary>How metrics travel to an OpenTelemetry collector (<c>otlp_protocol</c>).</summary>
public enum OtlpProtocol
{
    /// <summary>Protobuf over HTTP POST to <c>/v1/metrics</c> (port 4318 by convention).</summary>
    HttpProtobuf,
    /// <summary>gRPC (port 4317 by convention).</summary>
    Grpc,
}

/// <summary>How each log line is written (<c>log_format</c>).</summary>
public enum LogFormat
{
    /// <summary>Mosquitto's: <c>TIME: message</c>.</summary>
    Text,
    /// <summary>One JSON object per line, for log shippers: time, level, type, event, message and the message's fields.</summary>
    Json,
}

public enum LogDestinationKind
{
    Stdout,
    Stderr,
    File,
    Syslog,
    Topic,
    None,
    Dlt,
}

/// <summary>How a message matching several subscriptions of one client is delivered.</summary>
public enum OverlappingSubscriptions
{
    /// <summary>One copy at the highest QoS, carrying every matching Subscription Identifier (MQTT-3.3.4-2..5).</summary>
    Merge,
    /// <summary>One copy per matching subscription, as Mosquitto does.</summary>
    PerSubscription,
}

/// <summary>How a shared subscription group picks the member that gets a message.</summary>
public enum SharedSubscriptionStrategy
{
    RoundRobin,
    Random,
    /// <summary>The same member until it goes away.</summary>
    Sticky,
    /// <summary>By a hash of the publisher's client id: one publisher always reaches the same member.</summary>
    HashClientId,
    /// <summary>By a hash of the topic: one topic always reaches the same member.</summary>
    HashTopic,
    /// <summary>Members on this node first (a single node: round robin).</summary>
    Local,
}

public sealed record LogDestination(LogDestinationKind Kind, string? Path = null);

/// <summary>
/// Per-listener settings. With <c>per_listener_settings false</c> (the default) the security options are
/// global and copied to every listener by the parser.
/// </summary>
public sealed record ListenerConfig
{
    public int Port { get; init; } = 1883;
    /// <summary>Address or host name to bind; null binds all addresses.</summary>
    public string? BindAddress { get; init; }
    /// <summary><c>listener 0 PATH</c>: the Unix socket to listen on (then <see cref="Port"/> is 0 and the address
    /// options do not apply).</summary>
    public string? UnixSocketPath { get; init; }
    public string? BindInterface { get; init; }
    public SocketDomain SocketDomain { get; init; } = SocketDomain.Any;
    /// <summary><see cref="ListenerProtocol.WebSockets"/>: MQTT over WebSocket on HTTP/1.1 (TLS makes it WSS).</summary>
    public ListenerProtocol Protocol { get; init; } = ListenerProtocol.Mqtt;
    /// <summary><c>http_dir</c>: a WebSocket listener serves the files under this directory (a full path) to plain
    /// HTTP GET requests; null = plain HTTP requests get 404.</summary>
    public string? HttpDir { get; init; }
    /// <summary><c>api_allow_anonymous</c>: a <c>protocol http</c> listener answers requests without API key credentials
    /// (for a listener only local processes can reach). Default false: every request needs a key.</summary>
    public bool ApiAllowAnonymous { get; init; }
    /// <summary>-1 = unlimited.</summary>
    public int MaxConnections { get; init; } = -1;
    public int MaxQoS { get; init; } = 2;
    public ushort MaxTopicAlias { get; init; } = 10;
    public string? MountPoint { get; init; }
    public bool UseUsernameAsClientId { get; init; }
    /// <summary>TLS settings (TlsConfig.cs); null = plain TCP.</summary>
    public TlsConfig? Tls { get; init; }
    /// <summary>Null = Mosquitto 2.0's default (false once any listener is configured; true in local-only mode).
    /// The parser always resolves it: the global value, or the listener's own with per_listener_settings.</summary>
    public bool? AllowAnonymous { get; init; }
    /// <summary>allow_zero_length_clientid as it applies to this listener (global unless per_listener_settings).</summary>
    public bool AllowZeroLengthClientId { get; init; } = true;
    /// <summary>auto_id_prefix as it applies to this listener (global unless per_listener_settings).</summary>
    public string AutoIdPrefix { get; init; } = "auto-";
    /// <summary>Listener-level <c>max_keepalive</c> is global in Mosquitto; kept here for per-listener use.</summary>
    /// <summary>MQTT 5 redirect: CONNECT on this listener is answered 0x9C Use another server (or 0x9D Server
    /// moved when <see cref="ServerMoved"/>) with this Server Reference; 3.x clients get "server unavailable".</summary>
    public string? ServerReference { get; init; }
    public bool ServerMoved { get; init; }
    /// <summary>Mosquitto password file checked at CONNECT; null = usernames are not checked.</summary>
    public string? PasswordFile { get; init; }
    /// <summary>Mosquitto ACL file; null = every client may publish and subscribe to everything.</summary>
    public string? AclFile { get; init; }
    /// <summary>Address lists, connection rate, pending handshakes, CONNECT timeout (ProtectionConfig.cs).</summary>
    public ListenerProtection Protection { get; init; } = new();
    /// <summary><c>enable_proxy_protocol</c>: 1 or 2, every connection starts with a PROXY protocol header of that
    /// version, whose address is the client's; 0 = off.</summary>
    public int ProxyProtocol { get; init; }
    public ConfigSource Source { get; init; }
}

/// <summary>
/// The whole broker configuration, with Mosquitto 2.0's defaults. Produced by <see cref="ConfigParser"/> from
/// a mosquitto.conf, or built in code.
/// </summary>
public sealed record BrokerConfig
{
    /// <summary>Empty means Mosquitto 2.0's local-only mode: 127.0.0.1 and ::1 port 1883, anonymous allowed.</summary>
    public IReadOnlyList<ListenerConfig> Listeners { get; init; } = [];
    /// <summary>True when no listener was configured (no config file, or a file with no listener/port).</summary>
    public bool LocalOnlyMode => Listeners.Count == 0;

    /// <summary>The <c>connection</c> blocks, in file order (docs/bridges.md).</summary>
    public IReadOnlyList<BridgeConfig> Bridges { get; init; } = [];

    /// <summary>The cluster this node joins (docs/cluster.md); null: it runs alone.</summary>
    public ClusterConfig? Cluster { get; init; }

    /// <summary>Ports of local-only mode (127.0.0.1 and ::1); <c>-p</c> replaces them, as in Mosquitto 2.0.</summary>
    public IReadOnlyList<int> LocalOnlyPorts { get; init; } = [1883];

    /// <summary>Global allow_anonymous. Null = not set: true in local-only mode, false otherwise (see
    /// <see cref="EffectiveAllowAnonymous"/>). With per_listener_settings each listener carries its own.</summary>
    public bool? AllowAnonymous { get; init; }
    /// <summary>Mosquitto 2.0's rule: anonymous clients are allowed in local-only mode, and otherwise only when
    /// allow_anonymous is true.</summary>
    public bool EffectiveAllowAnonymous => LocalOnlyMode || AllowAnonymous == true;
    /// <summary>Deprecated in Mosquitto (always true in behaviour); accepted and recorded.</summary>
    public bool AllowDuplicateMessages { get; init; } = true;
    public bool AllowZeroLengthClientId { get; init; } = true;
    public string AutoIdPrefix { get; init; } = "auto-";
    /// <summary>When set, only client ids starting with one of these are allowed.</summary>
    public IReadOnlyList<string> ClientIdPrefixes { get; init; } = [];
    public bool CheckRetainSource { get; init; }
    // MQTT 5 (Midge's own options)
    /// <summary>Cap on the Session Expiry Interval a client may ask for; null = none. The capped value is
    /// returned in CONNACK.</summary>
    public uint? MaxSessionExpiryInterval { get; init; }
    /// <summary>Topic aliases the broker assigns on PUBLISHes to a client that allows them (least recently used
    /// replaced); 0 = never.</summary>
    public ushort MaxOutgoingTopicAlias { get; init; } = 10;
    /// <summary>Response Information returned to clients that ask for it ("%c" = their client id); null = none.</summary>
    public string? ResponseInformation { get; init; }
    /// <summary>Refuse PUBLISHes whose Payload Format Indicator says UTF-8 but whose payload is not (0x99).</summary>
    public bool ValidatePayloadFormat { get; init; }
    public OverlappingSubscriptions OverlappingSubscriptions { get; init; } = OverlappingSubscriptions.Merge;
    public SharedSubscriptionStrategy SharedSubscriptionStrategy { get; init; } = SharedSubscriptionStrategy.RoundRobin;
    /// <summary>Per-group strategies, overriding <see cref="SharedSubscriptionStrategy"/>.</summary>
    public IReadOnlyDictionary<string, SharedSubscriptionStrategy> SharedGroupStrategies { get; init; } =
        new Dictionary<string, SharedSubscriptionStrategy>(StringComparer.Ordinal);
    /// <summary>Enables <c>$exclusive/{filter}</c>: one subscriber at a time.</summary>
    public bool ExclusiveSubscriptions { get; init; }

    /// <summary>Global <c>password_file</c> (copied to every listener unless per_listener_settings).</summary>
    public string? PasswordFile { get; init; }
    /// <summary>Global <c>acl_file</c> (copied to every listener unless per_listener_settings).</summary>
    public string? AclFile { get; init; }
    public bool ConnectionMessages { get; init; } = true;
    public bool PerListenerSettings { get; init; }

    // Limits
    /// <summary>0 = no limit.</summary>
    public long MaxInflightBytes { get; init; }
    /// <summary>0 = no limit (Mosquitto: 20). Also the Receive Maximum announced to MQTT 5 clients.</summary>
    public int MaxInflightMessages { get; init; } = 20;
    public ushort MaxKeepalive { get; init; } = 65535;
    /// <summary>0 = no limit other than the protocol's.</summary>
    public int MaxPacketSize { get; init; }
    /// <summary>Payload bytes queued per client; 0 (written in the configuration) = no limit. Unset, it is
    /// <see cref="DefaultMaxQueuedBytes"/>, where Mosquitto has no limit: with max_queued_messages alone a client
    /// could make the broker hold a thousand of the largest messages.</summary>
    public long MaxQueuedBytes { get; init; } = DefaultMaxQueuedBytes;

    public const long DefaultMaxQueuedBytes = 64L * 1024 * 1024;
    /// <summary>0 = no limit (Mosquitto: 1000).</summary>
    public int MaxQueuedMessages { get; init; } = 1000;
    /// <summary>0 = no limit.</summary>
    public long MemoryLimit { get; init; }
    /// <summary>0 = no limit (payload bytes).</summary>
    public int MessageSizeLimit { get; init; }
    /// <summary><c>persistence</c>: keep retained messages and persistent sessions in a file, across restarts.</summary>
    public bool Persistence { get; init; }
    /// <summary><c>persistence_location</c>: the directory of the persistence file (relative paths from the working
    /// directory); null = the working directory, as Mosquitto.</summary>
    public string? PersistenceLocation { get; init; }
    /// <summary><c>persistence_file</c>: the file's name in <see cref="PersistenceLocation"/>.</summary>
    public string PersistenceFile { get; init; } = "mosquitto.db";
    /// <summary><c>autosave_interval</c>: in snapshot mode, seconds between saves (or, with
    /// <see cref="AutosaveOnChanges"/>, changes between saves); 0 = only when the broker stops.</summary>
    public int AutosaveInterval { get; init; } = 1800;
    /// <summary><c>autosave_on_changes</c>: count <see cref="AutosaveInterval"/> in changes instead of seconds.</summary>
    public bool AutosaveOnChanges { get; init; }
    /// <summary><c>persistence_mode</c> (Midge): when what is acknowledged reaches the disk.</summary>
    public PersistenceMode PersistenceMode { get; init; }

    /// <summary>The persistence file: <see cref="PersistenceLocation"/> joined with <see cref="PersistenceFile"/>.</summary>
    public string PersistencePath => PersistenceLocation is { Length: > 0 } dir ? Path.Combine(dir, PersistenceFile) : PersistenceFile;

    /// <summary>Null = persistent sessions never expire (Mosquitto's default).</summary>
    public TimeSpan? PersistentClientExpiration { get; init; }
    public bool QueueQoS0Messages { get; init; }
    public bool RetainAvailable { get; init; } = true;
    public bool SetTcpNoDelay { get; init; }
    public bool UpgradeOutgoingQoS { get; init; }
    /// <summary>Seconds between $SYS updates; 0 disables $SYS.</summary>
    public int SysInterval { get; init; } = 10;
    /// <summary><c>websockets_headers_size</c>: the most bytes of request line and headers a WebSocket listener
    /// accepts (431 beyond); 0 = Kestrel's own limit (32 KiB).</summary>
    public int WebSocketsHeadersSize { get; init; }
    /// <summary><c>api_key_file</c>: the HTTP API's keys, one <c>key:secret</c> a line (the secret in plain text or hashed as
    /// in a password file); a full path. Null: no key is accepted.</summary>
    public string? ApiKeyFile { get; init; }
    public ConfigSource? ApiKeyFileSource { get; init; }
    /// <summary>Publish rates, flapping detection, subscription and topic-depth caps (ProtectionConfig.cs).</summary>
    public ClientProtection Protection { get; init; } = new();

    // OpenTelemetry
    /// <summary><c>otlp_endpoint</c>: where the broker's metrics are exported with OTLP; null: not exported.</summary>
    public Uri? OtlpEndpoint { get; init; }
    public OtlpProtocol OtlpProtocol { get; init; } = OtlpProtocol.HttpProtobuf;
    /// <summary><c>otlp_interval</c>: seconds between two exports.</summary>
    public int OtlpIntervalSeconds { get; init; } = 60;

    // Process
    public string? PidFile { get; init; }
    public string? User { get; init; } = "mosquitto";

    // Logging
    public IReadOnlyList<LogDestination> LogDestinations { get; init; } = [new(LogDestinationKind.Stderr)];
    /// <summary>The <c>log_dest file</c> line, for errors about the file (null without one).</summary>
    public ConfigSource? LogFileSource { get; init; }
    public LogTypes LogTypes { get; init; } = LogTypes.Default;
    public bool LogTimestamp { get; init; } = true;
    /// <summary>strftime-style format as in Mosquitto; null = seconds since the epoch.</summary>
    public string? LogTimestampFormat { get; init; }
    public LogFormat LogFormat { get; init; } = LogFormat.Text;
    public int? LogFacility { get; init; }

    /// <summary>Files this configuration was read from (main file first, then includes).</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>Things worth logging at start-up that are not errors: deprecated options, options accepted
    /// without effect, Mosquitto quirks mirrored on purpose. Each with the file:line it came from.</summary>
    public IReadOnlyList<ConfigNotice> Notices { get; init; } = [];
}

/// <summary>A non-fatal remark about the configuration, with where it came from.</summary>
public sealed record ConfigNotice(ConfigSource Source, string Message)
{
    public override string ToString() => $"{Source}: {Message}";
}

/// <summary>When the persistence file is written (<c>persistence_mode</c>).</summary>
public enum PersistenceMode
{
    /// <summary>Every change is written as it is made, in batches (group commit); a QoS 1/2 PUBLISH that a stored
    /// session or a retained message needs is acknowledged only once it is on disk. Nothing acknowledged is lost to a
    /// crash.</summary>
    Durable,

    /// <summary>As Mosquitto: changes are written every <c>autosave_interval</c> and when the broker stops, and
    /// acknowledgements do not wait; a crash loses what changed since the last save.</summary>
    Snapshot,
}
