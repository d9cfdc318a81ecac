using System.Globalization;
using System.Text.Json;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// MQTT 5 subscriptions with paho-mqtt 1.6 (peers/mqtt5_subscriptions.py), a second client implementation beside
/// the MQTT.js tests. Session expiry with paho is in <see cref="PahoTests"/> (peers/mqtt5.py).
/// </summary>
[Trait("Suite", "Protocol")] // also run through a three-node cluster (run-tests.sh, BrokerUnderTest)
public sealed class PahoMqtt5Tests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task Subscription_identifiers_no_local_and_shared_subscription_fairness()
    {
        var r = await PeerProcess.RunAsync(PeerProcess.Python,
            [Path.Combine(AppContext.BaseDirectory, "peers", "mqtt5_subscriptions.py"), fixture.Port.ToString(CultureInfo.InvariantCulture)],
            TimeSpan.FromSeconds(30), Path.Combine(AppContext.BaseDirectory, "peers"));
        Assert.True(r.ExitCode == 0 && !r.TimedOut, r.ToString());
        using var doc = JsonDocument.Parse(r.Lines.Last());
        var e = doc.RootElement;

        Assert.Equal(1, e.GetProperty("ids_messages").GetInt32());
        Assert.Equal([1, 2], e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.True(e.GetProperty("no_local_subscribed").GetBoolean());
        Assert.Equal(["theirs"], e.GetProperty("no_local_received").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(30, e.GetProperty("shared_received").GetInt32());
        Assert.Equal(30, e.GetProperty("shared_unique").GetInt32());
        Assert.All(e.GetProperty("shared_counts").EnumerateArray(), n => Assert.InRange(n.GetInt32(), 1, 28));
    }
}
