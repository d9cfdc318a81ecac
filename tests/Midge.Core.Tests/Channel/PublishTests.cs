using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

public class PublishTests
{
    [Fact]
    public void MQTT_4_3_2_2_QoS1PublishIsAcknowledgedWithPubAck()
    {
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("a", "x", QoS.AtLeastOnce, id: 7));
        var ack = Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(PacketType.PubAck, ack.Type);
        Assert.Equal(7, ack.PacketId);
    }

    [Fact]
    public void V5_NoSubscribers_PubAckAndPubRecSaySuccess_AsMosquittoDoes()
    {
        // Not 0x10 No matching subscribers: clients report the code as the delivery's result (Mosquitto 2.0.20+).
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("nobody", "x", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("nobody", "x", QoS.ExactlyOnce, id: 2));
        var acks = output.Take().Cast<PublishAckPacket>().ToList();
        Assert.Equal([PacketType.PubAck, PacketType.PubRec], acks.Select(a => a.Type));
        Assert.All(acks, a => Assert.Equal(ReasonCode.Success, a.ReasonCode));
    }

    [Fact]
    public void MQTT_4_3_3_QoS2_RoutedOnceEvenIfRetransmitted()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("q2", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, pubOut, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("q2", "once", QoS.ExactlyOnce, id: 5));
        var dup = ChannelHarness.Publish("q2", "once", QoS.ExactlyOnce, id: 5);
        dup.Dup = true;
        pub.Handle(dup);
        var acks = pubOut.Take().Cast<PublishAckPacket>().ToList();
        Assert.All(acks, a => Assert.Equal(PacketType.PubRec, a.Type));
        Assert.Equal(2, acks.Count);
        Assert.Single(subOut.Publishes());
        pub.Handle(new PublishAckPacket(PacketType.PubRel, 5));
        var comp = Assert.IsType<PublishAckPacket>(Assert.Single(pubOut.Take()));
        Assert.Equal(PacketType.PubComp, comp.Type);
        // After PUBREL the id is free: the same id is a new message.
        pub.Handle(ChannelHarness.Publish("q2", "again", QoS.ExactlyOnce, id: 5));
        Assert.Single(subOut.Publishes());
    }

    [Fact]
    public void PubRelForAnIdAlreadyCompleted_GetsPubComp0x00_AsMosquittoDoes()
    {
        // The PUBCOMP was lost, the client reconnected and resends PUBREL: the message was delivered once, so the
        // answer is success, not 0x92.
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 60);
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.ExactlyOnce, id: 9));
        pub.Handle(new PublishAckPacket(PacketType.PubRel, 9));
        pub.OnConnectionClosed();
        var (again, output2, connack) = h.Connect("p", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 60);
        Assert.True(connack.SessionPresent);
        again.Handle(new PublishAckPacket(PacketType.PubRel, 9));
        var comp = Assert.IsType<PublishAckPacket>(Assert.Single(output2.Take()));
        Assert.Equal(PacketType.PubComp, comp.Type);
        Assert.Equal(ReasonCode.Success, comp.ReasonCode);
        Assert.False(output2.Closed);
    }

    [Fact]
    public void MQTT_3_3_1_9_RetainFlagClearedForLiveDelivery_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("r", "v", retain: true));
        Assert.False(Assert.Single(subOut.Publishes()).Fields.Retain);
    }

    [Fact]
    public void MQTT_3_3_1_6_RetainedMessageDeliveredOnSubscribeWithRetainFlag()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("status/a", "on", QoS.AtLeastOnce, retain: true, id: 1));
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("status/+", QoS.AtLeastOnce)));
        var sent = subOut.Take();
        Assert.IsType<SubAckPacket>(sent[0]); // MQTT-3.8.4-1: SUBACK first
        var retained = Assert.IsType<SentPublish>(sent[1]);
        Assert.True(retained.Fields.Retain);
        Assert.Equal("on", retained.Payload);
    }

    [Fact]
    public void MQTT_3_3_1_10_EmptyRetainedPayloadClearsRetained()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("k", "v", retain: true));
        Assert.Equal(1, h.Broker.RetainedCount);
        pub.Handle(ChannelHarness.Publish("k", "", retain: true));
        Assert.Equal(0, h.Broker.RetainedCount);
    }

    [Fact]
    public void RetainNotAvailable_V5_Disconnects0x9A()
    {
        var h = new ChannelHarness(new BrokerConfig { RetainAvailable = false });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("k", "v", retain: true));
        Assert.Equal(ReasonCode.RetainNotSupported, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void QoSAboveMaxQoS_V5_Disconnects0x9B()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = true, MaxQoS = 1 });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("k", "v", QoS.ExactlyOnce, id: 1));
        Assert.Equal(ReasonCode.QoSNotSupported, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void ClientsMayNotPublishToSys()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("$SYS/#", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, pubOut, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("$SYS/broker/uptime", "fake", QoS.AtLeastOnce, id: 1));
        Assert.Equal(ReasonCode.NotAuthorized, Assert.IsType<PublishAckPacket>(Assert.Single(pubOut.Take())).ReasonCode);
        Assert.Empty(subOut.Publishes());
    }

    [Fact]
    public void MessageSizeLimit_V5_PubAck0x95AndNotRouted()
    {
        var h = new ChannelHarness(new BrokerConfig { MessageSizeLimit = 3 });
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, pubOut, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "toolong", QoS.AtLeastOnce, id: 1));
        Assert.Equal(ReasonCode.PacketTooLarge, Assert.IsType<PublishAckPacket>(Assert.Single(pubOut.Take())).ReasonCode);
        Assert.Empty(subOut.Publishes());
    }

    [Fact]
    public void MQTT_3_3_2_8_TopicAliasZeroIsInvalid()
    {
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p");
        var p = ChannelHarness.Publish("t", "x");
        p.GetOrCreateProperties().TopicAlias = 0;
        pub.Handle(p);
        Assert.Equal(ReasonCode.TopicAliasInvalid, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void MQTT_3_3_2_9_TopicAliasAboveMaximumIsInvalid()
    {
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p");
        var p = ChannelHarness.Publish("t", "x");
        p.GetOrCreateProperties().TopicAlias = 11;
        pub.Handle(p);
        Assert.Equal(ReasonCode.TopicAliasInvalid, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void TopicAlias_SetThenUsed()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("long/topic", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p");
        var first = ChannelHarness.Publish("long/topic", "1");
        first.GetOrCreateProperties().TopicAlias = 3;
        pub.Handle(first);
        var second = ChannelHarness.Publish("", "2");
        second.GetOrCreateProperties().TopicAlias = 3;
        pub.Handle(second);
        var got = subOut.Publishes();
        Assert.Equal(["long/topic", "long/topic"], got.Select(g => g.Topic));
        Assert.Equal(["1", "2"], got.Select(g => g.Payload));
    }

    [Fact]
    public void MQTT_3_3_4_7_ReceiveMaximumExceeded_Disconnects0x93()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxInflightMessages = 2 });
        var (pub, output, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "1", QoS.ExactlyOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "2", QoS.ExactlyOnce, id: 2));
        Assert.False(output.Closed);
        pub.Handle(ChannelHarness.Publish("t", "3", QoS.ExactlyOnce, id: 3));
        Assert.Equal(ReasonCode.ReceiveMaximumExceeded, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void MountPoint_PrefixesPublishAndStripsOnDelivery()
    {
        var mounted = new ListenerConfig { AllowAnonymous = true, MountPoint = "tenant/" };
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", listener: mounted);
        sub.Handle(ChannelHarness.Subscribe(1, ("x/#", QoS.AtMostOnce)));
        subOut.Take();
        var (plain, plainOut, _) = h.Connect("plain");
        plain.Handle(ChannelHarness.Subscribe(1, ("#", QoS.AtMostOnce)));
        plainOut.Take();
        var (pub, _, _) = h.Connect("p", listener: mounted);
        pub.Handle(ChannelHarness.Publish("x/1", "m"));
        Assert.Equal("x/1", Assert.Single(subOut.Publishes()).Topic);
        Assert.Equal("tenant/x/1", Assert.Single(plainOut.Publishes()).Topic);
    }

    [Fact]
    public void MemoryLimit_CountsWhatIsHeld_RefusesPastIt_AndRecoversWhenItFalls()
    {
        // The limit is on what the broker holds for clients (queued, in flight, retained), not on the process's
        // heap: garbage does not count, and new messages are taken again as soon as what is held falls.
        var h = new ChannelHarness(new BrokerConfig { MemoryLimit = 10 });
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, pubOut, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "123456", QoS.AtLeastOnce, id: 1)); // 6 bytes in flight to s
        pub.Handle(ChannelHarness.Publish("t", "123456", QoS.AtLeastOnce, id: 2)); // 6 + 6 > 10
        Assert.Equal([ReasonCode.Success, ReasonCode.QuotaExceeded], pubOut.Take().Cast<PublishAckPacket>().Select(a => a.ReasonCode));
        Assert.Equal(6, h.Broker.HeldBytes);
        Assert.Single(subOut.Publishes());

        sub.Handle(new PublishAckPacket(PacketType.PubAck, 1)); // delivered: nothing held any more
        Assert.Equal(0, h.Broker.HeldBytes);
        pub.Handle(ChannelHarness.Publish("t", "123456", QoS.AtLeastOnce, id: 3));
        Assert.Equal(ReasonCode.Success, Assert.IsType<PublishAckPacket>(Assert.Single(pubOut.Take())).ReasonCode);
        Assert.False(pubOut.Closed);
    }

    [Fact]
    public void MemoryLimit_CountsRetainedMessages_AndTheirReplacement()
    {
        var h = new ChannelHarness(new BrokerConfig { MemoryLimit = 100 });
        var (pub, pubOut, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("a", "12345678", retain: true));
        Assert.Equal(8, h.Broker.HeldBytes);
        pub.Handle(ChannelHarness.Publish("a", "1234", retain: true)); // replaces: 4 held, not 12
        Assert.Equal(4, h.Broker.HeldBytes);
        pub.Handle(ChannelHarness.Publish("a", "", retain: true)); // cleared
        Assert.Equal(0, h.Broker.HeldBytes);
        Assert.False(pubOut.Closed);
    }

    [Fact]
    public void MemoryLimit_V311_QoS1_ClosesInsteadOfAcknowledgingAMessageItDrops()
    {
        var h = new ChannelHarness(new BrokerConfig { MemoryLimit = 4 });
        var (pub, pubOut, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("r", "1234", retain: true));
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 1));
        Assert.Empty(pubOut.Take().OfType<PublishAckPacket>());
        Assert.True(pubOut.Closed);
    }

    [Fact]
    public void MQTT_3_3_4_6_SubscriptionIdentifierFromClientIsProtocolError()
    {
        var h = new ChannelHarness();
        var (pub, output, _) = h.Connect("p");
        var p = ChannelHarness.Publish("t", "x");
        p.GetOrCreateProperties().SubscriptionIdentifiers = [5];
        pub.Handle(p);
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }
}
