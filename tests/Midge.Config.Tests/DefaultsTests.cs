namespace Midge.Config.Tests;

public class DefaultsTests
{
    [Fact]
    public void Defaults_MatchMosquitto()
    {
        var c = new BrokerConfig();
        Assert.Equal(20, c.MaxInflightMessages);
        Assert.Equal(1000, c.MaxQueuedMessages);
        Assert.True(c.LocalOnlyMode);
    }

    [Fact]
    public void EmptyFile_IsMosquittoDefaults_InLocalOnlyMode()
    {
        var c = ConfigParser.Parse("# nothing here\n\n   \n", "m.conf");
        Assert.True(c.LocalOnlyMode);
        Assert.Empty(c.Listeners);
        Assert.Equal([1883], c.LocalOnlyPorts);
        Assert.True(c.EffectiveAllowAnonymous);
        Assert.Null(c.AllowAnonymous);
        Assert.True(c.AllowZeroLengthClientId);
        Assert.Equal("auto-", c.AutoIdPrefix);
        Assert.Empty(c.ClientIdPrefixes);
        Assert.False(c.CheckRetainSource);
        Assert.True(c.ConnectionMessages);
        Assert.False(c.PerListenerSettings);
        Assert.Equal(0, c.MaxInflightBytes);
        Assert.Equal(20, c.MaxInflightMessages);
        Assert.Equal(65535, c.MaxKeepalive);
        Assert.Equal(0, c.MaxPacketSize);
        Assert.Equal(64L * 1024 * 1024, c.MaxQueuedBytes); // Mosquitto: no limit; a documented bound here
        Assert.Equal(1000, c.MaxQueuedMessages);
        Assert.Equal(0, c.MemoryLimit);
        Assert.Equal(0, c.MessageSizeLimit);
        Assert.Null(c.PersistentClientExpiration);
        Assert.False(c.QueueQoS0Messages);
        Assert.True(c.RetainAvailable);
        Assert.False(c.SetTcpNoDelay);
        Assert.False(c.UpgradeOutgoingQoS);
        Assert.Equal(10, c.SysInterval);
        Assert.Null(c.PidFile);
        Assert.Equal("mosquitto", c.User);
        Assert.Equal([new LogDestination(LogDestinationKind.Stderr)], c.LogDestinations);
        Assert.Equal(LogTypes.Error | LogTypes.Warning | LogTypes.Notice | LogTypes.Information, c.LogTypes);
        Assert.True(c.LogTimestamp);
        Assert.Null(c.LogTimestampFormat);
        Assert.Equal(LogFormat.Text, c.LogFormat);
        Assert.Null(c.OtlpEndpoint);
        Assert.Equal(OtlpProtocol.HttpProtobuf, c.OtlpProtocol);
        Assert.Equal(60, c.OtlpIntervalSeconds);
        Assert.Null(c.LogFacility);
        Assert.True(c.AllowDuplicateMessages);
        Assert.Equal(["m.conf"], c.Files);
        Assert.Empty(c.Notices);
    }

    [Fact]
    public void ListenerDefaults_MatchMosquitto()
    {
        var l = Assert.Single(ConfigParser.Parse("listener 1883\n", "m.conf").Listeners);
        Assert.Equal(1883, l.Port);
        Assert.Null(l.BindAddress);
        Assert.Null(l.BindInterface);
        Assert.Equal(SocketDomain.Any, l.SocketDomain);
        Assert.Equal(ListenerProtocol.Mqtt, l.Protocol);
        Assert.Equal(-1, l.MaxConnections);
        Assert.Equal(2, l.MaxQoS);
        Assert.Equal(10, l.MaxTopicAlias);
        Assert.Null(l.MountPoint);
        Assert.False(l.UseUsernameAsClientId);
        Assert.False(l.AllowAnonymous); // Mosquitto 2.0: a listener without allow_anonymous refuses anonymous.
        Assert.True(l.AllowZeroLengthClientId);
        Assert.Equal("auto-", l.AutoIdPrefix);
        Assert.Equal(new ConfigSource("m.conf", 1), l.Source);
    }

    [Fact]
    public void Parsing_IsRepeatable()
    {
        const string Text = "listener 1883\nlog_type debug\nmax_queued_messages 5\n";
        var a = ConfigParser.Parse(Text, "m.conf");
        var b = ConfigParser.Parse(Text, "m.conf");
        Assert.Equal(a.Listeners, b.Listeners);
        Assert.Equal(a.LogTypes, b.LogTypes);
        Assert.Equal(a.MaxQueuedMessages, b.MaxQueuedMessages);
    }
}
