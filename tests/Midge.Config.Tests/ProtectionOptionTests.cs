using System.Net;

namespace Midge.Config.Tests;

/// <summary>Midge's rate-limit and connection-protection options: defaults, values, ranges, scope, errors.</summary>
public class ProtectionOptionTests
{
    private static BrokerConfig P(string text) => ConfigParser.Parse(text, "p.conf");

    private static ConfigException Fails(string text) =>
        Assert.Throws<ConfigException>(() => ConfigParser.Parse(text, "/etc/p.conf"));

    [Fact]
    public void Defaults_AreAllOff()
    {
        var c = P("listener 1883\n");
        var g = c.Protection;
        Assert.Equal(0, g.MaxPublishRate);
        Assert.Equal(0, g.MaxPublishBytesRate);
        Assert.Equal(5, g.PublishRateDisconnectAfterSeconds);
        Assert.False(g.FlappingDetect);
        Assert.Equal(15, g.FlappingMaxConnects);
        Assert.Equal(60, g.FlappingWindowSeconds);
        Assert.Equal(300, g.FlappingBanTimeSeconds);
        Assert.Equal(0, g.MaxSubscriptionsPerClient);
        Assert.Equal(200, g.MaxTopicLevels); // Mosquitto's limit
        var l = Assert.Single(c.Listeners).Protection;
        Assert.Equal(0, l.MaxConnectionRate);
        Assert.Equal(0, l.MaxPendingConnections);
        Assert.Equal(10, l.ConnectTimeoutSeconds);
        Assert.Empty(l.AllowAddresses);
        Assert.Empty(l.DenyAddresses);
        Assert.True(l.Admits(IPAddress.Parse("203.0.113.9")));
    }

    public static TheoryData<string, Func<ClientProtection, object>, object> GlobalValues => new()
    {
        { "max_publish_rate 100", p => p.MaxPublishRate, 100 },
        { "max_publish_rate 0", p => p.MaxPublishRate, 0 },
        { "max_publish_bytes_rate 1048576", p => p.MaxPublishBytesRate, 1048576L },
        { "publish_rate_disconnect_after 0", p => p.PublishRateDisconnectAfterSeconds, 0 },
        { "publish_rate_disconnect_after 30", p => p.PublishRateDisconnectAfterSeconds, 30 },
        { "flapping_detect true", p => p.FlappingDetect, true },
        { "flapping_max_connects 3", p => p.FlappingMaxConnects, 3 },
        { "flapping_window 120", p => p.FlappingWindowSeconds, 120 },
        { "flapping_ban_time 3600", p => p.FlappingBanTimeSeconds, 3600 },
        { "max_subscriptions_per_client 50", p => p.MaxSubscriptionsPerClient, 50 },
        { "max_topic_levels 8", p => p.MaxTopicLevels, 8 },
    };

    [Theory]
    [MemberData(nameof(GlobalValues))]
    public void GlobalOption_SetsItsValue_AnywhereInTheFile(string line, Func<ClientProtection, object> get, object expected)
    {
        Assert.Equal(expected, get(P(line + "\n").Protection));
        Assert.Equal(expected, get(P("listener 1883\n" + line + "\n").Protection)); // global even inside a block
    }

