namespace Midge.Config.Tests;

/// <summary><c>protocol websockets</c> and the options that go with it: http_dir, websockets_headers_size,
/// websockets_log_level.</summary>
public sealed class WebSocketOptionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ConfigException Fails(string text) =>
        Assert.Throws<ConfigException>(() => ConfigParser.Parse(text, "w.conf"));

    [Fact]
    public void Protocol_websockets_makes_a_WebSocket_listener_next_to_mqtt_ones()
    {
        var c = ConfigParser.Parse("listener 1883\nprotocol mqtt\nlistener 9001\nprotocol websockets\n", "w.conf");
        Assert.Equal(ListenerProtocol.Mqtt, c.Listeners[0].Protocol);
        Assert.Equal(ListenerProtocol.WebSockets, c.Listeners[1].Protocol);
        Assert.Equal(9001, c.Listeners[1].Port);
        Assert.Null(c.Listeners[1].HttpDir);
        Assert.Equal(0, c.WebSocketsHeadersSize);
    }

    [Fact]
    public void Http_dir_is_kept_as_a_full_path_on_its_listener()
    {
        string www = Path.Combine(_dir.Path, "www");
        Directory.CreateDirectory(www);
        var c = ConfigParser.Parse($"listener 9001\nhttp_dir {www}\nprotocol websockets\nlistener 9002\nprotocol websockets\n", "w.conf");
        Assert.Equal(www, c.Listeners[0].HttpDir);
        Assert.Null(c.Listeners[1].HttpDir);
    }

    [Fact]
    public void Http_dir_errors_name_their_line()
    {
        string missing = Path.Combine(_dir.Path, "nope");
        Assert.Equal($"w.conf:3: 'http_dir' {missing} is not a directory",
            Fails($"listener 9001\nprotocol websockets\nhttp_dir {missing}\n").Message);
        Assert.Equal("w.conf:2: 'http_dir' needs 'protocol websockets' on its listener",
            Fails($"listener 1883\nhttp_dir {_dir.Path}\n").Message);
        Assert.Equal($"w.conf:4: duplicate 'http_dir' (already set at w.conf:3)",
            Fails($"listener 9001\nprotocol websockets\nhttp_dir {_dir.Path}\nhttp_dir {_dir.Path}\n").Message);
    }

    [Fact]
    public void Websockets_on_a_Unix_socket_is_refused()
    {
        Assert.Equal("w.conf:2: 'protocol websockets' is not available on a Unix socket listener (listener 0)",
            Fails("listener 0 /tmp/m.sock\nprotocol websockets\n").Message);
    }

    [Fact]
    public void Headers_size_is_global_and_bounded()
    {
        var c = ConfigParser.Parse("websockets_headers_size 8192\nlistener 9001\nprotocol websockets\n", "w.conf");
        Assert.Equal(8192, c.WebSocketsHeadersSize);
        Assert.Equal("w.conf:1: 'websockets_headers_size' must be between 0 and 1048576 bytes, got '-1'",
            Fails("websockets_headers_size -1\n").Message);
        Assert.Equal("w.conf:1: 'websockets_headers_size' must be an integer, got 'big'",
            Fails("websockets_headers_size big\n").Message);
    }

    [Fact]
    public void Log_level_is_accepted_with_a_notice()
    {
        var c = ConfigParser.Parse("listener 9001\nprotocol websockets\nwebsockets_log_level 255\n", "w.conf");
        var notice = Assert.Single(c.Notices);
        Assert.Equal(3, notice.Source.Line);
        Assert.Contains("'websockets_log_level' has no effect", notice.Message, StringComparison.Ordinal);
        Assert.Equal("w.conf:1: 'websockets_log_level' must be a log level (a number), got '-3'",
            Fails("websockets_log_level -3\n").Message);
    }
}
