using System.Security.Authentication;

namespace Midge.Config.Tests;

/// <summary>Bridges: the <c>connection</c> block and every bridge option of Mosquitto 2.0.</summary>
public class BridgeOptionTests
{
    private static BrokerConfig Parse(string text) => ConfigParser.Parse("listener 1883\n" + text, "m.conf");

    private static string Error(string text) => Assert.Throws<ConfigException>(() => Parse(text)).Message;

    [Fact]
    public void Defaults_AreMosquittos()
    {
        var b = Assert.Single(Parse("connection up\naddress 10.0.0.1\ntopic #\n").Bridges);
        Assert.Equal("up", b.Name);
        Assert.Equal([new BridgeAddress("10.0.0.1", 1883)], b.Addresses);
        Assert.Equal(4, b.ProtocolVersion);
        Assert.True(b.TryPrivate);
        Assert.False(b.CleanSession);
        Assert.False(b.LocalCleanSession);
        Assert.Equal($"{System.Net.Dns.GetHostName()}.up", b.RemoteClientId);
        Assert.Equal($"local.{System.Net.Dns.GetHostName()}.up", b.LocalClientId);
        Assert.Equal($"$SYS/broker/connection/{b.RemoteClientId}/state", b.NotificationTopic);
        Assert.True(b.Notifications);
        Assert.False(b.NotificationsLocalOnly);
        Assert.Equal(60, b.KeepaliveInterval);
        Assert.Equal(60, b.IdleTimeout);
        Assert.Equal(10, b.Threshold);
        Assert.Equal(BridgeStartType.Automatic, b.StartType);
        Assert.Equal(5, b.RestartTimeoutBase);
        Assert.Equal(30, b.RestartTimeoutCap);
        Assert.False(b.RoundRobin);
        Assert.True(b.AttemptUnsubscribe);
        Assert.True(b.OutgoingRetain);
        Assert.Null(b.Tls);
        var t = Assert.Single(b.Topics);
        Assert.Equal(("#", BridgeDirection.Out, 0, "", ""), (t.Pattern, t.Direction, t.QoS, t.LocalPrefix, t.RemotePrefix));
    }

    [Fact]
    public void EveryOption_IsRead()
    {
        var b = Assert.Single(Parse("""
            connection up
            addresses a.example:1884 [::1]:1885 10.0.0.2
            topic sensors/# both 2 local/ remote/
            bridge_protocol_version mqttv50
            try_private false
            cleansession true
            local_cleansession false
            remote_clientid rc
            local_clientid lc
            remote_username ru
            remote_password rp
            local_username lu
            local_password lp
            keepalive_interval 30
            idle_timeout 20
            start_type lazy
            threshold 3
            restart_timeout 7
            round_robin true
            notifications false
            notifications_local_only true
            notification_topic bridges/up/state
            bridge_attempt_unsubscribe false
            bridge_outgoing_retain false
            bridge_max_packet_size 1000
            bridge_bind_address 127.0.0.1
            bridge_receive_maximum 20
            bridge_session_expiry_interval 3600
            bridge_max_topic_alias 0
            bridge_cafile /etc/ca.crt
            bridge_certfile /etc/c.crt
            bridge_keyfile /etc/c.key
            bridge_insecure true
            bridge_tls_version tlsv1.3
            bridge_alpn mqtt
            bridge_require_ocsp true
            """).Bridges);
        Assert.Equal([new BridgeAddress("a.example", 1884), new BridgeAddress("::1", 1885), new BridgeAddress("10.0.0.2", 1883)], b.Addresses);
        Assert.Equal(5, b.ProtocolVersion);
        Assert.False(b.TryPrivate);
        Assert.True(b.CleanSession);
        Assert.False(b.LocalCleanSession);
        Assert.Equal(("rc", "lc", "ru", "rp", "lu", "lp"), (b.RemoteClientId, b.LocalClientId, b.RemoteUsername, b.RemotePassword, b.LocalUsername, b.LocalPassword));
        Assert.Equal((30, 20, BridgeStartType.Lazy, 3, 7, (int?)null), (b.KeepaliveInterval, b.IdleTimeout, b.StartType, b.Threshold, b.RestartTimeoutBase, b.RestartTimeoutCap));
        Assert.True(b.RoundRobin);
        Assert.False(b.Notifications);
        Assert.True(b.NotificationsLocalOnly);
        Assert.Equal("bridges/up/state", b.NotificationTopic);
        Assert.False(b.AttemptUnsubscribe);
        Assert.False(b.OutgoingRetain);
        Assert.Equal((1000, "127.0.0.1", 20, (uint?)3600, 0), (b.MaxPacketSize, b.BindAddress, b.ReceiveMaximum, b.SessionExpiryInterval, b.MaxTopicAlias));
        Assert.Equal(new BridgeTlsConfig
        {
            CaFile = "/etc/ca.crt",
            CertFile = "/etc/c.crt",
            KeyFile = "/etc/c.key",
            Insecure = true,
            Protocols = SslProtocols.Tls13,
            Alpn = "mqtt",
            RequireOcsp = true,
        }, b.Tls);
    }

