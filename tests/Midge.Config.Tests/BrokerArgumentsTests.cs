namespace Midge.Config.Tests;

public class BrokerArgumentsTests
{
    [Fact]
    public void NoArguments_RunsOnDefaults()
    {
        var a = BrokerArguments.Parse([]);
        Assert.Null(a.ConfigFile);
        Assert.Empty(a.Ports);
        Assert.False(a.Daemon || a.Verbose || a.TestConfig || a.Help || a.Version);
        var c = a.ToBrokerConfig();
        Assert.True(c.LocalOnlyMode);
        Assert.Equal([1883], c.LocalOnlyPorts);
    }

    [Theory]
    [InlineData(new[] { "-d" }, "Daemon")]
    [InlineData(new[] { "--daemon" }, "Daemon")]
    [InlineData(new[] { "-v" }, "Verbose")]
    [InlineData(new[] { "--verbose" }, "Verbose")]
    [InlineData(new[] { "-h" }, "Help")]
    [InlineData(new[] { "--help" }, "Help")]
    [InlineData(new[] { "--test-config" }, "TestConfig")]
    [InlineData(new[] { "--version" }, "Version")]
    public void Flags(string[] args, string flag)
    {
        var a = BrokerArguments.Parse(args);
        var value = (bool)typeof(BrokerArguments).GetProperty(flag)!.GetValue(a)!;
        Assert.True(value);
    }

    [Fact]
    public void Everything_Together()
    {
        var a = BrokerArguments.Parse(["-c", "/etc/mosquitto/mosquitto.conf", "-d", "-p", "1884", "--port", "1885", "-v", "--test-config"]);
        Assert.Equal("/etc/mosquitto/mosquitto.conf", a.ConfigFile);
        Assert.Equal([1884, 1885], a.Ports);
        Assert.True(a.Daemon && a.Verbose && a.TestConfig);
        Assert.Equal("/x.conf", BrokerArguments.Parse(["--config-file", "/x.conf"]).ConfigFile);
    }

    [Theory]
    [InlineData(new[] { "-x" }, "unknown option '-x' (see --help)")]
    [InlineData(new[] { "--config" }, "unknown option '--config' (see --help)")]
    [InlineData(new[] { "mosquitto.conf" }, "unknown option 'mosquitto.conf' (see --help)")]
    [InlineData(new[] { "-c" }, "-c needs a configuration file")]
    [InlineData(new[] { "-c", "a.conf", "-c", "b.conf" }, "-c given more than once")]
    [InlineData(new[] { "-p" }, "-p needs a port")]
    [InlineData(new[] { "-p", "0" }, "-p: port must be between 1 and 65535, got '0'")]
    [InlineData(new[] { "-p", "65536" }, "-p: port must be between 1 and 65535, got '65536'")]
    [InlineData(new[] { "--port", "http" }, "--port: port must be between 1 and 65535, got 'http'")]
    [InlineData(new[] { "--tls-keylog", "k.log" }, "option '--tls-keylog' is not supported yet (TLS key logging)")]
    [InlineData(new[] { "-p", "1", "-p", "2", "-p", "3", "-p", "4", "-p", "5", "-p", "6", "-p", "7", "-p", "8", "-p", "9", "-p", "10", "-p", "11" }, "at most 10 ports can be given with -p")]
    public void Errors(string[] args, string message)
    {
        var e = Assert.Throws<CommandLineException>(() => BrokerArguments.Parse(args));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Port_Repeated_ReplacesLocalOnlyPorts_WithoutConfigFile()
    {
        var c = BrokerArguments.Parse(["-p", "1884", "-p", "1885"]).ToBrokerConfig();
        Assert.True(c.LocalOnlyMode);
        Assert.Empty(c.Listeners);
        Assert.Equal([1884, 1885], c.LocalOnlyPorts);
    }

    [Fact]
    public void Port_ReplacesLocalOnlyPorts_WhenFileDefinesNoListener()
    {
        using var dir = new TempDir();
        var file = dir.Write("m.conf", "max_queued_messages 10\n");
        var c = BrokerArguments.Parse(["-c", file, "-p", "1999"]).ToBrokerConfig();
        Assert.True(c.LocalOnlyMode);
        Assert.Equal([1999], c.LocalOnlyPorts);
        Assert.Equal(10, c.MaxQueuedMessages);
    }

    [Fact]
    public void Port_IsIgnored_WhenFileDefinesListeners_WithANotice()
    {
        using var dir = new TempDir();
        var file = dir.Write("m.conf", "listener 1883\n");
        var c = BrokerArguments.Parse(["-p", "1999", "-c", file]).ToBrokerConfig();
        Assert.Equal([1883], c.Listeners.Select(l => l.Port));
        Assert.Contains(c.Notices, n => n.Message.Contains("-p is ignored"));
    }

    [Fact]
    public void Verbose_OverridesLogTypeFromFile()
    {
        using var dir = new TempDir();
        var file = dir.Write("m.conf", "log_type error\n");
        Assert.Equal(LogTypes.Error, BrokerArguments.Parse(["-c", file]).ToBrokerConfig().LogTypes);
        Assert.Equal(LogTypes.All, BrokerArguments.Parse(["-c", file, "-v"]).ToBrokerConfig().LogTypes);
    }

    [Fact]
    public void ConfigErrors_SurfaceWithFileAndLine()
    {
        using var dir = new TempDir();
        var file = dir.Write("m.conf", "listener 1883\nmax_qos 9\n");
        var e = Assert.Throws<ConfigException>(() => BrokerArguments.Parse(["-c", file, "--test-config"]).ToBrokerConfig());
        Assert.Equal($"{file}:2: 'max_qos' must be 0, 1 or 2, got '9'", e.Message);
    }

    [Fact]
    public void Usage_MentionsEveryFlag()
    {
        foreach (var flag in new[] { "-c", "--config-file", "-d", "--daemon", "-h", "--help", "-p", "--port", "-v", "--verbose", "--test-config", "--version" })
        {
            Assert.Contains(flag, BrokerArguments.Usage);
        }
    }
}
