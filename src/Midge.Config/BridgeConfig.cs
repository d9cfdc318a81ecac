using System.Security.Authentication;

namespace Midge.Config;

/// <summary>Which way a bridge topic carries messages.</summary>
public enum BridgeDirection
{
    /// <summary>Local messages go to the remote broker (Mosquitto's default).</summary>
    Out,
    /// <summary>Remote messages come into the local broker.</summary>
    In,
    Both,
}

/// <summary>When a bridge connects (Mosquitto's <c>start_type</c>).</summary>
public enum BridgeStartType
{
    /// <summary>At start, and again after <c>restart_timeout</c> whenever the connection ends.</summary>
    Automatic,
    /// <summary>When more than <c>threshold</c> messages wait for the remote; stopped after <c>idle_timeout</c>.</summary>
    Lazy,
    /// <summary>At start, never again once the connection ends.</summary>
    Once,
}

/// <summary>One host of <c>address</c>/<c>addresses</c>.</summary>
public sealed record BridgeAddress(string Host, int Port);

/// <summary>
/// One <c>topic pattern [[[out|in|both] qos] local-prefix remote-prefix]</c> line, with Mosquitto's remapping:
/// the local broker sees <see cref="LocalFilter"/> (local prefix + pattern), the remote <see cref="RemoteFilter"/>
/// (remote prefix + pattern); a topic crossing the bridge has one prefix swapped for the other.
/// </summary>
public sealed record BridgeTopic
{
    /// <summary>The pattern; "" when the line gave <c>""</c> (the prefixes are then whole topics).</summary>
    public required string Pattern { get; init; }
    public BridgeDirection Direction { get; init; } = BridgeDirection.Out;
    public int QoS { get; init; }
    public string LocalPrefix { get; init; } = "";
    public string RemotePrefix { get; init; } = "";
    public ConfigSource Source { get; init; }

    /// <summary>The filter subscribed on the local broker (for out and both).</summary>
    public string LocalFilter => LocalPrefix + Pattern;

    /// <summary>The filter subscribed on the remote broker (for in and both).</summary>
    public string RemoteFilter => RemotePrefix + Pattern;

    public bool Outgoing => Direction != BridgeDirection.In;

    public bool Incoming => Direction != BridgeDirection.Out;

    /// <summary>The remote topic of a local <paramref name="topic"/> that <see cref="LocalFilter"/> matched.</summary>
    public string ToRemote(string topic) => Swap(topic, LocalPrefix, RemotePrefix);

    /// <summary>The local topic of a remote <paramref name="topic"/> that <see cref="RemoteFilter"/> matched.</summary>
    public string ToLocal(string topic) => Swap(topic, RemotePrefix, LocalPrefix);

    private static string Swap(string topic, string from, string to) =>
        topic.StartsWith(from, StringComparison.Ordinal) ? string.Concat(to, topic.AsSpan(from.Length)) : topic;
}

/// <summary>TLS towards the remote broker (the <c>bridge_*</c> TLS options).</summary>
public sealed record BridgeTlsConfig
{
    public string? CaFile { get; init; }
    public string? CaPath { get; init; }
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    /// <summary>bridge_insecure: the certificate's host name is not checked (the chain still is).</summary>
    public bool Insecure { get; init; }
    /// <summary>bridge_tls_version: the lowest version offered (default TLS 1.2).</summary>
    public SslProtocols Protocols { get; init; } = SslProtocols.Tls12 | SslProtocols.Tls13;
    public string? Alpn { get; init; }
    /// <summary>bridge_require_ocsp: the remote's certificate must carry a good OCSP answer; Midge checks
    /// revocation online (the chain's OCSP responders or CRLs) instead, and refuses the remote when unknown.</summary>
    public bool RequireOcsp { get; init; }
}

/// <summary>One <c>connection</c> block: a bridge to a remote broker, with Mosquitto 2.0's defaults.</summary>
public sealed record BridgeConfig
{
    /// <summary>The <c>connection</c> name.</summary>
    public required string Name { get; init; }
    public IReadOnlyList<BridgeAddress> Addresses { get; init; } = [];
    public IReadOnlyList<BridgeTopic> Topics { get; init; } = [];
    /// <summary>3 (mqttv31), 4 (mqttv311, the default) or 5 (mqttv50).</summary>
    public int ProtocolVersion { get; init; } = 4;
    public bool TryPrivate { get; init; } = true;
    public bool CleanSession { get; init; }
    /// <summary>Defaults to <see cref="CleanSession"/>.</summary>
    public bool LocalCleanSession { get; init; }
    /// <summary>Default <c>hostname.name</c>.</summary>
    public required string RemoteClientId { get; init; }
    /// <summary>Default <c>local.</c> + the remote client id.</summary>
    public required string LocalClientId { get; init; }
    public string? RemoteUsername { get; init; }
    public string? RemotePassword { get; init; }
    public string? LocalUsername { get; init; }
    public string? LocalPassword { get; init; }
    /// <summary>Seconds; at least 5, default 60.</summary>
    public int KeepaliveInterval { get; init; } = 60;
    /// <summary>Seconds a lazy bridge may be idle before it stops; default 60.</summary>
    public int IdleTimeout { get; init; } = 60;
    public BridgeStartType StartType { get; init; } = BridgeStartType.Automatic;
    /// <summary>Messages waiting that start a lazy bridge; default 10.</summary>
    public int Threshold { get; init; } = 10;
    /// <summary>restart_timeout's base (or its constant), seconds; default 5.</summary>
    public int RestartTimeoutBase { get; init; } = 5;
    /// <summary>restart_timeout's cap, seconds (default 30); null for a constant delay.</summary>
    public int? RestartTimeoutCap { get; init; } = 30;
    public bool RoundRobin { get; init; }
    public bool Notifications { get; init; } = true;
    public bool NotificationsLocalOnly { get; init; }
    /// <summary>Default <c>$SYS/broker/connection/&lt;remote_clientid&gt;/state</c>.</summary>
    public required string NotificationTopic { get; init; }
    public bool AttemptUnsubscribe { get; init; } = true;
    public bool OutgoingRetain { get; init; } = true;
    /// <summary>Largest packet sent to the remote; 0 for no limit.</summary>
    public int MaxPacketSize { get; init; }
    public string? BindAddress { get; init; }
    /// <summary>MQTT 5 Receive Maximum sent to the remote; 0 to send none.</summary>
    public int ReceiveMaximum { get; init; }
    /// <summary>MQTT 5 Session Expiry Interval sent to the remote; null to send none.</summary>
    public uint? SessionExpiryInterval { get; init; }
    /// <summary>MQTT 5 Topic Alias Maximum accepted from the remote; default 10.</summary>
    public int MaxTopicAlias { get; init; } = 10;
    /// <summary>null: plain TCP.</summary>
    public BridgeTlsConfig? Tls { get; init; }
    public ConfigSource Source { get; init; }
}