    [Fact]
    public void LegacyNames_AreTheRemoteOnes()
    {
        var b = Assert.Single(Parse("connection up\naddress h\nclientid c\nusername u\npassword p\n").Bridges);
        Assert.Equal(("c", "u", "p"), (b.RemoteClientId, b.RemoteUsername, b.RemotePassword));
        Assert.Equal("local.c", b.LocalClientId);
        Assert.Equal("$SYS/broker/connection/c/state", b.NotificationTopic);
    }

    [Fact]
    public void OptionsFollowTheirConnection_OtherOptionsKeepTheirScope()
    {
        var c = Parse("connection a\naddress h1\ntopic x out\nmax_queued_messages 5\nconnection b\naddress h2:2000\ncleansession true\ntopic y in 1\n");
        Assert.Equal(2, c.Bridges.Count);
        Assert.Equal("x", Assert.Single(c.Bridges[0].Topics).Pattern);
        Assert.False(c.Bridges[0].CleanSession);
        Assert.True(c.Bridges[1].CleanSession);
        Assert.True(c.Bridges[1].LocalCleanSession);
        Assert.Equal(5, c.MaxQueuedMessages);
        Assert.Equal(new BridgeAddress("h2", 2000), Assert.Single(c.Bridges[1].Addresses));
    }

    [Fact]
    public void RestartTimeout_BackoffForm()
    {
        var b = Assert.Single(Parse("connection a\naddress h\nrestart_timeout 10 60\n").Bridges);
        Assert.Equal((10, (int?)60), (b.RestartTimeoutBase, b.RestartTimeoutCap));
    }

    [Theory]
    [InlineData("address h\n", "m.conf:2: 'address' needs a 'connection' line before it (bridge options belong to a bridge)")]
    [InlineData("topic #\n", "m.conf:2: 'topic' needs a 'connection' line before it (bridge options belong to a bridge)")]
    [InlineData("connection a\n", "m.conf:2: bridge 'a' needs an 'address' line")]
    [InlineData("connection a\naddress h\nconnection a\naddress h\n", "m.conf:4: bridge 'a' is already defined at m.conf:2")]
    [InlineData("connection a\naddress h\naddresses g\n", "m.conf:4: duplicate 'addresses' in bridge 'a' (already set at m.conf:3)")]
    [InlineData("connection a\naddress h:0\n", "m.conf:3: 'address': the port of 'h:0' must be between 1 and 65535")]
    [InlineData("connection a\naddress h\ntopic # sideways\n", "m.conf:4: 'topic' direction must be out, in or both, got 'sideways'")]
    [InlineData("connection a\naddress h\ntopic # in 3\n", "m.conf:4: 'topic' QoS must be 0, 1 or 2, got '3'")]
    [InlineData("connection a\naddress h\ntopic a/#/b\n", "m.conf:4: 'topic': 'a/#/b' is not a valid topic filter")]
    [InlineData("connection a\naddress h\ntopic # in 0 l/+/ r/\n", "m.conf:4: 'topic' local prefix must not contain the wildcards + or #, got 'l/+/'")]
    [InlineData("connection a\naddress h\nbridge_protocol_version mqttv6\n", "m.conf:4: 'bridge_protocol_version' must be mqttv31, mqttv311 or mqttv50, got 'mqttv6'")]
    [InlineData("connection a\naddress h\nstart_type manual\n", "m.conf:4: 'start_type' must be automatic, lazy or once, got 'manual'")]
    [InlineData("connection a\naddress h\nkeepalive_interval 4\n", "m.conf:4: 'keepalive_interval' must be between 5 and 65535 seconds, got '4'")]
    [InlineData("connection a\naddress h\nrestart_timeout 30 10\n", "m.conf:4: 'restart_timeout' cap (10) is below its base (30)")]
    [InlineData("connection a\naddress h\nrestart_timeout 1 2 3\n", "m.conf:4: 'restart_timeout' takes a constant, or a base and a cap (seconds)")]
    [InlineData("connection a\naddress h\nremote_password p\n", "m.conf:4: 'remote_password' in bridge 'a' needs 'remote_username'")]
    [InlineData("connection a\naddress h\nremote_clientid x\nclientid y\n", "m.conf:5: duplicate 'clientid' in bridge 'a' (already set at m.conf:4)")]
    [InlineData("connection a\naddress h\nbridge_certfile c.crt\nbridge_keyfile c.key\n", "m.conf:4: TLS in bridge 'a' needs 'bridge_cafile' or 'bridge_capath'")]
    [InlineData("connection a\naddress h\nbridge_cafile ca.crt\nbridge_certfile c.crt\n", "m.conf:5: 'bridge_certfile' and 'bridge_keyfile' in bridge 'a' go together")]
    [InlineData("connection a\naddress h\nnotification_topic a/#\n", "m.conf:4: 'notification_topic' must be a topic name without wildcards, got 'a/#'")]
    [InlineData("connection a\naddress h\nbridge_tls_version tlsv1.0\n", "m.conf:4: 'bridge_tls_version' must be tlsv1.3, tlsv1.2 or tlsv1.1, got 'tlsv1.0'")]
    public void Errors_NameFileAndLine(string text, string expected) => Assert.Equal(expected, Error(text));

