namespace Midge.Config.Tests;

/// <summary><c>protocol http</c> (the management API), <c>api_key_file</c> and <c>api_allow_anonymous</c>.</summary>
public sealed class HttpApiOptionTests
{
    private static ConfigException Fails(string text) =>
        Assert.Throws<ConfigException>(() => ConfigParser.Parse(text, "h.conf"));

    [Fact]
    public void Protocol_http_makes_an_api_listener_with_its_own_anonymous_setting()
    {
        var c = ConfigParser.Parse("listener 1883\nlistener 18083 127.0.0.1\nprotocol http\napi_allow_anonymous true\napi_key_file keys\n", "h.conf");
        Assert.Equal(ListenerProtocol.Mqtt, c.Listeners[0].Protocol);
        Assert.Equal(ListenerProtocol.Http, c.Listeners[1].Protocol);
        Assert.Equal("127.0.0.1", c.Listeners[1].BindAddress);
        Assert.True(c.Listeners[1].ApiAllowAnonymous);
        Assert.False(c.Listeners[0].ApiAllowAnonymous);
        Assert.Equal(Path.GetFullPath("keys"), c.ApiKeyFile);
    }

    [Fact]
    public void Without_options_no_keys_and_no_anonymous_access()
    {
        var c = ConfigParser.Parse("listener 18083\nprotocol http\n", "h.conf");
        Assert.Null(c.ApiKeyFile);
        Assert.False(c.Listeners[0].ApiAllowAnonymous);
    }

    [Fact]
    public void Errors_name_their_line()
    {
        Assert.Equal("h.conf:2: 'api_allow_anonymous' needs 'protocol http' on its listener",
            Fails("listener 1883\napi_allow_anonymous true\n").Message);
        Assert.Equal("h.conf:1: 'api_allow_anonymous' needs a 'listener' line (with 'protocol http') before it",
            Fails("api_allow_anonymous true\n").Message);
        Assert.Contains("'protocol' must be mqtt, websockets or http", Fails("listener 1\nprotocol https\n").Message, StringComparison.Ordinal);
        Assert.Contains("not available on a Unix socket", Fails("listener 0 /tmp/x.sock\nprotocol http\n").Message, StringComparison.Ordinal);
        Assert.Contains("duplicate", Fails("api_key_file a\napi_key_file b\n").Message, StringComparison.OrdinalIgnoreCase);
    }
}
