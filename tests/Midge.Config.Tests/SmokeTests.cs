using Midge.Config;

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
}
