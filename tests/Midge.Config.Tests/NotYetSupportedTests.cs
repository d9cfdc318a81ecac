namespace Midge.Config.Tests;

/// <summary>Options of capabilities not built yet fail, naming the option and the capability.</summary>
public class NotYetSupportedTests
{
    [Theory]
    [InlineData("plugin /usr/lib/p.so", "plugin", "authentication plugins")]
    [InlineData("auth_plugin /usr/lib/p.so", "auth_plugin", "authentication plugins")]
    [InlineData("plugin_opt_db_host localhost", "plugin_opt_db_host", "authentication plugins")]
    [InlineData("auth_opt_db_host localhost", "auth_opt_db_host", "authentication plugins")]
    [InlineData("auth_plugin_deny_special_chars false", "auth_plugin_deny_special_chars", "authentication plugins")]
    [InlineData("bridge_ciphers HIGH", "bridge_ciphers", "bridge cipher lists and TCP socket options")]
    [InlineData("bridge_tcp_keepalive 10 5 3", "bridge_tcp_keepalive", "bridge cipher lists and TCP socket options")]
    public void Option_FailsNamingItsCapability(string line, string option, string capability)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigParser.Parse($"listener 1883\n{line}\n", "m.conf"));
        Assert.Equal($"m.conf:2: option '{option}' is not supported yet ({capability})", e.Message);
        Assert.True(NotYetSupported.TryGet(option, out var cap));
        Assert.Equal(capability, cap);
    }

    [Fact]
    public void ListenerZero_IsAUnixSocketListener()
    {
        var c = ConfigParser.Parse("listener 0 /run/mosquitto.sock\nlistener 1883\n", "m.conf");
        Assert.Equal("/run/mosquitto.sock", c.Listeners[0].UnixSocketPath);
        Assert.Equal(0, c.Listeners[0].Port);
        Assert.Null(c.Listeners[1].UnixSocketPath);
        var e = Assert.Throws<ConfigException>(() => ConfigParser.Parse("listener 0 /a.sock\nlistener 0 /a.sock\n", "m.conf"));
        Assert.Equal("m.conf:2: listener 0 /a.sock is already defined at m.conf:1", e.Message);
    }

    [Fact]
    public void Table_HasNoSupportedOption()
    {
        foreach (var supported in new[] { "listener", "port", "max_qos", "allow_anonymous", "log_dest", "include_dir", "user",
            "http_dir", "websockets_headers_size", "websockets_log_level",
            "persistence", "persistence_file", "persistence_location", "autosave_interval", "autosave_on_changes" })
        {
            Assert.False(NotYetSupported.TryGet(supported, out _), supported);
        }
    }
}
