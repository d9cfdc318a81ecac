using System.Text;
using Midge.Config;
using Midge.Core.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

public class Mqtt5FeatureTests
{
    [Fact]
    public void MaxSessionExpiryInterval_CapsAndTellsTheClient()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxSessionExpiryInterval = 60 });
        var connack = h.Connect("c", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 3600).ConnAck;
        Assert.Equal(60u, connack.Properties?.SessionExpiryInterval);
        var uncapped = h.Connect("d", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 30).ConnAck;
        Assert.Null(uncapped.Properties?.SessionExpiryInterval);
    }

    [Fact]
    public void RequestResponseInformation_GetsResponseInformation()
    {
        var h = new ChannelHarness(new BrokerConfig { ResponseInformation = "reply/%c" });
        var asked = h.Connect("c1", configure: c => c.GetOrCreateProperties().RequestResponseInformation = 1).ConnAck;
        Assert.Equal("reply/c1", asked.Properties?.ResponseInformation);
        var notAsked = h.Connect("c2").ConnAck;
        Assert.Null(notAsked.Properties?.ResponseInformation);
    }

    [Theory]
    [InlineData(false, ReasonCode.UseAnotherServer)]
    [InlineData(true, ReasonCode.ServerMoved)]
    public void ServerReference_RedirectsV5Clients(bool moved, ReasonCode expected)
    {
        var listener = new ListenerConfig { AllowAnonymous = true, ServerReference = "other.example:1883", ServerMoved = moved };
        var h = new ChannelHarness(listener: listener);
        var connack = h.Connect("c").ConnAck;
        Assert.Equal(expected, connack.ReasonCode);
        Assert.Equal("other.example:1883", connack.Properties?.ServerReference);
        var v3 = h.Connect("d", ProtocolVersion.V311).ConnAck;
        Assert.Equal(ConnectReturnCode.ServerUnavailable, v3.V3ReturnCode);
    }

    [Fact]
    public void ValidatePayloadFormat_RefusesInvalidUtf8With0x99()
    {
        var h = new ChannelHarness(new BrokerConfig { ValidatePayloadFormat = true });
        var (pub, output, _) = h.Connect("p");
        var bad = new PublishPacket { Topic = "t", Payload = new byte[] { 0xC3, 0x28 }, QoS = QoS.AtLeastOnce, PacketId = 1 };
        bad.GetOrCreateProperties().PayloadFormatIndicator = 1;
        pub.Handle(bad);
        Assert.Equal(ReasonCode.PayloadFormatInvalid, Assert.IsType<PublishAckPacket>(Assert.Single(output.Take())).ReasonCode);
        var good = ChannelHarness.Publish("t", "héllo", QoS.AtLeastOnce, id: 2);
        good.GetOrCreateProperties().PayloadFormatIndicator = 1;
        pub.Handle(good);
        Assert.Equal(ReasonCode.Success, Assert.IsType<PublishAckPacket>(Assert.Single(output.Take())).ReasonCode);
    }

    [Fact]
    public void OverlappingSubscriptions_PerSubscription_SendsOneCopyEach()
    {
        var h = new ChannelHarness(new BrokerConfig { OverlappingSubscriptions = OverlappingSubscriptions.PerSubscription });
        var (sub, output, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("a/+", QoS.AtMostOnce), ("a/#", QoS.AtLeastOnce)));
        output.Take();
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("a/b", "x", QoS.AtLeastOnce, id: 1));
        Assert.Equal(2, output.Publishes().Count);
    }

    private static (MqttChannel Channel, RecordingOutput Output) Member(ChannelHarness h, string id, string filter = "$share/g/jobs")
    {
        var (c, o, _) = h.Connect(id, ProtocolVersion.V311, cleanStart: false);
        c.Handle(ChannelHarness.Subscribe(1, (filter, QoS.AtLeastOnce)));
        o.Take();
        return (c, o);
    }

    [Fact]
    public void Shared_NoMemberOnline_MessagesWaitInTheGroup_ThenGoToWhoeverComesBack()
    {
        var h = new ChannelHarness();
        var (a, _) = Member(h, "a");
        var (b, _) = Member(h, "b");
        a.OnConnectionClosed();
        b.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 4; i++) pub.Handle(ChannelHarness.Publish("jobs", "j" + i, QoS.AtLeastOnce, id: i));
        Assert.Equal(4, h.Broker.SharedWaitingCount);
        var (_, back, _) = h.Connect("b", ProtocolVersion.V311, cleanStart: false);
        Assert.Equal(["j1", "j2", "j3", "j4"], back.Publishes().Select(p => p.Payload));
        Assert.Equal(0, h.Broker.SharedWaitingCount);
    }

    [Fact]
    public void Shared_MemberLeavingWithUnackedMessages_TheyGoToAnotherMember()
    {
        var h = new ChannelHarness(new BrokerConfig { SharedSubscriptionStrategy = SharedSubscriptionStrategy.Sticky });
        var (a, aOut) = Member(h, "a");
        var (_, bOut) = Member(h, "b");
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 3; i++) pub.Handle(ChannelHarness.Publish("jobs", "j" + i, QoS.AtLeastOnce, id: i));
        var (first, firstOut, second, secondOut) = aOut.Publishes() is { Count: 3 } got
            ? (a, got, "b", bOut)
            : throw new InvalidOperationException("sticky should have sent all three to the first member");
        // a acknowledges only the first, then vanishes: j2 and j3 must reach b, and j1 must not.
        first.Handle(new PublishAckPacket(PacketType.PubAck, firstOut[0].Fields.PacketId));
        first.OnConnectionClosed();
        Assert.Equal(["j2", "j3"], secondOut.Publishes().Select(p => p.Payload));
        Assert.Equal("b", second);
    }

    [Fact]
    public void Shared_HashTopic_KeepsEachTopicOnOneMember()
    {
        var h = new ChannelHarness(new BrokerConfig { SharedSubscriptionStrategy = SharedSubscriptionStrategy.HashTopic });
        var outs = Enumerable.Range(0, 3).Select(i => Member(h, "m" + i, "$share/g/jobs/+").Output).ToList();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (int round = 0; round < 5; round++)
        {
            foreach (var t in new[] { "jobs/a", "jobs/b", "jobs/c", "jobs/d" }) pub.Handle(ChannelHarness.Publish(t, t));
        }
        var byMember = outs.Select(o => o.Publishes().Select(p => p.Topic).ToList()).ToList();
        Assert.Equal(20, byMember.Sum(l => l.Count));
        foreach (var topic in new[] { "jobs/a", "jobs/b", "jobs/c", "jobs/d" })
        {
            Assert.Single(byMember, l => l.Contains(topic)); // all five copies of a topic went to one member
        }
    }

    [Fact]
    public void Shared_PerGroupStrategy_OverridesTheDefault()
    {
        var strategies = new Dictionary<string, SharedSubscriptionStrategy> { ["pinned"] = SharedSubscriptionStrategy.Sticky };
        var h = new ChannelHarness(new BrokerConfig { SharedGroupStrategies = strategies });
        var a = Member(h, "a", "$share/pinned/t").Output;
        var b = Member(h, "b", "$share/pinned/t").Output;
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (int i = 0; i < 6; i++) pub.Handle(ChannelHarness.Publish("t", "x"));
        var counts = new[] { a.Publishes().Count, b.Publishes().Count };
        Assert.Contains(6, counts);
        Assert.Contains(0, counts);
    }

    [Fact]
    public void Exclusive_OneSubscriberAtATime()
    {
        var h = new ChannelHarness(new BrokerConfig { ExclusiveSubscriptions = true });
        var (first, firstOut, _) = h.Connect("first");
        first.Handle(ChannelHarness.Subscribe(1, ("$exclusive/cmd", QoS.AtMostOnce)));
        Assert.Equal(ReasonCode.GrantedQoS0, Assert.IsType<SubAckPacket>(Assert.Single(firstOut.Take())).ReasonCodes[0]);
        var (second, secondOut, _) = h.Connect("second");
        second.Handle(ChannelHarness.Subscribe(1, ("$exclusive/cmd", QoS.AtMostOnce)));
        Assert.Equal(ReasonCode.QuotaExceeded, Assert.IsType<SubAckPacket>(Assert.Single(secondOut.Take())).ReasonCodes[0]);

        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("cmd", "go"));
        Assert.Equal("cmd", Assert.Single(firstOut.Publishes()).Topic);

        first.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["$exclusive/cmd"] });
        second.Handle(ChannelHarness.Subscribe(3, ("$exclusive/cmd", QoS.AtMostOnce)));
        Assert.Equal(ReasonCode.GrantedQoS0, Assert.IsType<SubAckPacket>(Assert.Single(secondOut.Take())).ReasonCodes[0]);
    }

    [Fact]
    public void Exclusive_Disabled_IsAnOrdinaryFilter()
    {
        var h = new ChannelHarness();
        var (a, aOut, _) = h.Connect("a");
        a.Handle(ChannelHarness.Subscribe(1, ("$exclusive/cmd", QoS.AtMostOnce)));
        var (b, bOut, _) = h.Connect("b");
        b.Handle(ChannelHarness.Subscribe(1, ("$exclusive/cmd", QoS.AtMostOnce)));
        Assert.Equal(ReasonCode.GrantedQoS0, Assert.IsType<SubAckPacket>(Assert.Single(bOut.Take())).ReasonCodes[0]);
        _ = aOut;
    }

    [Fact]
    public void ConnAck_OutgoingTopicAliasMaximum_IsTheSmallerOfClientAndBroker()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxOutgoingTopicAlias = 4 });
        var (c, _, _) = h.Connect("c", configure: p => p.GetOrCreateProperties().TopicAliasMaximum = 100);
        Assert.Equal(4, c.OutgoingTopicAliasMaximum);
        var (d, _, _) = h.Connect("d");
        Assert.Equal(0, d.OutgoingTopicAliasMaximum); // the client did not allow aliases (MQTT-3.3.2-11)
        var (v3, _, _) = h.Connect("e", ProtocolVersion.V311);
        Assert.Equal(0, v3.OutgoingTopicAliasMaximum);
    }
}

