namespace Midge.Config.Tests;

public class IncludeAndFullFileTests
{
    [Fact]
    public void RealisticConfig_WithIncludeDir()
    {
        using var dir = new TempDir();
        var main = dir.Write("mosquitto.conf",
            """
            # Place your local configuration in /etc/mosquitto/conf.d/
            #
            # A full description of the configuration file is at
            # /usr/share/doc/mosquitto/examples/mosquitto.conf.example

            per_listener_settings false
            pid_file /run/mosquitto/mosquitto.pid
            persistence false
            user mosquitto

            log_dest file /var/log/mosquitto/mosquitto.log
            log_dest stdout
            log_type error
            log_type warning
            log_type notice
            log_timestamp true
            log_timestamp_format %Y-%m-%dT%H:%M:%S
            connection_messages true

            max_inflight_messages 40
            max_queued_messages 5000
            max_queued_bytes 10485760
            max_packet_size 1048576
            max_keepalive 300
            persistent_client_expiration 2w
            sys_interval 30
            allow_anonymous true

            include_dir conf.d
            """);
        dir.Write("conf.d/20-tenant.conf",
            """
            listener 1884 127.0.0.1
            mount_point tenant/
            max_connections 50
            """);
        dir.Write("conf.d/10-public.conf",
            """
            listener 1883
            socket_domain ipv4
            max_qos 1
            max_topic_alias 20
            """);
        dir.Write("conf.d/README", "not a conf file: never read\n");
        dir.Write("conf.d/30-old.conf.bak", "nonsense here\n");

        var c = ConfigParser.ParseFile(main);

        Assert.Equal([main, Path.Combine(dir.Path, "conf.d", "10-public.conf"), Path.Combine(dir.Path, "conf.d", "20-tenant.conf")], c.Files);
        Assert.Equal(2, c.Listeners.Count);
        var pub = c.Listeners[0];
        Assert.Equal(1883, pub.Port);
        Assert.Null(pub.BindAddress);
        Assert.Equal(SocketDomain.IPv4, pub.SocketDomain);
        Assert.Equal(1, pub.MaxQoS);
        Assert.Equal(20, pub.MaxTopicAlias);
        Assert.True(pub.AllowAnonymous);
        Assert.Equal(new ConfigSource(c.Files[1], 1), pub.Source);
        var tenant = c.Listeners[1];
        Assert.Equal(1884, tenant.Port);
        Assert.Equal("127.0.0.1", tenant.BindAddress);
        Assert.Equal("tenant/", tenant.MountPoint);
        Assert.Equal(50, tenant.MaxConnections);
        Assert.True(tenant.AllowAnonymous);
        Assert.Equal(new ConfigSource(c.Files[2], 1), tenant.Source);

        Assert.Equal("/run/mosquitto/mosquitto.pid", c.PidFile);
        Assert.Equal([new LogDestination(LogDestinationKind.File, "/var/log/mosquitto/mosquitto.log"), new LogDestination(LogDestinationKind.Stdout)], c.LogDestinations);
        Assert.Equal(LogTypes.Error | LogTypes.Warning | LogTypes.Notice, c.LogTypes);
        Assert.Equal("%Y-%m-%dT%H:%M:%S", c.LogTimestampFormat);
        Assert.Equal(40, c.MaxInflightMessages);
        Assert.Equal(5000, c.MaxQueuedMessages);
        Assert.Equal(10485760, c.MaxQueuedBytes);
        Assert.Equal(1048576, c.MaxPacketSize);
        Assert.Equal(300, c.MaxKeepalive);
        Assert.Equal(TimeSpan.FromDays(14), c.PersistentClientExpiration);
        Assert.Equal(30, c.SysInterval);
        Assert.False(c.LocalOnlyMode);
        Assert.True(c.EffectiveAllowAnonymous);

        // Pure and repeatable: a second read (as on SIGHUP) gives the same result.
        var again = ConfigParser.ParseFile(main);
        Assert.Equal(c.Listeners, again.Listeners);
        Assert.Equal(c.Files, again.Files);
    }

    [Fact]
    public void IncludedFile_StartsOutsideAnyListenerBlock_AsMosquittoDoes()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "listener 8883\ninclude_dir d\nmax_qos 1\n");
        dir.Write("d/a.conf", "max_qos 0\n");
        var c = ConfigParser.ParseFile(main);
        // "max_qos 0" at the top of a.conf applies to the default listener, which therefore opens on 1883.
        Assert.Equal([8883, 1883], c.Listeners.Select(l => l.Port));
        Assert.Equal(1, c.Listeners[0].MaxQoS); // the main file resumes its own listener block after include_dir
        Assert.Equal(0, c.Listeners[1].MaxQoS);
        Assert.Equal(new ConfigSource(Path.Combine(dir.Path, "d", "a.conf"), 1), c.Listeners[1].Source);
    }

    [Fact]
    public void IncludeDir_InAnIncludedFile_IsIgnoredWithANotice()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "include_dir d\n");
        var inc = dir.Write("d/a.conf", "include_dir e\n");
        dir.Write("d/e/b.conf", "max_qos 1\n");
        var c = ConfigParser.ParseFile(main);
        Assert.Equal(2, c.Files.Count);
        var n = Assert.Single(c.Notices);
        Assert.Equal(new ConfigSource(inc, 1), n.Source);
    }

    [Fact]
    public void IncludeDir_SortsFilesCaseInsensitively()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "include_dir d\n");
        dir.Write("d/b.conf", "log_type debug\n");
        dir.Write("d/A.conf", "log_type error\n");
        dir.Write("d/c.conf", "log_type none\nlog_type warning\n");
        var c = ConfigParser.ParseFile(main);
        Assert.Equal(["A.conf", "b.conf", "c.conf"], c.Files.Skip(1).Select(Path.GetFileName));
        Assert.Equal(LogTypes.Warning, c.LogTypes);
    }

    [Fact]
    public void IncludeDir_Absolute_AndEmptyDirectory()
    {
        using var dir = new TempDir();
        var empty = Directory.CreateDirectory(Path.Combine(dir.Path, "empty")).FullName;
        var main = dir.Write("m.conf", $"include_dir {empty}\nlistener 1883\n");
        var c = ConfigParser.ParseFile(main);
        Assert.Equal([main], c.Files);
        Assert.Single(c.Listeners);
    }

    [Fact]
    public void IncludeDir_ContainingTheMainFile_IsAnError()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "include_dir .\n");
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(main));
        Assert.Equal($"{main}:1: include_dir '.' contains the main configuration file", e.Message);
    }

    [Fact]
    public void DuplicateListenerAcrossFiles_NamesBothPlaces()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "listener 1883\ninclude_dir d\n");
        var inc = dir.Write("d/a.conf", "\nlistener 1883\n");
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(main));
        Assert.Equal($"{inc}:2: listener 1883 is already defined at {main}:1", e.Message);
    }

    [Fact]
    public void CrLfFiles_AreRead()
    {
        var c = ConfigParser.Parse("listener 1883\r\nmax_qos 1\r\n", "w.conf");
        Assert.Equal(1, Assert.Single(c.Listeners).MaxQoS);
    }
}
