using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>MQTT 5.0 normative statements that had no test of their own (see docs/conformance-mqtt5.md).</summary>
public class Conformance5Tests
{
    [Fact]
    public void MQTT_3_12_4_1_PingReqIsAnsweredWithPingResp()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("pinger");
        c.Handle(PingReqPacket.Instance);
        Assert.IsType<PingRespPacket>(Assert.Single(output.Take()));
    }

    [Fact]
    public void MQTT_3_8_4_2_And_3_8_4_6_SubAckHasThePacketIdAndOneReasonCodePerFilter()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s");
        c.Handle(ChannelHarness.Subscribe(4242, ("a", QoS.AtMostOnce), ("b/+", QoS.AtLeastOnce), ("c/#", QoS.ExactlyOnce)));
        var suback = Assert.IsType<SubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(4242, suback.PacketId);
        Assert.Equal([ReasonCode.Success, (ReasonCode)1, (ReasonCode)2], suback.ReasonCodes);
    }

    [Fact]
    public void MQTT_3_8_4_3_SubscribingAgainReplacesTheSubscription()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s");
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        c.Handle(ChannelHarness.Subscribe(2, ("t", QoS.AtMostOnce)));
        output.Take();
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.ExactlyOnce, id: 1));
        var got = Assert.Single(output.Publishes());
        Assert.Equal(QoS.AtMostOnce, got.Fields.QoS);
    }

    [Fact]
    public void MQTT_3_10_4_5_UnsubscribeOfUnknownFilterIsStillAcknowledged()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("u");
        c.Handle(new UnsubscribePacket { PacketId = 9, Filters = ["never/subscribed"] });
        var unsuback = Assert.IsType<UnsubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(9, unsuback.PacketId);
        Assert.Equal([ReasonCode.NoSubscriptionExisted], unsuback.ReasonCodes);
    }

    [Fact]
    public void MQTT_3_10_4_1_UnsubscribeStopsDelivery()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("u");
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        c.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["t"] });
        output.Take();
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 1));
        Assert.Empty(output.Publishes());
    }

    [Fact]
    public void MQTT_3_3_4_1_QoS2PublishIsAnsweredWithPubRecAndPubRelWithPubComp()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("q2");
        c.Handle(ChannelHarness.Publish("t", "x", QoS.ExactlyOnce, id: 77));
        var rec = Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));
        Assert.Equal((PacketType.PubRec, (ushort)77), (rec.Type, rec.PacketId));
        c.Handle(new PublishAckPacket(PacketType.PubRel, 77));
        var comp = Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));
        Assert.Equal((PacketType.PubComp, (ushort)77, ReasonCode.Success), (comp.Type, comp.PacketId, comp.ReasonCode));
    }

    [Fact]
    public void MQTT_3_14_4_3_NormalDisconnectClosesWithoutServerDisconnect()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("d");
        c.Handle(new DisconnectPacket { ReasonCode = ReasonCode.Success });
        Assert.True(output.Closed);
        Assert.Null(output.FinalPacket);
    }
}
