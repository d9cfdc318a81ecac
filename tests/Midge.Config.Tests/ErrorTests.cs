namespace Midge.Config.Tests;

/// <summary>Every error kind, with the exact file:line in the message.</summary>
public class ErrorTests
{
    private static ConfigException Fails(string text, string file = "/etc/m.conf") =>
        Assert.Throws<ConfigException>(() => ConfigParser.Parse(text, file));

    [Theory]
    // unknown
    [InlineData("max_queud_messages 10", "unknown option 'max_queud_messages'")]
    [InlineData("Listener 1883", "unknown option 'Listener'")]
    // missing value
    [InlineData("max_qos", "option 'max_qos' needs a value")]
    [InlineData("max_qos # comment only", "option 'max_qos' needs a value")]
    [InlineData("pid_file", "option 'pid_file' needs a value")]
    [InlineData("listener", "option 'listener' needs a port")]
    [InlineData("log_dest", "option 'log_dest' needs a value")]
    [InlineData("log_dest file", "'log_dest file' needs a file path")]
    [InlineData("log_type", "option 'log_type' needs a value")]
    [InlineData("include_dir", "option 'include_dir' needs a value")]
    // extra value
    [InlineData("max_qos 1 2", "option 'max_qos' takes a single value, got extra '2'")]
    [InlineData("allow_anonymous true false", "option 'allow_anonymous' takes a single value, got extra 'false'")]
    [InlineData("log_dest stdout stderr", "option 'log_dest' takes a single value, got extra 'stderr'")]
    [InlineData("listener 1883 0.0.0.0 extra", "option 'listener' takes a port and an optional bind address, got extra 'extra'")]
    // bad value
    [InlineData("allow_anonymous yes", "'allow_anonymous' must be true or false, got 'yes'")]
    [InlineData("allow_anonymous True", "'allow_anonymous' must be true or false, got 'True'")]
    [InlineData("max_keepalive abc", "'max_keepalive' must be an integer, got 'abc'")]
    [InlineData("max_keepalive 10s", "'max_keepalive' must be an integer, got '10s'")]
    [InlineData("listener http", "'listener' must be an integer, got 'http'")]
    [InlineData("socket_domain ipv5", "'socket_domain' must be ipv4 or ipv6, got 'ipv5'")]
    [InlineData("protocol mqttsn", "'protocol' must be mqtt, websockets or http, got 'mqttsn'")]
    [InlineData("log_dest console", "'log_dest' must be stdout, stderr, file PATH, syslog, topic, dlt or none, got 'console'")]
    [InlineData("log_type verbose", "'log_type' must be one of debug, error, warning, notice, information, subscribe, unsubscribe, websockets, all, none; got 'verbose'")]
    [InlineData("persistent_client_expiration 3600s", "'persistent_client_expiration' must be a number followed by h, d, w, m (30 days) or y (365 days), such as 2h or 14d, got '3600s'")]
    [InlineData("persistent_client_expiration 3600", "'persistent_client_expiration' must be a number followed by h, d, w, m (30 days) or y (365 days), such as 2h or 14d, got '3600'")]
    [InlineData("persistent_client_expiration 0d", "'persistent_client_expiration' must be a number followed by h, d, w, m (30 days) or y (365 days), such as 2h or 14d, got '0d'")]
    [InlineData("persistent_client_expiration -1d", "'persistent_client_expiration' must be a number followed by h, d, w, m (30 days) or y (365 days), such as 2h or 14d, got '-1d'")]
    [InlineData("listener 1883\nmount_point a/+/b", "'mount_point' must not contain the wildcards + or #, got 'a/+/b'")]
    // out of range
    [InlineData("max_qos 3", "'max_qos' must be 0, 1 or 2, got '3'")]
    [InlineData("max_qos -1", "'max_qos' must be 0, 1 or 2, got '-1'")]
    [InlineData("max_keepalive 65536", "'max_keepalive' must be between 0 and 65535, got '65536'")]
    [InlineData("max_keepalive -1", "'max_keepalive' must be between 0 and 65535, got '-1'")]
    [InlineData("max_topic_alias 65536", "'max_topic_alias' must be between 0 and 65535, got '65536'")]
    [InlineData("sys_interval -1", "'sys_interval' must be between 0 and 65535, got '-1'")]
    [InlineData("max_packet_size 19", "'max_packet_size' must be between 20 and 2147483647, got '19'")]
    [InlineData("max_packet_size 0", "'max_packet_size' must be between 20 and 2147483647, got '0'")]
    [InlineData("max_inflight_messages 65536", "'max_inflight_messages' must be at most 65535, got '65536'")]
    [InlineData("memory_limit -1", "'memory_limit' must not be negative, got '-1'")]
    [InlineData("message_size_limit 268435456", "'message_size_limit' must be between 0 and 268435455, got '268435456'")]
    [InlineData("otlp_endpoint localhost:4318", "'otlp_endpoint' must be an http:// or https:// URL, got 'localhost:4318'")]
    [InlineData("otlp_endpoint ftp://collector/", "'otlp_endpoint' must be an http:// or https:// URL, got 'ftp://collector/'")]
    [InlineData("otlp_endpoint", "option 'otlp_endpoint' needs a value")]
    [InlineData("otlp_protocol http/json", "'otlp_protocol' must be grpc or http/protobuf, got 'http/json'")]
    [InlineData("otlp_interval 0", "'otlp_interval' must be between 1 and 86400 seconds, got '0'")]
    [InlineData("otlp_interval 10s", "'otlp_interval' must be an integer, got '10s'")]
    [InlineData("log_format yaml", "'log_format' must be text or json, got 'yaml'")]
    [InlineData("log_format JSON", "'log_format' must be text or json, got 'JSON'")]
    [InlineData("log_facility 8", "'log_facility' must be between 0 and 7 (local0 to local7), got '8'")]
    [InlineData("port 0", "'port' must be between 1 and 65535, got '0'")]
    [InlineData("port 65536", "'port' must be between 1 and 65535, got '65536'")]
    [InlineData("listener 65536", "'listener' port must be between 1 and 65535, got '65536'")]
    [InlineData("listener -1", "'listener' port must be between 1 and 65535, got '-1'")]
    [InlineData("listener 0", "a listener with port 0 must give a Unix socket path")]
    // structure
    [InlineData("mount_point a/", "'mount_point' needs a 'listener' line before it")]
    [InlineData("pid_file /a\npid_file /b", "duplicate 'pid_file' (already set at /etc/m.conf:1)")]
    [InlineData("log_dest file /a\nlog_dest file /b", "duplicate 'log_dest file' (already set at /etc/m.conf:1); only one log file is allowed")]
    [InlineData("listener 1883\nlistener 1883", "listener 1883 is already defined at /etc/m.conf:1")]
    [InlineData("allow_anonymous true\nper_listener_settings true", "'per_listener_settings true' must come before any security option (first one at /etc/m.conf:1)")]
    public void Error_NamesFileLineAndReason(string text, string reason)
    {
        var e = Fails("# header\n" + text + "\n");
        var lastLine = text.Split('\n').Length + 1;
        Assert.Equal(new ConfigSource("/etc/m.conf", lastLine), e.Location);
        Assert.Equal(reason.Replace("/etc/m.conf:1", "/etc/m.conf:2"), e.Reason);
        Assert.Equal($"/etc/m.conf:{lastLine}: {e.Reason}", e.Message);
    }

