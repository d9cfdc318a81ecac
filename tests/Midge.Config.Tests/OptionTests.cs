namespace Midge.Config.Tests;

/// <summary>Each option family: accepted values and what they set.</summary>
public class OptionTests
{
    private static BrokerConfig P(string text) => ConfigParser.Parse(text, "t.conf");

    public static TheoryData<string, Func<BrokerConfig, object?>, object?> GlobalValues => new()
    {
        { "allow_zero_length_clientid false", c => c.AllowZeroLengthClientId, false },
        { "auto_id_prefix gen-", c => c.AutoIdPrefix, "gen-" },
        { "check_retain_source true", c => c.CheckRetainSource, true },
        { "clientid_prefixes secure-", c => string.Join(",", c.ClientIdPrefixes), "secure-" },
        { "connection_messages false", c => c.ConnectionMessages, false },
        { "allow_duplicate_messages false", c => c.AllowDuplicateMessages, false },
        { "max_inflight_bytes 4096", c => c.MaxInflightBytes, 4096L },
        { "max_inflight_bytes -5", c => c.MaxInflightBytes, 0L },
        { "max_inflight_messages 1", c => c.MaxInflightMessages, 1 },
        { "max_inflight_messages 0", c => c.MaxInflightMessages, 0 },
        { "max_inflight_messages -1", c => c.MaxInflightMessages, 0 },
        { "max_inflight_messages 65535", c => c.MaxInflightMessages, 0 },
        { "max_inflight_messages 65534", c => c.MaxInflightMessages, 65534 },
        { "max_keepalive 0", c => c.MaxKeepalive, (ushort)0 },
        { "max_keepalive 60", c => c.MaxKeepalive, (ushort)60 },
        { "max_keepalive 65535", c => c.MaxKeepalive, (ushort)65535 },
        { "max_packet_size 20", c => c.MaxPacketSize, 20 },
        { "max_packet_size 1048576", c => c.MaxPacketSize, 1048576 },
        { "max_queued_bytes 1000000", c => c.MaxQueuedBytes, 1000000L },
        { "max_queued_bytes 0", c => c.MaxQueuedBytes, 0L }, // written: no limit, as in Mosquitto
        { "max_queued_messages 0", c => c.MaxQueuedMessages, 0 },
        { "max_queued_messages -3", c => c.MaxQueuedMessages, 0 },
        { "max_queued_messages 5000", c => c.MaxQueuedMessages, 5000 },
        { "memory_limit 0", c => c.MemoryLimit, 0L },
        { "memory_limit 8589934592", c => c.MemoryLimit, 8589934592L },
        { "message_size_limit 268435455", c => c.MessageSizeLimit, 268435455 },
        { "message_size_limit 0", c => c.MessageSizeLimit, 0 },
        { "queue_qos0_messages true", c => c.QueueQoS0Messages, true },
        { "retain_available false", c => c.RetainAvailable, false },
        { "set_tcp_nodelay true", c => c.SetTcpNoDelay, true },
        { "sys_interval 0", c => c.SysInterval, 0 },
        { "sys_interval 65535", c => c.SysInterval, 65535 },
        { "upgrade_outgoing_qos true", c => c.UpgradeOutgoingQoS, true },
        { "pid_file /run/mosquitto/mosquitto.pid", c => c.PidFile, "/run/mosquitto/mosquitto.pid" },
        { "user nobody", c => c.User, "nobody" },
        { "log_timestamp false", c => c.LogTimestamp, false },
        { "log_timestamp_format %Y-%m-%dT%H:%M:%S", c => c.LogTimestampFormat, "%Y-%m-%dT%H:%M:%S" },
        { "log_timestamp_format %H %M", c => c.LogTimestampFormat, "%H %M" },
        { "otlp_endpoint http://127.0.0.1:4318", c => c.OtlpEndpoint, new Uri("http://127.0.0.1:4318") },
        { "otlp_endpoint https://otel.example:4317/", c => c.OtlpEndpoint!.Host, "otel.example" },
        { "otlp_protocol grpc", c => c.OtlpProtocol, OtlpProtocol.Grpc },
        { "otlp_protocol http/protobuf", c => c.OtlpProtocol, OtlpProtocol.HttpProtobuf },
        { "otlp_interval 1", c => c.OtlpIntervalSeconds, 1 },
        { "otlp_interval 86400", c => c.OtlpIntervalSeconds, 86400 },
        { "log_format json", c => c.LogFormat, LogFormat.Json },
        { "log_format text", c => c.LogFormat, LogFormat.Text },
        { "log_facility 0", c => c.LogFacility, 0 },
        { "log_facility 7", c => c.LogFacility, 7 },
        { "per_listener_settings true", c => c.PerListenerSettings, true },
        { "allow_anonymous true", c => c.AllowAnonymous, true },
        { "persistence false", c => c.MaxQueuedMessages, 1000 },
        { "retry_interval 20", c => c.MaxInflightMessages, 20 },
        { "store_clean_interval 10", c => c.MaxInflightMessages, 20 },
        // Mosquitto's parser also takes 1/0 for booleans.
        { "retain_available 0", c => c.RetainAvailable, false },
        { "queue_qos0_messages 1", c => c.QueueQoS0Messages, true },
        // A trailing comment after a single-token value is not an extra value.
        { "max_queued_messages 7 # keep it small", c => c.MaxQueuedMessages, 7 },
        // Leading and trailing whitespace, tabs between name and value.
        { "   sys_interval\t 30  \r", c => c.SysInterval, 30 },
    };

    [Theory]
    [MemberData(nameof(GlobalValues))]
    public void GlobalOption_SetsValue(string line, Func<BrokerConfig, object?> get, object? expected)
    {
        Assert.Equal(expected, get(P(line + "\n")));
    }

