namespace Midge.Config.Tests;

/// <summary>Listener blocks, the deprecated default listener, local-only mode and per_listener_settings.</summary>
public class ScopeTests
{
    private static BrokerConfig P(string text) => ConfigParser.Parse(text, "m.conf");

    [Fact]
    public void NoListenerAndNoPort_IsLocalOnly_EvenWithOtherOptions()
    {
        var c = P("max_queued_messages 10\nallow_anonymous false\n");
        Assert.True(c.LocalOnlyMode);
        Assert.True(c.EffectiveAllowAnonymous); // Mosquitto 2.0: local-only mode always allows anonymous.
    }

    [Fact]
    public void ListenerOptionsWithoutListener_HaveNoEffect_AndSaySo()
    {
        var c = P("max_connections 5\n");
        Assert.True(c.LocalOnlyMode);
        var n = Assert.Single(c.Notices);
        Assert.Equal(new ConfigSource("m.conf", 1), n.Source);
        Assert.Contains("local-only", n.Message);
    }

    [Fact]
    public void Port_OpensTheDefaultListener()
    {
        var c = P("# old style\nport 1884\n");
        var l = Assert.Single(c.Listeners);
        Assert.Equal(1884, l.Port);
        Assert.Null(l.BindAddress);
        Assert.Equal(new ConfigSource("m.conf", 2), l.Source);
        Assert.False(c.LocalOnlyMode);
        Assert.False(l.AllowAnonymous);
        Assert.Contains(c.Notices, n => n.Message.Contains("'port' is deprecated"));
    }

    [Fact]
    public void BindAddress_OpensTheDefaultListenerOn1883()
    {
        var l = Assert.Single(P("bind_address 127.0.0.1\n").Listeners);
        Assert.Equal(1883, l.Port);
        Assert.Equal("127.0.0.1", l.BindAddress);
        Assert.Equal(new ConfigSource("m.conf", 1), l.Source);
    }

    [Fact]
    public void OptionsBeforeFirstListener_ApplyToTheDefaultListener()
    {
        var c = P("port 1884\nmax_connections 10\nmax_qos 1\nlistener 8883\nmax_connections 20\n");
        Assert.Equal(2, c.Listeners.Count);
        var explicitListener = c.Listeners[0];
        var defaultListener = c.Listeners[1];
        Assert.Equal(8883, explicitListener.Port);
        Assert.Equal(20, explicitListener.MaxConnections);
        Assert.Equal(2, explicitListener.MaxQoS);
        Assert.Equal(1884, defaultListener.Port);
        Assert.Equal(10, defaultListener.MaxConnections);
        Assert.Equal(1, defaultListener.MaxQoS);
        Assert.Equal(new ConfigSource("m.conf", 1), defaultListener.Source);
    }

    [Fact]
    public void ListenerOptionBeforeListener_OpensDefaultListenerOn1883_AsMosquittoDoes()
    {
        var c = P("max_connections 10\nlistener 8883\n");
        Assert.Equal([8883, 1883], c.Listeners.Select(l => l.Port));
        Assert.Equal(new ConfigSource("m.conf", 1), c.Listeners[1].Source);
    }

    [Fact]
    public void DefaultListenerClashingWithAListener_IsAnError()
    {
        var e = Assert.Throws<ConfigException>(() => P("max_connections 10\nlistener 1883\n"));
        Assert.StartsWith("m.conf:1: the default listener (port 1883", e.Message);
        Assert.EndsWith("clashes with listener 1883 at m.conf:2", e.Message);
    }

    [Fact]
    public void OptionThatDoesNotOpenTheDefaultListener_HasNoEffect_AndSaySo()
    {
        var c = P("max_topic_alias 5\nlistener 8883\n");
        var l = Assert.Single(c.Listeners);
        Assert.Equal(10, l.MaxTopicAlias);
        Assert.Contains(c.Notices, n => n.Source.Line == 1 && n.Message.Contains("no effect"));
    }

    [Fact]
    public void SecurityOptions_AreGlobal_AndCopiedToEveryListener()
    {
        var c = P("listener 1883\nallow_anonymous true\nlistener 1884\nauto_id_prefix x-\nallow_zero_length_clientid false\n");
        Assert.False(c.PerListenerSettings);
        Assert.True(c.AllowAnonymous);
        Assert.All(c.Listeners, l =>
        {
            Assert.True(l.AllowAnonymous);
            Assert.Equal("x-", l.AutoIdPrefix);
            Assert.False(l.AllowZeroLengthClientId);
        });
    }

    [Fact]
    public void PerListenerSettings_KeepsSecurityOptionsPerListener()
    {
        var c = P("per_listener_settings true\nlistener 1883 127.0.0.1\nallow_anonymous true\nauto_id_prefix local-\nlistener 1884\nallow_zero_length_clientid false\n");
        Assert.True(c.PerListenerSettings);
        var (local, remote) = (c.Listeners[0], c.Listeners[1]);
        Assert.True(local.AllowAnonymous);
        Assert.Equal("local-", local.AutoIdPrefix);
        Assert.True(local.AllowZeroLengthClientId);
        Assert.False(remote.AllowAnonymous); // unset: Mosquitto 2.0 defaults to false
        Assert.Equal("auto-", remote.AutoIdPrefix);
        Assert.False(remote.AllowZeroLengthClientId);
        Assert.Null(c.AllowAnonymous);
    }

    [Fact]
    public void PerListenerSettings_CannotBeUnset()
    {
        Assert.True(P("per_listener_settings true\nper_listener_settings false\n").PerListenerSettings);
    }

    [Fact]
    public void PerListenerSettingsFalse_AfterSecurityOptions_IsFine()
    {
        Assert.False(P("allow_anonymous true\nper_listener_settings false\n").PerListenerSettings);
    }

    [Fact]
    public void MountPoint_SetTwiceOnOneListener_IsAnError_ButFineOnTwo()
    {
        var c = P("listener 1883\nmount_point a/\nlistener 1884\nmount_point b/\n");
        Assert.Equal(["a/", "b/"], c.Listeners.Select(l => l.MountPoint));
        var e = Assert.Throws<ConfigException>(() => P("listener 1883\nmount_point a/\nmount_point b/\n"));
        Assert.Equal("m.conf:3: duplicate 'mount_point' (already set at m.conf:2)", e.Message);
    }

    [Fact]
    public void SameListenerPortOnDifferentAddresses_IsFine()
    {
        var c = P("listener 1883 127.0.0.1\nlistener 1883 ::1\n");
        Assert.Equal(2, c.Listeners.Count);
    }
}
