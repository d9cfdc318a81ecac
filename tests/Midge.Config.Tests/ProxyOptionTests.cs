using System.Net;

namespace Midge.Config.Tests;

/// <summary><c>enable_proxy_protocol</c> (Mosquitto 2.1) and <c>websockets_trusted_proxies</c> (Midge's).</summary>
public class ProxyOptionTests
{
    private static BrokerConfig P(string text) => ConfigParser.Parse(text, "p.conf");

    private static ConfigException Fails(string text) =>
        Assert.Throws<ConfigException>(() => ConfigParser.Parse(text, "/etc/p.conf"));

    [Fact]
    public void EnableProxyProtocol_IsPerListener_AndOffByDefault()
    {
        var c = P("listener 1883\nenable_proxy_protocol 2\nlistener 1884\nlistener 1885\nenable_proxy_protocol 1\n");
        Assert.Equal([2, 0, 1], c.Listeners.Select(l => l.ProxyProtocol));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("3")]
    [InlineData("true")]
    [InlineData("1 2")]
    public void EnableProxyProtocol_TakesOnly1Or2(string value)
    {
        var e = Fails($"listener 1883\nenable_proxy_protocol {value}\n");
        Assert.StartsWith("/etc/p.conf:2:", e.Message);
    }

    [Fact]
    public void TrustedProxies_AreNetworks_OnAWebSocketListener()
    {
        var c = P("listener 9001\nprotocol websockets\nwebsockets_trusted_proxies 10.0.0.0/8 127.0.0.1\nwebsockets_trusted_proxies fd00::/8\n");
        var p = Assert.Single(c.Listeners).Protection;
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("127.0.0.1/32"), IPNetwork.Parse("fd00::/8")], p.TrustedProxies);
        Assert.True(p.Trusts(IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.False(p.Trusts(IPAddress.Parse("192.0.2.1")));
    }

    [Fact]
    public void TrustedProxies_Errors()
    {
        Assert.StartsWith("/etc/p.conf:3:", Fails("listener 9001\nprotocol websockets\nwebsockets_trusted_proxies 10.0.0.0/33\n").Message);
        Assert.StartsWith("/etc/p.conf:3:", Fails("listener 9001\nprotocol websockets\nwebsockets_trusted_proxies\n").Message);
        var e = Fails("listener 1883\nwebsockets_trusted_proxies 127.0.0.1\n");
        Assert.StartsWith("/etc/p.conf:2:", e.Message);
        Assert.Contains("needs 'protocol websockets'", e.Message);
    }
}