    [Theory]
    [InlineData("1h", 3600)]
    [InlineData("2d", 2 * 86400)]
    [InlineData("3w", 3 * 7 * 86400)]
    [InlineData("1m", 30 * 86400)]
    [InlineData("1y", 365 * 86400)]
    public void PersistentClientExpiration_TakesMosquittoDurations(string value, long seconds)
    {
        var c = P($"persistent_client_expiration {value}\n");
        Assert.Equal(TimeSpan.FromSeconds(seconds), c.PersistentClientExpiration);
    }

    [Theory]
    [InlineData("listener 1883", 1883, null)]
    [InlineData("listener 8883 0.0.0.0", 8883, "0.0.0.0")]
    [InlineData("listener 1 ::1", 1, "::1")]
    [InlineData("listener 65535 localhost # the local one", 65535, "localhost")]
    public void Listener_PortAndBindAddress(string line, int port, string? bind)
    {
        var l = Assert.Single(P(line + "\n").Listeners);
        Assert.Equal(port, l.Port);
        Assert.Equal(bind, l.BindAddress);
    }

    public static TheoryData<string, Func<ListenerConfig, object?>, object?> ListenerValues => new()
    {
        { "bind_interface eth0", l => l.BindInterface, "eth0" },
        { "max_connections 100", l => l.MaxConnections, 100 },
        { "max_connections -5", l => l.MaxConnections, -1 },
        { "max_qos 0", l => l.MaxQoS, 0 },
        { "max_qos 1", l => l.MaxQoS, 1 },
        { "maximum_qos 1", l => l.MaxQoS, 1 },
        { "max_topic_alias 0", l => l.MaxTopicAlias, (ushort)0 },
        { "max_topic_alias 65535", l => l.MaxTopicAlias, (ushort)65535 },
        { "mount_point tenant/a/", l => l.MountPoint, "tenant/a/" },
        { "protocol mqtt", l => l.Protocol, ListenerProtocol.Mqtt },
        { "socket_domain ipv4", l => l.SocketDomain, SocketDomain.IPv4 },
        { "socket_domain ipv6", l => l.SocketDomain, SocketDomain.IPv6 },
        { "use_username_as_clientid true", l => l.UseUsernameAsClientId, true },
    };

    [Theory]
    [MemberData(nameof(ListenerValues))]
    public void ListenerOption_AppliesToCurrentListener(string line, Func<ListenerConfig, object?> get, object? expected)
    {
        var c = P($"listener 1883\nlistener 1884\n{line}\n");
        Assert.Equal(2, c.Listeners.Count);
        Assert.Equal(expected, get(c.Listeners[1]));
        // The earlier listener keeps every default.
        Assert.Equal(P("listener 1883\n").Listeners[0], c.Listeners[0]);
    }

    [Fact]
    public void LogDest_FirstReplacesDefault_ThenAccumulates()
    {
        var c = P("log_dest stdout\nlog_dest file /var/log/mosquitto/mosquitto log.txt\nlog_dest syslog\nlog_dest stdout\nlog_dest topic\nlog_dest dlt\n");
        Assert.Equal(
            [
                new LogDestination(LogDestinationKind.Stdout),
                new LogDestination(LogDestinationKind.File, "/var/log/mosquitto/mosquitto log.txt"),
                new LogDestination(LogDestinationKind.Syslog),
                new LogDestination(LogDestinationKind.Topic),
                new LogDestination(LogDestinationKind.Dlt),
            ],
            c.LogDestinations);
    }

    [Fact]
    public void LogDest_None_ClearsWhatCameBefore()
    {
        Assert.Empty(P("log_dest stdout\nlog_dest none\n").LogDestinations);
        Assert.Equal([new LogDestination(LogDestinationKind.Stderr)], P("log_dest none\nlog_dest stderr\n").LogDestinations);
    }

    [Theory]
    [InlineData("log_type error", LogTypes.Error)]
    [InlineData("log_type debug\nlog_type subscribe\nlog_type unsubscribe", LogTypes.Debug | LogTypes.Subscribe | LogTypes.Unsubscribe)]
    [InlineData("log_type warning\nlog_type notice\nlog_type information\nlog_type websockets", LogTypes.Warning | LogTypes.Notice | LogTypes.Information | LogTypes.WebSockets)]
    [InlineData("log_type all", LogTypes.All)]
    [InlineData("log_type none", LogTypes.None)]
    [InlineData("log_type debug\nlog_type none", LogTypes.None)]
    [InlineData("log_type none\nlog_type error", LogTypes.Error)]
    public void LogType_FirstReplacesDefault_ThenAccumulates(string text, LogTypes expected)
    {
        Assert.Equal(expected, P(text + "\n").LogTypes);
    }

    [Fact]
    public void DeprecatedOptions_AreAcceptedWithNotices()
    {
        var c = P("allow_duplicate_messages true\nretry_interval 20\nstore_clean_interval 10\nclientid_prefixes a-\nmessage_size_limit 100\nuser mosquitto\n");
        Assert.Equal(6, c.Notices.Count);
        Assert.Equal(new ConfigSource("t.conf", 2), c.Notices[1].Source);
        Assert.StartsWith("t.conf:2: 'retry_interval'", c.Notices[1].ToString());
    }

    [Fact]
    public void Parse_ResolvesIncludeDirAgainstBaseDirectory()
    {
        using var dir = new TempDir();
        dir.Write("conf.d/a.conf", "max_queued_messages 3\n");
        var c = ConfigParser.Parse("include_dir conf.d\n", "inline.conf", dir.Path);
        Assert.Equal(3, c.MaxQueuedMessages);
    }
}