public class AdministrativeDisconnectTests
{
    [Fact]
    public void DisconnectClient_SendsDisconnect0x98AndPublishesTheWill()
    {
        var h = new ChannelHarness();
        var (w, watcher, _) = h.Connect("watcher");
        w.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtMostOnce)));
        watcher.Take();
        var (target, output, _) = h.Connect("target", cleanStart: false, configure: c =>
        {
            c.Will = new WillMessage { Topic = "will/target", Payload = "gone"u8.ToArray() };
            c.GetOrCreateProperties().SessionExpiryInterval = 600;
        });
        Assert.True(h.Broker.DisconnectClient("target"));
        Assert.Equal(ReasonCode.AdministrativeAction, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
        target.OnConnectionClosed();
        Assert.Single(watcher.Publishes());
        Assert.Equal(2, h.Broker.SessionCount); // the session outlives the connection
        Assert.True(h.Broker.DisconnectClient("target", endSession: true));
        Assert.Equal(1, h.Broker.SessionCount);
        Assert.False(h.Broker.DisconnectClient("nobody"));
    }
}

public class OutgoingTopicAliasesTests
{
    [Fact]
    public void NewTopicGetsAliasWithTopic_KnownTopicGoesAsAliasAlone()
    {
        var aliases = new OutgoingTopicAliases(2);
        var f = new OutgoingPublish();
        aliases.Apply("a", ref f);
        Assert.Equal((1, false), (f.TopicAlias, f.OmitTopic));
        aliases.Apply("a", ref f);
        Assert.Equal((1, true), (f.TopicAlias, f.OmitTopic));
    }

