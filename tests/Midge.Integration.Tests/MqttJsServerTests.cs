using Midge.TestKit;
using static Midge.Integration.Tests.MqttJs;

namespace Midge.Integration.Tests;

/// <summary>MQTT.js against brokers started for one test: restricted capabilities, shutdown.</summary>
public sealed class MqttJsServerTests
{
    [Fact]
    public async Task Connack_tells_the_capabilities_max_qos_retain_available_topic_alias_and_receive_maximum()
    {
        await using var broker = await MidgeProcess.StartAsync("max_qos 1", "retain_available false", "max_inflight_messages 7", "max_topic_alias 4");

        var r = await RunAsync("server.mjs", broker.Port, "capabilities");

        Assert.Equal(1, r.GetProperty("maximum_qos").GetInt32());
        Assert.False(r.GetProperty("retain_available").GetBoolean());
        Assert.Equal(4, r.GetProperty("topic_alias_maximum").GetInt32());
        Assert.Equal(7, r.GetProperty("receive_maximum").GetInt32());
    }

    [Fact]
    public async Task Sigterm_disconnects_mqtt5_clients_with_0x8B()
    {
        await using var broker = await MidgeProcess.StartAsync();
        using var peer = Start("server.mjs", broker.Port, "shutdown");
        Assert.True(await peer.WaitForOutputAsync("ready", TimeSpan.FromSeconds(10)), peer.Stderr);

        broker.Signal(Signals.SIGTERM);

        var r = Parse(await peer.WaitAsync(PeerTimeout));
        Assert.Equal(0x8B, r.GetProperty("disconnect").GetInt32());
    }
}
