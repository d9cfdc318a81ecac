using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

public class WillTests
{
    private static Action<ConnectPacket> WithWill(string topic, string payload, uint? delay = null, bool retain = false) => c =>
    {
        c.Will = new WillMessage { Topic = topic, Payload = System.Text.Encoding.UTF8.GetBytes(payload), QoS = QoS.AtLeastOnce, Retain = retain };
        if (delay is { } d) c.Will.Properties = new MqttProperties { WillDelayInterval = d };
    };

    private static (ChannelHarness H, RecordingOutput Watcher) Watching()
    {
        var h = new ChannelHarness();
        var (w, output, _) = h.Connect("watcher");
        w.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtLeastOnce)));
        output.Take();
        return (h, output);
    }

    [Fact]
    public void MQTT_3_1_2_8_WillPublishedOnAbnormalClose()
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("dying", configure: WithWill("will/dying", "gone"));
        c.OnConnectionClosed();
        Assert.Equal("gone", Assert.Single(watcher.Publishes()).Payload);
    }

    [Fact]
    public void MQTT_3_1_2_10_WillDiscardedOnNormalDisconnect()
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("polite", configure: WithWill("will/polite", "gone"));
        c.Handle(new DisconnectPacket());
        c.OnConnectionClosed();
        Assert.Empty(watcher.Publishes());
    }

    [Fact]
    public void V5_DisconnectWithWillMessage_PublishesWill()
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("asks", configure: WithWill("will/asks", "gone"));
        c.Handle(new DisconnectPacket { ReasonCode = ReasonCode.DisconnectWithWillMessage });
        c.OnConnectionClosed();
        Assert.Single(watcher.Publishes());
    }

    [Fact]
    public void WillOnProtocolError_IsPublished()
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("bad", configure: WithWill("will/bad", "gone"));
        c.OnProtocolError(new MqttProtocolException(ReasonCode.MalformedPacket, "junk"));
        c.OnConnectionClosed();
        Assert.Single(watcher.Publishes());
    }

    [Fact]
    public void MQTT_3_1_3_9_WillDelay_SentAfterDelay()
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("late", cleanStart: false, configure: c =>
        {
            WithWill("will/late", "gone", delay: 5)(c);
            c.GetOrCreateProperties().SessionExpiryInterval = 60;
        });
        c.OnConnectionClosed();
        Assert.Empty(watcher.Publishes());
        h.Time.Advance(TimeSpan.FromSeconds(6));
        h.Broker.Tick();
        Assert.Single(watcher.Publishes());
    }

    [Fact]
    public void MQTT_3_1_3_9_WillDelay_CancelledByReconnect()
    {
        var (h, watcher) = Watching();
        Action<ConnectPacket> setup = c =>
        {
            WithWill("will/back", "gone", delay: 5)(c);
            c.GetOrCreateProperties().SessionExpiryInterval = 60;
        };
        var (c, _, _) = h.Connect("back", cleanStart: false, configure: setup);
        c.OnConnectionClosed();
        h.Time.Advance(TimeSpan.FromSeconds(2));
        h.Connect("back", cleanStart: false, configure: cp => cp.GetOrCreateProperties().SessionExpiryInterval = 60);
        h.Time.Advance(TimeSpan.FromSeconds(10));
        h.Broker.Tick();
        Assert.Empty(watcher.Publishes());
    }

    [Fact]
    public void WillDelay_WithSessionExpiryZero_WaitsForTheWholeDelay_AsMosquittoDoes()
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("later", configure: WithWill("will/later", "gone", delay: 30));
        c.OnConnectionClosed();
        Assert.False(h.Broker.Clients.TryGet("later", out _)); // the session ended with its connection
        h.Time.Advance(TimeSpan.FromSeconds(29));
        h.Broker.Tick();
        Assert.Empty(watcher.Publishes());
        h.Time.Advance(TimeSpan.FromSeconds(1));
        h.Broker.Tick();
        Assert.Equal("gone", Assert.Single(watcher.Publishes()).Payload);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WillDelay_WithSessionExpiryZero_CancelledWhenTheClientIdComesBack(bool cleanStart)
    {
        var (h, watcher) = Watching();
        var (c, _, _) = h.Connect("back", configure: WithWill("will/back", "gone", delay: 5));
        c.OnConnectionClosed();
        h.Time.Advance(TimeSpan.FromSeconds(2));
        var (_, _, connack) = h.Connect("back", cleanStart: cleanStart);
        Assert.False(connack.SessionPresent);
        h.Time.Advance(TimeSpan.FromSeconds(10));
        h.Broker.Tick();
        Assert.Empty(watcher.Publishes());
        Assert.Equal(0, h.Broker.DelayedWillCount);
    }

    [Fact]
    public void RetainedWill_IsStored()
    {
        var (h, _) = Watching();
        var (c, _, _) = h.Connect("r", configure: WithWill("will/r", "offline", retain: true));
        c.OnConnectionClosed();
        Assert.Equal(1, h.Broker.RetainedCount);
    }

    [Fact]
    public void WillPayloadOverMessageSizeLimit_RefusesTheConnect()
    {
        var h = new ChannelHarness(new BrokerConfig { MessageSizeLimit = 4 });
        Assert.Equal(ReasonCode.PacketTooLarge, h.Connect("big", configure: WithWill("will/t", "12345")).ConnAck.ReasonCode);
        var v3 = h.Connect("big3", ProtocolVersion.V311, configure: WithWill("will/t", "12345")).ConnAck;
        Assert.Equal(ConnectReturnCode.NotAuthorized, v3.V3ReturnCode);
        Assert.Equal(ReasonCode.Success, h.Connect("fits", configure: WithWill("will/t", "1234")).ConnAck.ReasonCode);
    }
}