    [Fact]
    public void MissingFile_IsAnError()
    {
        var path = Path.Combine(Path.GetTempPath(), "midge-does-not-exist-" + Guid.NewGuid() + ".conf");
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(path));
        Assert.StartsWith($"{path}: cannot read configuration file '{path}'", e.Message);
    }

    [Fact]
    public void DirectoryGivenAsFile_IsAnError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(dir.Path));
        Assert.Equal($"{dir.Path}: configuration file '{dir.Path}' is a directory", e.Message);
    }

    [Fact]
    public void MissingIncludeDir_IsAnErrorAtTheIncludeLine()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "listener 1883\n\ninclude_dir nowhere\n");
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(main));
        Assert.Equal($"{main}:3: include_dir 'nowhere' does not exist or is not a directory", e.Message);
    }

    [Fact]
    public void ErrorInsideIncludedFile_NamesThatFile()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "listener 1883\ninclude_dir conf.d\n");
        dir.Write("conf.d/10-ok.conf", "max_queued_messages 10\n");
        var bad = dir.Write("conf.d/20-bad.conf", "# limits\n\nmax_qos 7\n");
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(main));
        Assert.Equal(new ConfigSource(bad, 3), e.Location);
        Assert.Equal($"{bad}:3: 'max_qos' must be 0, 1 or 2, got '7'", e.Message);
    }

    [Fact]
    public void UnknownOptionInsideIncludedFile_NamesThatFile()
    {
        using var dir = new TempDir();
        var main = dir.Write("m.conf", "include_dir conf.d\n");
        var bad = dir.Write("conf.d/x.conf", "max_queud_messages 10\n");
        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseFile(main));
        Assert.Equal($"{bad}:1: unknown option 'max_queud_messages'", e.Message);
    }
}