    [Theory]
    [InlineData("bridge_identity id")]
    [InlineData("bridge_psk 0123abcd")]
    public void Psk_FailsClearly(string line)
    {
        var option = line.Split(' ')[0];
        Assert.Equal($"m.conf:4: option '{option}' is not supported: .NET's TLS stack has no TLS-PSK; use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)",
            Error($"connection a\naddress h\n{line}\n"));
    }

    // The man page's remapping table (mosquitto.conf(5), "topic"): pattern, local prefix, remote prefix, and the
    // full local and remote topics.
    [Theory]
    [InlineData("pattern", "L/", "R/", "L/pattern", "R/pattern")]
    [InlineData("pattern", "L/", "\"\"", "L/pattern", "pattern")]
    [InlineData("pattern", "\"\"", "R/", "pattern", "R/pattern")]
    [InlineData("pattern", "\"\"", "\"\"", "pattern", "pattern")]
    [InlineData("\"\"", "local", "remote", "local", "remote")]
    public void Remapping_ValidRowsOfTheManPage(string pattern, string local, string remote, string fullLocal, string fullRemote)
    {
        var t = Assert.Single(Assert.Single(Parse($"connection a\naddress h\ntopic {pattern} both 1 {local} {remote}\n").Bridges).Topics);
        Assert.Equal(fullLocal, t.LocalFilter);
        Assert.Equal(fullRemote, t.RemoteFilter);
        Assert.Equal(fullRemote, t.ToRemote(fullLocal));
        Assert.Equal(fullLocal, t.ToLocal(fullRemote));
    }

    [Theory]
    [InlineData("local", "\"\"")]
    [InlineData("\"\"", "remote")]
    [InlineData("\"\"", "\"\"")]
    public void Remapping_InvalidRowsOfTheManPage(string local, string remote) =>
        Assert.Equal("m.conf:4: 'topic \"\"' (an empty pattern) needs both a local and a remote prefix: they are the topics on each side",
            Error($"connection a\naddress h\ntopic \"\" both 1 {local} {remote}\n"));

    [Fact]
    public void Remapping_WholeTree_AsTheManPageSuggests()
    {
        // topic # both 2 local/topic/ remote/topic/
        var t = Assert.Single(Assert.Single(Parse("connection a\naddress h\ntopic # both 2 local/topic/ remote/topic/\n").Bridges).Topics);
        Assert.Equal("local/topic/#", t.LocalFilter);
        Assert.Equal("remote/topic/#", t.RemoteFilter);
        Assert.Equal("remote/topic/a/b", t.ToRemote("local/topic/a/b"));
        Assert.Equal("local/topic/a/b", t.ToLocal("remote/topic/a/b"));
        Assert.Equal((BridgeDirection.Both, 2), (t.Direction, t.QoS));
    }

    [Fact]
    public void Remapping_TheManPagesSysExample()
    {
        // topic clients/total in 0 test/mosquitto/org/ $SYS/broker/
        var t = Assert.Single(Assert.Single(Parse("connection test-mosquitto-org\naddress test.mosquitto.org\ncleansession true\ntopic clients/total in 0 test/mosquitto/org/ $SYS/broker/\n").Bridges).Topics);
        Assert.Equal("$SYS/broker/clients/total", t.RemoteFilter);
        Assert.Equal("test/mosquitto/org/clients/total", t.ToLocal("$SYS/broker/clients/total"));
        Assert.Equal(BridgeDirection.In, t.Direction);
    }
}