    [Fact]
    public void FullMap_ReplacesTheLeastRecentlyUsed()
    {
        var aliases = new OutgoingTopicAliases(2);
        var f = new OutgoingPublish();
        aliases.Apply("a", ref f); // 1
        aliases.Apply("b", ref f); // 2
        aliases.Apply("a", ref f); // a is now the most recent
        aliases.Apply("c", ref f); // takes b's alias
        Assert.Equal((2, false), (f.TopicAlias, f.OmitTopic));
        aliases.Apply("a", ref f);
        Assert.Equal((1, true), (f.TopicAlias, f.OmitTopic));
        aliases.Apply("b", ref f); // b was evicted: new again, takes the LRU alias (c's, 2)
        Assert.Equal((2, false), (f.TopicAlias, f.OmitTopic));
        Assert.Equal(2, aliases.Count);
    }

    [Fact]
    public void TheTopicIsTheOneTheClientSees_WithoutTheMountPoint()
    {
        var aliases = new OutgoingTopicAliases(2);
        var f = new OutgoingPublish { TopicStart = 2 };
        aliases.Apply("m/a", ref f);
        Assert.Equal((1, false), (f.TopicAlias, f.OmitTopic));
        var plain = new OutgoingPublish();
        aliases.Apply("a", ref plain); // the same topic to the client, from a listener without a mount point
        Assert.Equal((1, true), (plain.TopicAlias, plain.OmitTopic));
        aliases.Apply("m/a", ref f);
        Assert.Equal((1, true), (f.TopicAlias, f.OmitTopic));
        Assert.Equal(1, aliases.Count);
    }
}
