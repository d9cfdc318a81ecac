using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>Normative statements the conformance matrix listed as testable but uncovered.</summary>
public class Conformance5MoreTests
{
    [Fact]
    public void MQTT_3_2_2_19_ReasonStringDroppedWhenItWouldExceedTheClientsMaximumPacketSize()
    {
        var h = new ChannelHarness(new Config.BrokerConfig { ClientIdPrefixes = ["ok-"] });
        var roomy = h.Connect("x1").ConnAck;
        Assert.NotNull(roomy.Properties?.ReasonString);
        var tight = h.Connect("x2", configure: c => c.GetOrCreateProperties().MaximumPacketSize = 16).ConnAck;
        Assert.Equal(ReasonCode.NotAuthorized, tight.ReasonCode);
        Assert.Null(tight.Properties?.ReasonString);
        Assert.True(PacketEncoder.GetSize(tight, ProtocolVersion.V500) <= 16);
    }

    [Fact]
    public void MQTT_3_1_2_29_RequestProblemInformation0_NoReasonStringOnConnAckRefusalIsStillAllowed_ButNoneOnAcks()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c", configure: p => p.GetOrCreateProperties().RequestProblemInformation = 0);
        c.Handle(ChannelHarness.Publish("$SYS/x", "denied", QoS.AtLeastOnce, id: 1));
        var ack = Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(ReasonCode.NotAuthorized, ack.ReasonCode);
        Assert.Null(ack.Properties?.ReasonString);
        Assert.Null(ack.Properties?.UserProperties);
    }

    [Fact]
    public void MQTT_3_1_3_10_WillUserPropertiesKeepTheirOrder()
    {
        var h = new ChannelHarness();
        var (w, watcher, _) = h.Connect("watcher");
        w.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtMostOnce)));
        watcher.Take();
        var (c, _, _) = h.Connect("dying", configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/d", Payload = "x"u8.ToArray(), Properties = new MqttProperties() };
            p.Will.Properties.AddUserProperty("b", "1");
            p.Will.Properties.AddUserProperty("a", "2");
            p.Will.Properties.AddUserProperty("b", "3");
        });
        c.OnConnectionClosed();
        var props = Assert.Single(watcher.Publishes()).Message.Properties!.UserProperties.ToArray();
        Assert.Equal([new UserProperty("b", "1"), new UserProperty("a", "2"), new UserProperty("b", "3")], props);
    }

    [Fact]
    public void MQTT_3_3_1_3_OutgoingDupIsSetIndependentlyOfTheIncomingOne()
    {
        var h = new ChannelHarness();
        var (s, subOut, _) = h.Connect("s");
        s.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (p, _, _) = h.Connect("p");
        var dup = ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 9);
        dup.Dup = true;
        p.Handle(dup);
        Assert.False(Assert.Single(subOut.Publishes()).Fields.Dup);
    }

    [Fact]
    public void MQTT_3_10_4_2_and_3_InflightAndQueuedMessagesForAnUnsubscribedFilterStillComplete()
    {
        var h = new ChannelHarness(new Config.BrokerConfig { MaxInflightMessages = 1 });
        var (s, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        s.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (p, _, _) = h.Connect("p", ProtocolVersion.V311);
        p.Handle(ChannelHarness.Publish("t", "first", QoS.AtLeastOnce, id: 1));
        p.Handle(ChannelHarness.Publish("t", "second", QoS.AtLeastOnce, id: 2)); // queued behind the window
        var inflight = Assert.Single(subOut.Publishes());
        s.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["t"] });
        subOut.Take();
        s.Handle(new PublishAckPacket(PacketType.PubAck, inflight.Fields.PacketId));
        Assert.Equal(["second"], subOut.Publishes().Select(m => m.Payload));
        p.Handle(ChannelHarness.Publish("t", "after", QoS.AtLeastOnce, id: 3));
        Assert.Empty(subOut.Publishes()); // new messages stop at the unsubscribe
    }

    [Fact]
    public void MQTT_4_4_0_2_AFailurePubAckEndsTheExchange_NotResentOnResume()
    {
        var h = new ChannelHarness();
        Action<ConnectPacket> persistent = c => c.GetOrCreateProperties().SessionExpiryInterval = 3600;
        var (s, subOut, _) = h.Connect("s", cleanStart: false, configure: persistent);
        s.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (p, _, _) = h.Connect("p");
        p.Handle(ChannelHarness.Publish("t", "refused", QoS.AtLeastOnce, id: 1));
        var sent = Assert.Single(subOut.Publishes());
        s.Handle(new PublishAckPacket(PacketType.PubAck, sent.Fields.PacketId, ReasonCode.UnspecifiedError));
        s.OnConnectionClosed();
        var (_, again, _) = h.Connect("s", cleanStart: false, configure: persistent);
        Assert.Empty(again.Publishes());
    }

    [Fact]
    public void MQTT_4_8_2_2_ShareNameWithWildcard_IsAnInvalidFilter()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c");
        c.Handle(ChannelHarness.Subscribe(1, ("$share/g+/t", QoS.AtMostOnce)));
        Assert.Equal(ReasonCode.TopicFilterInvalid, Assert.IsType<SubAckPacket>(Assert.Single(output.Take())).ReasonCodes[0]);
    }

    [Fact]
    public void MQTT_4_8_2_5_AMemberRefusingAMessage_DoesNotGetItAgain()
    {
        var h = new ChannelHarness();
        Action<ConnectPacket> persistent = c => c.GetOrCreateProperties().SessionExpiryInterval = 3600;
        var (m, mOut, _) = h.Connect("m", cleanStart: false, configure: persistent);
        m.Handle(ChannelHarness.Subscribe(1, ("$share/g/t", QoS.AtLeastOnce)));
        mOut.Take();
        var (p, _, _) = h.Connect("p");
        p.Handle(ChannelHarness.Publish("t", "no thanks", QoS.AtLeastOnce, id: 1));
        var sent = Assert.Single(mOut.Publishes());
        m.Handle(new PublishAckPacket(PacketType.PubAck, sent.Fields.PacketId, ReasonCode.ImplementationSpecificError));
        m.OnConnectionClosed();
        var (_, again, _) = h.Connect("m", cleanStart: false, configure: persistent);
        Assert.Empty(again.Publishes());
        Assert.Equal(0, h.Broker.SharedWaitingCount);
    }

    [Fact]
    public void MQTT_4_8_2_6_RetainedMessagesAreNotSentForSharedSubscriptions()
    {
        var h = new ChannelHarness();
        var (p, _, _) = h.Connect("p");
        p.Handle(ChannelHarness.Publish("t", "kept", retain: true));
        var (c, output, _) = h.Connect("c");
        c.Handle(ChannelHarness.Subscribe(1, ("$share/g/t", QoS.AtMostOnce)));
        Assert.IsType<SubAckPacket>(Assert.Single(output.Take()));
        c.Handle(ChannelHarness.Subscribe(2, ("t", QoS.AtMostOnce)));
        Assert.Single(output.Publishes()); // the same retained message does come for the ordinary filter
    }
}