    [Fact]
    public void ListenerOptions_ApplyToTheirBlock()
    {
        var c = P("""
            listener 1883
            max_connection_rate 50
            max_pending_connections 200
            connect_timeout 3
            allow_address 10.0.0.0/8
            allow_address fd00::/8
            deny_address 10.1.2.3
            listener 1884
            """);
        var a = c.Listeners[0].Protection;
        Assert.Equal(50, a.MaxConnectionRate);
        Assert.Equal(200, a.MaxPendingConnections);
        Assert.Equal(3, a.ConnectTimeoutSeconds);
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("fd00::/8")], a.AllowAddresses);
        Assert.Equal([IPNetwork.Parse("10.1.2.3/32")], a.DenyAddresses);
        Assert.Equal(new ListenerProtection(), c.Listeners[1].Protection with { AllowAddresses = [], DenyAddresses = [] });
        Assert.Empty(c.Listeners[1].Protection.AllowAddresses);
    }

    [Fact]
    public void ListenerOptionBeforeAnyListener_HasNoEffect_AndSaysSo()
    {
        var c = P("max_connection_rate 5\nlistener 1883\n");
        Assert.Equal(0, Assert.Single(c.Listeners).Protection.MaxConnectionRate);
        Assert.Equal(new ConfigSource("p.conf", 1), Assert.Single(c.Notices).Source);
    }

    [Theory]
    // deny wins; any allow makes the rest denied; IPv4-mapped addresses match IPv4 networks
    [InlineData("allow_address 127.0.0.0/8", "127.0.0.1", true)]
    [InlineData("allow_address 127.0.0.0/8", "10.0.0.1", false)]
    [InlineData("allow_address 127.0.0.0/8", "::ffff:127.0.0.1", true)]
    [InlineData("allow_address 127.0.0.0/8", "::1", false)]
    [InlineData("deny_address 127.0.0.1/32", "127.0.0.1", false)]
    [InlineData("deny_address 127.0.0.1/32", "127.0.0.2", true)]
    [InlineData("deny_address 127.0.0.1", "::ffff:127.0.0.1", false)]
    [InlineData("allow_address 127.0.0.0/8\ndeny_address 127.0.0.1", "127.0.0.1", false)]
    [InlineData("allow_address 127.0.0.0/8\ndeny_address 127.0.0.1", "127.0.0.5", true)]
    [InlineData("allow_address 127.0.0.1/8", "127.9.9.9", true)] // host bits are cleared
    [InlineData("allow_address 2001:db8::/32", "2001:db8:1::5", true)]
    [InlineData("allow_address 2001:db8::/32", "2001:db9::5", false)]
    [InlineData("deny_address ::/0", "::1", false)]
    [InlineData("deny_address ::/0", "127.0.0.1", true)]
    [InlineData("deny_address 0.0.0.0/0", "192.0.2.1", false)]
    public void AddressLists_Decide(string lines, string address, bool admitted)
    {
        var p = Assert.Single(P("listener 1883\n" + lines + "\n").Listeners).Protection;
        Assert.Equal(admitted, p.Admits(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("max_publish_rate -1", "'max_publish_rate' must be between 0 and 1000000, got '-1'")]
    [InlineData("max_publish_rate fast", "'max_publish_rate' must be an integer, got 'fast'")]
    [InlineData("max_publish_bytes_rate 1 2", "option 'max_publish_bytes_rate' takes a single value, got extra '2'")]
    [InlineData("publish_rate_disconnect_after 3601", "'publish_rate_disconnect_after' must be between 0 and 3600, got '3601'")]
    [InlineData("flapping_detect yes", "'flapping_detect' must be true or false, got 'yes'")]
    [InlineData("flapping_max_connects 0", "'flapping_max_connects' must be between 1 and 1000000, got '0'")]
    [InlineData("flapping_window 0", "'flapping_window' must be between 1 and 86400, got '0'")]
    [InlineData("flapping_ban_time", "option 'flapping_ban_time' needs a value")]
    [InlineData("max_subscriptions_per_client -5", "'max_subscriptions_per_client' must be between 0 and 2147483647, got '-5'")]
    [InlineData("max_topic_levels 70000", "'max_topic_levels' must be between 0 and 65535, got '70000'")]
    [InlineData("listener 1883\nmax_connection_rate -1", "'max_connection_rate' must be between 0 and 1000000, got '-1'")]
    [InlineData("listener 1883\nmax_pending_connections x", "'max_pending_connections' must be an integer, got 'x'")]
    [InlineData("listener 1883\nconnect_timeout 0", "'connect_timeout' must be between 1 and 3600, got '0'")]
    [InlineData("listener 1883\nallow_address 10.0.0.0/33", "'allow_address' must be an IPv4 or IPv6 address with an optional /prefix (such as 10.0.0.0/8 or fd00::/8), got '10.0.0.0/33'")]
    [InlineData("listener 1883\ndeny_address example.com", "'deny_address' must be an IPv4 or IPv6 address with an optional /prefix (such as 10.0.0.0/8 or fd00::/8), got 'example.com'")]
    [InlineData("listener 1883\ndeny_address 10.0.0.0/", "'deny_address' must be an IPv4 or IPv6 address with an optional /prefix (such as 10.0.0.0/8 or fd00::/8), got '10.0.0.0/'")]
    [InlineData("listener 1883\ndeny_address ::1/129", "'deny_address' must be an IPv4 or IPv6 address with an optional /prefix (such as 10.0.0.0/8 or fd00::/8), got '::1/129'")]
    [InlineData("listener 1883\nallow_address", "option 'allow_address' needs a value")]
    public void Error_NamesFileAndLine(string text, string reason)
    {
        var e = Fails("# header\n" + text + "\n");
        int line = text.Split('\n').Length + 1;
        Assert.Equal(new ConfigSource("/etc/p.conf", line), e.Location);
        Assert.Equal(reason, e.Reason);
        Assert.Equal($"/etc/p.conf:{line}: {reason}", e.Message);
    }
}
