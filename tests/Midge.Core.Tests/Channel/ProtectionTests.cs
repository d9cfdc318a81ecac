using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>Rate limits and caps in the channel: each one engages, and releases when the clock moves on.</summary>
public class ProtectionTests
{
    private static ChannelHarness With(ClientProtection p) => new(new BrokerConfig { Protection = p });

    private static PublishAckPacket Ack(RecordingOutput output) => Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));

    // ---- max_publish_rate / max_publish_bytes_rate ----

    [Fact]
    public void PublishRate_V5_QoS1_GetsPubAck0x96_ThenPassesAfterOneSecond()
    {
        var h = With(new ClientProtection { MaxPublishRate = 2 });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "1", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "2", QoS.AtLeastOnce, id: 2));
        Assert.All(output.Take().Cast<PublishAckPacket>(), a => Assert.Equal(ReasonCode.Success, a.ReasonCode));

        pub.Handle(ChannelHarness.Publish("t", "3", QoS.AtLeastOnce, id: 3));
        Assert.Equal(ReasonCode.MessageRateTooHigh, Ack(output).ReasonCode);

        h.Time.Advance(TimeSpan.FromMilliseconds(499));
        pub.Handle(ChannelHarness.Publish("t", "4", QoS.AtLeastOnce, id: 4));
        Assert.Equal(ReasonCode.MessageRateTooHigh, Ack(output).ReasonCode);

        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        pub.Handle(ChannelHarness.Publish("t", "5", QoS.AtLeastOnce, id: 5));
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
        Assert.False(output.Closed);
    }

    [Fact]
    public void PublishRate_ChangedByAReload_AppliesToConnectionsAlreadyOpen()
    {
        var h = With(new ClientProtection { MaxPublishRate = 1 });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "1", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "2", QoS.AtLeastOnce, id: 2));
        Assert.Equal([ReasonCode.Success, ReasonCode.MessageRateTooHigh],
            output.Take().Cast<PublishAckPacket>().Select(a => a.ReasonCode));

        // Raised: the same connection may now send three in the same instant.
        h.Broker.Reload(h.Broker.Config with { Protection = new ClientProtection { MaxPublishRate = 3 } });
        for (ushort id = 3; id <= 5; id++) pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: id));
        Assert.All(output.Take().Cast<PublishAckPacket>(), a => Assert.Equal(ReasonCode.Success, a.ReasonCode));
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 6));
        Assert.Equal(ReasonCode.MessageRateTooHigh, Ack(output).ReasonCode);

        // Removed: no limit at all.
        h.Broker.Reload(h.Broker.Config with { Protection = new ClientProtection() });
        for (ushort id = 7; id <= 20; id++) pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: id));
        Assert.All(output.Take().Cast<PublishAckPacket>(), a => Assert.Equal(ReasonCode.Success, a.ReasonCode));
    }

    [Fact]
    public void PublishRate_V5_QoS2_GetsPubRec0x96_AndQoS0IsDroppedAndCounted()
    {
        var h = With(new ClientProtection { MaxPublishRate = 1 });
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, output, _) = h.Connect("p");

        pub.Handle(ChannelHarness.Publish("t", "first"));
        pub.Handle(ChannelHarness.Publish("t", "dropped"));
        pub.Handle(ChannelHarness.Publish("t", "q2", QoS.ExactlyOnce, id: 9));
        var rec = Ack(output);
        Assert.Equal(PacketType.PubRec, rec.Type);
        Assert.Equal(ReasonCode.MessageRateTooHigh, rec.ReasonCode);
        Assert.Equal(["first"], subOut.Publishes().Select(p => p.Payload));
        Assert.Equal(2, h.Broker.Stats.PublishDropped);

        h.Time.Advance(TimeSpan.FromSeconds(1));
        pub.Handle(ChannelHarness.Publish("t", "q2", QoS.ExactlyOnce, id: 9)); // the refused id is free again
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
        Assert.Equal(["q2"], subOut.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void PublishBytesRate_CountsPayloadBytes()
    {
        var h = With(new ClientProtection { MaxPublishBytesRate = 10 });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "123456", QoS.AtLeastOnce, id: 1));
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
        pub.Handle(ChannelHarness.Publish("t", "123456", QoS.AtLeastOnce, id: 2));
        Assert.Equal(ReasonCode.MessageRateTooHigh, Ack(output).ReasonCode);
        pub.Handle(ChannelHarness.Publish("t", "1234", QoS.AtLeastOnce, id: 3)); // exactly what is left
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);

        h.Time.Advance(TimeSpan.FromMilliseconds(600)); // 6 bytes back
        pub.Handle(ChannelHarness.Publish("t", "123456", QoS.AtLeastOnce, id: 4));
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
    }

    [Fact]
    public void PublishBytesRate_MessageLargerThanBurstPassesWhenTheBucketIsFull()
    {
        var h = With(new ClientProtection { MaxPublishBytesRate = 4 });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "12345678", QoS.AtLeastOnce, id: 1));
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
        // The debt of 4 bytes takes two seconds to pay back.
        h.Time.Advance(TimeSpan.FromSeconds(1));
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 2));
        Assert.Equal(ReasonCode.MessageRateTooHigh, Ack(output).ReasonCode);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 3));
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
    }

    [Fact]
    public void PublishRate_V311_DropsButStillAcknowledges()
    {
        var h = With(new ClientProtection { MaxPublishRate = 1 });
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, output, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("t", "a", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "b", QoS.AtLeastOnce, id: 2));
        var acks = output.Take().Cast<PublishAckPacket>().ToList();
        Assert.Equal([1, 2], acks.Select(a => (int)a.PacketId));
        Assert.All(acks, a => Assert.Equal(ReasonCode.Success, a.ReasonCode));
        Assert.Equal(["a"], subOut.Publishes().Select(p => p.Payload));
        Assert.False(output.Closed);
    }

    [Theory]
    [InlineData(ProtocolVersion.V500)]
    [InlineData(ProtocolVersion.V311)]
    public void PublishRate_RefusedEverySecondForTheLimit_Disconnects(ProtocolVersion version)
    {
        var h = With(new ClientProtection { MaxPublishRate = 1, PublishRateDisconnectAfterSeconds = 3 });
        var (pub, output, _) = h.Connect("p", version);
        for (int second = 0; second < 3; second++)
        {
            pub.Handle(ChannelHarness.Publish("t", "ok"));
            pub.Handle(ChannelHarness.Publish("t", "over"));
            Assert.False(output.Closed, $"closed after {second} s");
            h.Time.Advance(TimeSpan.FromSeconds(1));
        }
        pub.Handle(ChannelHarness.Publish("t", "ok"));
        Assert.False(output.Closed);
        pub.Handle(ChannelHarness.Publish("t", "over")); // refused 3 s after the first refusal
        Assert.True(output.Closed);
        if (version == ProtocolVersion.V500)
        {
            Assert.Equal(ReasonCode.MessageRateTooHigh, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
        }
        else
        {
            Assert.Null(output.FinalPacket);
        }
    }

    [Fact]
    public void PublishRate_AQuietSecondRestartsTheRun()
    {
        var h = With(new ClientProtection { MaxPublishRate = 1, PublishRateDisconnectAfterSeconds = 2 });
        var (pub, output, _) = h.Connect("p");
        void Burst()
        {
            pub.Handle(ChannelHarness.Publish("t", "ok"));
            pub.Handle(ChannelHarness.Publish("t", "over"));
        }
        Burst();
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Burst();
        h.Time.Advance(TimeSpan.FromMilliseconds(1500)); // more than a second without a refusal
        Burst();
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Burst();
        Assert.False(output.Closed);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Burst();
        Assert.True(output.Closed);
    }

    [Fact]
    public void PublishRate_DisconnectAfterZeroNeverDisconnects()
    {
        var h = With(new ClientProtection { MaxPublishRate = 1, PublishRateDisconnectAfterSeconds = 0 });
        var (pub, output, _) = h.Connect("p");
        for (int i = 0; i < 20; i++)
        {
            pub.Handle(ChannelHarness.Publish("t", "x"));
            pub.Handle(ChannelHarness.Publish("t", "x"));
            h.Time.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.False(output.Closed);
    }

    [Fact]
    public void PublishRate_OffByDefault()
    {
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p");
        for (ushort i = 1; i <= 500; i++) pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: i));
        Assert.All(output.Take().Cast<PublishAckPacket>(), a => Assert.Equal(ReasonCode.Success, a.ReasonCode));
    }

    // ---- flapping_detect ----

    private static ClientProtection Flapping => new()
    {
        FlappingDetect = true,
        FlappingMaxConnects = 3,
        FlappingWindowSeconds = 10,
        FlappingBanTimeSeconds = 30,
    };

    [Fact]
    public void Flapping_MoreThanMaxConnectsInTheWindow_IsBanned_UntilBanTimePasses()
    {
        var h = With(Flapping);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(ReasonCode.Success, h.Connect("flappy").ConnAck.ReasonCode);
            h.Time.Advance(TimeSpan.FromSeconds(1));
        }
        var (_, output, connack) = h.Connect("flappy");
        Assert.Equal(ReasonCode.Banned, connack.ReasonCode);
        Assert.True(output.Closed);
        Assert.Equal(ReasonCode.Success, h.Connect("steady").ConnAck.ReasonCode); // other ids are not affected

        h.Time.Advance(TimeSpan.FromSeconds(29));
        h.Broker.Tick(); // the sweep must not forget a running ban
        Assert.Equal(ReasonCode.Banned, h.Connect("flappy").ConnAck.ReasonCode);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(ReasonCode.Success, h.Connect("flappy").ConnAck.ReasonCode);
    }

    [Fact]
    public void Flapping_V311_BannedGetsNotAuthorised()
    {
        var h = With(Flapping with { FlappingMaxConnects = 1 });
        Assert.Equal(ReasonCode.Success, h.Connect("f", ProtocolVersion.V311).ConnAck.ReasonCode);
        var connack = h.Connect("f", ProtocolVersion.V311).ConnAck;
        Assert.Equal(ConnectReturnCode.NotAuthorized, connack.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(connack.ReasonCode));
    }

    [Fact]
    public void Flapping_ConnectsSpreadBeyondTheWindow_AreNotBanned()
    {
        var h = With(Flapping);
        for (int i = 0; i < 3; i++) Assert.Equal(ReasonCode.Success, h.Connect("c").ConnAck.ReasonCode);
        h.Time.Advance(TimeSpan.FromSeconds(10));
        h.Broker.Tick();
        for (int i = 0; i < 3; i++) Assert.Equal(ReasonCode.Success, h.Connect("c").ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.Banned, h.Connect("c").ConnAck.ReasonCode);
    }

    [Fact]
    public void Flapping_OffByDefault()
    {
        var h = new ChannelHarness();
        for (int i = 0; i < 50; i++) Assert.Equal(ReasonCode.Success, h.Connect("c").ConnAck.ReasonCode);
    }

    // ---- max_connection_rate at CONNECT, connect_timeout ----

    [Fact]
    public void ConnectionRate_V5_CONNACK0x9F_ThenAcceptedAfterOneSecond()
    {
        var listener = new ListenerConfig { AllowAnonymous = true, Protection = new ListenerProtection { MaxConnectionRate = 2 } };
        var h = new ChannelHarness(listener: listener);
        Assert.Equal(ReasonCode.Success, h.Connect("a").ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.Success, h.Connect("b").ConnAck.ReasonCode);
        var (_, output, connack) = h.Connect("c");
        Assert.Equal(ReasonCode.ConnectionRateExceeded, connack.ReasonCode);
        Assert.True(output.Closed);
        var v3 = h.Connect("d", ProtocolVersion.V311).ConnAck;
        Assert.Equal(ConnectReturnCode.ServerUnavailable, v3.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(v3.ReasonCode));

        h.Time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(ReasonCode.Success, h.Connect("c").ConnAck.ReasonCode);
    }

    [Fact]
    public void ConnectTimeout_ComesFromTheListener()
    {
        var listener = new ListenerConfig { AllowAnonymous = true, Protection = new ListenerProtection { ConnectTimeoutSeconds = 3 } };
        var h = new ChannelHarness(listener: listener);
        var (_, output) = h.Open();
        h.Time.Advance(TimeSpan.FromSeconds(3));
        h.Broker.Tick();
        Assert.False(output.Closed);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        h.Broker.Tick();
        Assert.True(output.Closed);
    }

    [Fact]
    public void ConnectTimeout_DefaultIsTenSeconds()
    {
        var h = new ChannelHarness();
        var (_, output) = h.Open();
        h.Time.Advance(TimeSpan.FromSeconds(10));
        h.Broker.Tick();
        Assert.False(output.Closed);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        h.Broker.Tick();
        Assert.True(output.Closed);
    }

    // ---- max_subscriptions_per_client, max_topic_levels ----

    [Theory]
    [InlineData(ProtocolVersion.V500)]
    [InlineData(ProtocolVersion.V311)]
    public void SubscriptionCap_RefusesBeyondTheCap_AndFreesOnUnsubscribe(ProtocolVersion version)
    {
        var h = With(new ClientProtection { MaxSubscriptionsPerClient = 2 });
        var (sub, output, _) = h.Connect("s", version);
        sub.Handle(ChannelHarness.Subscribe(1, ("a", QoS.AtMostOnce), ("b", QoS.AtMostOnce), ("c", QoS.AtMostOnce)));
        Assert.Equal([ReasonCode.GrantedQoS0, ReasonCode.GrantedQoS0, ReasonCode.QuotaExceeded],
            Assert.IsType<SubAckPacket>(Assert.Single(output.Take())).ReasonCodes);
        // 3.x sees the failure code 0x80: the encoder maps every error to it.
        sub.Handle(ChannelHarness.Subscribe(2, ("a", QoS.AtLeastOnce))); // replacing one held is not a new one
        Assert.Equal([ReasonCode.GrantedQoS1], Assert.IsType<SubAckPacket>(Assert.Single(output.Take())).ReasonCodes);

        sub.Handle(new UnsubscribePacket { PacketId = 3, Filters = ["a"] });
        output.Take();
        sub.Handle(ChannelHarness.Subscribe(4, ("c", QoS.AtMostOnce)));
        Assert.Equal([ReasonCode.GrantedQoS0], Assert.IsType<SubAckPacket>(Assert.Single(output.Take())).ReasonCodes);
    }

    [Fact]
    public void TopicLevels_PublishDeeperThanMax_V5Gets0x90_AndIsNotRouted()
    {
        var h = With(new ClientProtection { MaxTopicLevels = 3 });
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("#", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("a/b/c", "ok", QoS.AtLeastOnce, id: 1));
        Assert.Equal(ReasonCode.Success, Ack(output).ReasonCode);
        pub.Handle(ChannelHarness.Publish("a/b/c/d", "deep", QoS.AtLeastOnce, id: 2));
        Assert.Equal(ReasonCode.TopicNameInvalid, Ack(output).ReasonCode);
        pub.Handle(ChannelHarness.Publish("a/b/c/d", "deep", QoS.ExactlyOnce, id: 3));
        Assert.Equal(ReasonCode.TopicNameInvalid, Ack(output).ReasonCode);
        Assert.Equal(["ok"], subOut.Publishes().Select(p => p.Payload));
    }

    [Theory]
    [InlineData(ProtocolVersion.V500)]
    [InlineData(ProtocolVersion.V311)]
    public void TopicLevels_SubscribeDeeperThanMax_IsRefused(ProtocolVersion version)
    {
        var h = With(new ClientProtection { MaxTopicLevels = 3 });
        var (sub, output, _) = h.Connect("s", version);
        sub.Handle(ChannelHarness.Subscribe(1, ("a/+/#", QoS.AtMostOnce), ("a/b/c/d", QoS.AtMostOnce), ("$share/g/a/b/c", QoS.AtMostOnce)));
        Assert.Equal([ReasonCode.GrantedQoS0, ReasonCode.TopicFilterInvalid, ReasonCode.GrantedQoS0],
            Assert.IsType<SubAckPacket>(Assert.Single(output.Take())).ReasonCodes);
    }
}
