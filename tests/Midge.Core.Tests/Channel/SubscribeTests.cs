using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

public class SubscribeTests
{
    [Fact]
    public void MQTT_3_9_3_GrantedQoSCappedByMaxQoS()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = true, MaxQoS = 1 });
        var (sub, output, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(9, ("a", QoS.ExactlyOnce), ("b", QoS.AtMostOnce)));
        var suback = Assert.IsType<SubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(9, suback.PacketId);
        Assert.Equal([ReasonCode.GrantedQoS1, ReasonCode.GrantedQoS0], suback.ReasonCodes);
    }

    [Fact]
    public void MQTT_3_3_5_1_OverlappingSubscriptions_OneCopyAtHighestQoS()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("a/+", QoS.AtMostOnce), ("a/#", QoS.ExactlyOnce), ("a/b", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("a/b", "x", QoS.ExactlyOnce, id: 1));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal(QoS.ExactlyOnce, got.Fields.QoS);
    }

    [Fact]
    public void V5_OverlappingSubscriptions_CarryEverySubscriptionIdentifier()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s");
        var s1 = ChannelHarness.Subscribe(1, ("a/+", QoS.AtMostOnce));
        s1.GetOrCreateProperties().SubscriptionIdentifiers = [11];
        var s2 = ChannelHarness.Subscribe(2, ("a/#", QoS.AtLeastOnce));
        s2.GetOrCreateProperties().SubscriptionIdentifiers = [22];
        sub.Handle(s1);
        sub.Handle(s2);
        subOut.Take();
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("a/b", "x", QoS.AtLeastOnce, id: 1));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal(QoS.AtLeastOnce, got.Fields.QoS);
        Assert.Equal(new uint[] { 11, 22 }, got.Fields.SubscriptionIdentifiers!.Order());
    }

    [Fact]
    public void MQTT_3_8_3_3_NoLocal_DoesNotEchoOwnMessages()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("me");
        c.Handle(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QoS.AtMostOnce) { NoLocal = true }] });
        output.Take();
        c.Handle(ChannelHarness.Publish("t", "mine"));
        Assert.Empty(output.Publishes());
        var (other, _, _) = h.Connect("other");
        other.Handle(ChannelHarness.Publish("t", "theirs"));
        Assert.Equal("theirs", Assert.Single(output.Publishes()).Payload);
    }

    [Fact]
    public void MQTT_3_8_3_4_NoLocalOnSharedSubscriptionIsProtocolError()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("me");
        c.Handle(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("$share/g/t", QoS.AtMostOnce) { NoLocal = true }] });
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void RetainAsPublished_KeepsRetainFlag()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s");
        c.Handle(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QoS.AtMostOnce) { RetainAsPublished = true }] });
        output.Take();
        var (p, _, _) = h.Connect("p");
        p.Handle(ChannelHarness.Publish("t", "x", retain: true));
        Assert.True(Assert.Single(output.Publishes()).Fields.Retain);
    }

    [Theory]
    [InlineData(RetainHandling.SendAtSubscribe, 1, 1)]
    [InlineData(RetainHandling.SendAtSubscribeIfNew, 1, 0)]
    [InlineData(RetainHandling.DoNotSend, 0, 0)]
    public void RetainHandling_ControlsRetainedOnSubscribe(RetainHandling handling, int first, int second)
    {
        var h = new ChannelHarness();
        var (p, _, _) = h.Connect("p");
        p.Handle(ChannelHarness.Publish("t", "kept", retain: true));
        var (c, output, _) = h.Connect("s");
        var request = new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QoS.AtMostOnce) { RetainHandling = handling }] };
        c.Handle(request);
        Assert.Equal(first, output.Publishes().Count);
        c.Handle(request);
        Assert.Equal(second, output.Publishes().Count);
    }

    [Fact]
    public void MQTT_4_7_2_1_WildcardsDoNotMatchDollarTopics()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s", ProtocolVersion.V311);
        c.Handle(ChannelHarness.Subscribe(1, ("#", QoS.AtMostOnce), ("+/x", QoS.AtMostOnce)));
        output.Take();
        h.Broker.PublishFromBroker("$SYS/x", "v"u8.ToArray());
        Assert.Empty(output.Publishes());
        h.Broker.PublishFromBroker("a/x", "v"u8.ToArray());
        Assert.Single(output.Publishes());
    }

    [Fact]
    public void MQTT_3_10_4_4_UnsubAck_V5ReasonCodes()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s");
        c.Handle(ChannelHarness.Subscribe(1, ("a", QoS.AtMostOnce)));
        output.Take();
        c.Handle(new UnsubscribePacket { PacketId = 4, Filters = ["a", "b"] });
        var unsuback = Assert.IsType<UnsubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(4, unsuback.PacketId);
        Assert.Equal([ReasonCode.Success, ReasonCode.NoSubscriptionExisted], unsuback.ReasonCodes);
        Assert.Equal(0, h.Broker.SubscriptionCount);
    }

    [Fact]
    public void SharedSubscription_EachMessageToExactlyOneMember()
    {
        var h = new ChannelHarness();
        var members = Enumerable.Range(0, 3).Select(i =>
        {
            var (c, o, _) = h.Connect("m" + i, ProtocolVersion.V311);
            c.Handle(ChannelHarness.Subscribe(1, ("$share/g/jobs/+", QoS.AtLeastOnce)));
            o.Take();
            return o;
        }).ToList();
        var (p, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 30; i++) p.Handle(ChannelHarness.Publish("jobs/x", "j" + i, QoS.AtLeastOnce, id: i));
        var counts = members.Select(m => m.Publishes().Count).ToList();
        Assert.Equal(30, counts.Sum());
        Assert.All(counts, n => Assert.Equal(10, n));
    }

    [Fact]
    public void SharedSubscription_SkipsOfflineMembers()
    {
        var h = new ChannelHarness();
        var (a, aOut, _) = h.Connect("a", ProtocolVersion.V311, cleanStart: false);
        a.Handle(ChannelHarness.Subscribe(1, ("$share/g/t", QoS.AtLeastOnce)));
        var (b, bOut, _) = h.Connect("b", ProtocolVersion.V311, cleanStart: false);
        b.Handle(ChannelHarness.Subscribe(1, ("$share/g/t", QoS.AtLeastOnce)));
        aOut.Take();
        bOut.Take();
        a.OnConnectionClosed();
        var (p, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 4; i++) p.Handle(ChannelHarness.Publish("t", "m" + i, QoS.AtLeastOnce, id: i));
        Assert.Equal(4, bOut.Publishes().Count);
    }
}
