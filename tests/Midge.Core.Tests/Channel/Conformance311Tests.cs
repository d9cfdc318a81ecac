using Midge.Config;
using Midge.Core.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>
/// MQTT 3.1.1 normative statements that bind the server and had no 3.1.1 test of their own
/// (see docs/conformance-mqtt311.md). Every client here speaks protocol level 4.
/// </summary>
public class Conformance311Tests
{
    private const ProtocolVersion V4 = ProtocolVersion.V311;

    private static void EndCleanly(MqttChannel c)
    {
        c.Handle(new DisconnectPacket());
        c.OnConnectionClosed();
    }

    // ---- 1.5 strings ----

    [Fact]
    public void MQTT_1_5_3_3_ByteOrderMarkIsKeptInTopics_V311()
    {
        var h = new ChannelHarness();
        var (plain, plainOut, _) = h.Connect("plain", V4);
        plain.Handle(ChannelHarness.Subscribe(1, ("a", QoS.AtMostOnce)));
        var (bom, bomOut, _) = h.Connect("bom", V4);
        bom.Handle(ChannelHarness.Subscribe(1, ("\uFEFFa", QoS.AtMostOnce)));
        plainOut.Take();
        bomOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("\uFEFFa", "x"));
        Assert.Empty(plainOut.Publishes());
        Assert.Equal("\uFEFFa", Assert.Single(bomOut.Publishes()).Topic);
    }

    // ---- 3.1 CONNECT ----

    [Fact]
    public void MQTT_3_1_0_2_SecondConnectClosesTheConnection_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c1", V4);
        c.Handle(new ConnectPacket { ClientId = "c1", ProtocolVersion = V4, ProtocolName = "MQTT", CleanStart = true });
        Assert.True(output.Closed);
        Assert.Null(output.FinalPacket); // 3.1.1 has no server DISCONNECT
    }

    [Fact]
    public void MQTT_3_1_2_4_CleanSession0ResumesSubscriptions_V311()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("s", V4, cleanStart: false);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        EndCleanly(c);
        var (_, again, connack) = h.Connect("s", V4, cleanStart: false);
        Assert.True(connack.SessionPresent);
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "kept", QoS.AtLeastOnce, id: 1));
        Assert.Equal(["kept"], again.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void MQTT_3_1_2_5_QoS1And2StoredWhileDisconnected_QoS0Not_V311()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("s", V4, cleanStart: false);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        EndCleanly(c);
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "q0"));
        pub.Handle(ChannelHarness.Publish("t", "q1", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "q2", QoS.ExactlyOnce, id: 2));
        var (_, again, _) = h.Connect("s", V4, cleanStart: false);
        Assert.Equal(["q1", "q2"], again.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void MQTT_3_1_2_6_CleanSession1DiscardsThePreviousSession_V311()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("s", V4, cleanStart: false);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        EndCleanly(c);
        var (_, again, connack) = h.Connect("s", V4, cleanStart: true);
        Assert.False(connack.SessionPresent);
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "gone", QoS.AtLeastOnce, id: 1));
        Assert.Empty(again.Publishes());
    }

    [Fact]
    public void MQTT_3_1_2_7_RetainedMessagesOutliveTheSessionThatPublishedThem_V311()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", V4, cleanStart: true);
        pub.Handle(ChannelHarness.Publish("r", "still here", QoS.AtLeastOnce, retain: true, id: 1));
        EndCleanly(pub);
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtLeastOnce)));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal("still here", got.Payload);
    }

    [Fact]
    public void MQTT_3_1_2_8_WillPublishedWhenKeepAliveExpires_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtLeastOnce)));
        subOut.Take();
        var (c, output, _) = h.Connect("w", V4, configure: p =>
        {
            p.KeepAlive = 10;
            p.Will = new WillMessage { Topic = "will/w", Payload = "gone"u8.ToArray(), QoS = QoS.AtLeastOnce };
        });
        h.Time.Advance(TimeSpan.FromSeconds(16));
        h.Broker.Tick();
        Assert.True(output.Closed);
        c.OnConnectionClosed();
        var will = Assert.Single(subOut.Publishes());
        Assert.Equal(("will/w", "gone"), (will.Topic, will.Payload));
    }

    [Fact]
    public void MQTT_3_1_2_16_WillWithRetain0IsNotRetained_V311()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("w", V4, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/w", Payload = "gone"u8.ToArray(), QoS = QoS.AtLeastOnce, Retain = false };
        });
        c.OnConnectionClosed();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtLeastOnce)));
        Assert.Empty(subOut.Publishes());
    }

    [Fact]
    public void MQTT_3_1_2_24_KeepAliveExpiryClosesWithoutAPacket_V311()
    {
        var h = new ChannelHarness();
        var (_, output, _) = h.Connect("c1", V4, configure: c => c.KeepAlive = 10);
        h.Time.Advance(TimeSpan.FromSeconds(14));
        h.Broker.Tick();
        Assert.False(output.Closed);
        h.Time.Advance(TimeSpan.FromSeconds(2));
        h.Broker.Tick();
        Assert.True(output.Closed);
        Assert.Null(output.FinalPacket);
    }

    [Fact]
    public void MQTT_3_1_2_24_AnyPacketRestartsTheKeepAliveClock_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c1", V4, configure: p => p.KeepAlive = 10);
        for (int i = 0; i < 5; i++)
        {
            h.Time.Advance(TimeSpan.FromSeconds(10));
            h.Broker.Tick();
            c.Handle(PingReqPacket.Instance);
        }
        Assert.False(output.Closed);
    }

    [Fact]
    public void MQTT_3_1_2_24_KeepAliveZeroNeverTimesOut_V311()
    {
        var h = new ChannelHarness();
        var (_, output, _) = h.Connect("c1", V4, configure: p => p.KeepAlive = 0);
        h.Time.Advance(TimeSpan.FromHours(5));
        h.Broker.Tick();
        Assert.False(output.Closed);
    }

    [Fact]
    public void MQTT_3_1_3_5_TwentyThreeAlphanumericClientIdIsAccepted_V311()
    {
        var h = new ChannelHarness();
        var (c, _, connack) = h.Connect("abcdefghijklmnopqrstuvW", V4);
        Assert.Equal(ConnectReturnCode.Accepted, ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        Assert.Equal("abcdefghijklmnopqrstuvW", c.ClientId);
    }

    [Fact]
    public void MQTT_3_1_3_6_AssignedClientIdsAreUnique_V311()
    {
        var h = new ChannelHarness();
        var ids = Enumerable.Range(0, 50).Select(_ => h.Connect("", V4, cleanStart: true).Channel.ClientId).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void MQTT_3_1_3_9_RefusedClientIdGetsIdentifierRejected_V311()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = true, AllowZeroLengthClientId = false });
        var (_, output, connack) = h.Connect("", V4, cleanStart: true);
        Assert.Equal(ConnectReturnCode.IdentifierRejected, connack.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        Assert.True(output.Closed);
    }

    [Fact]
    public void MQTT_3_1_4_2_SameClientIdDisconnectsTheExistingClient_V311()
    {
        var h = new ChannelHarness();
        var (first, firstOut, _) = h.Connect("same", V4);
        var (_, _, connack) = h.Connect("same", V4);
        Assert.Equal(ConnectReturnCode.Accepted, ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        Assert.True(firstOut.Closed);
        Assert.Null(firstOut.FinalPacket); // 3.1.1 has no server DISCONNECT
        first.OnConnectionClosed();
        Assert.Equal(1, h.Broker.SessionCount);
    }

    [Fact]
    public void MQTT_3_1_4_5_NothingIsProcessedAfterARefusedConnect_V311()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = false });
        var (sub, subOut, _) = h.Connect("s", V4, listener: new ListenerConfig { AllowAnonymous = true });
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtMostOnce)));
        subOut.Take();
        var (c, output, connack) = h.Connect("intruder", V4);
        Assert.Equal(ConnectReturnCode.NotAuthorized, ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        c.Handle(ChannelHarness.Publish("t", "sneaky"));
        Assert.Empty(subOut.Publishes());
        Assert.DoesNotContain(output.Take(), p => p is SentPublish);
    }

    // ---- 3.2 CONNACK ----

    [Fact]
    public void MQTT_3_2_0_1_ConnAckComesBeforeQueuedMessages_V311()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("s", V4, cleanStart: false);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        EndCleanly(c);
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "queued", QoS.AtLeastOnce, id: 1));
        var (channel, output) = h.Open();
        channel.Handle(new ConnectPacket { ClientId = "s", ProtocolVersion = V4, ProtocolName = "MQTT", CleanStart = false, KeepAlive = 60 });
        var sent = output.Take();
        Assert.IsType<ConnAckPacket>(sent[0]);
        Assert.Single(sent.OfType<ConnAckPacket>());
        Assert.IsType<SentPublish>(sent[1]);
    }

    [Fact]
    public void MQTT_3_2_2_3_CleanSession0WithoutStoredSessionGivesSessionPresent0_V311()
    {
        var h = new ChannelHarness();
        var (_, _, connack) = h.Connect("fresh", V4, cleanStart: false);
        Assert.False(connack.SessionPresent);
    }

    [Fact]
    public void MQTT_3_2_2_4_And_3_2_2_5_RefusalHasSessionPresent0AndCloses_V311()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("s", V4, cleanStart: false);
        EndCleanly(c);
        var (_, output, connack) = h.Connect("s", V4, cleanStart: false, listener: new ListenerConfig { AllowAnonymous = false });
        Assert.NotEqual(ConnectReturnCode.Accepted, ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        Assert.False(connack.SessionPresent);
        Assert.True(output.Closed);
    }

    // ---- 3.3 PUBLISH ----

    [Fact]
    public void MQTT_3_3_1_5_RetainedMessageKeepsItsQoS_V311()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("r", "v", QoS.AtLeastOnce, retain: true, id: 1));
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("r", QoS.ExactlyOnce)));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal(QoS.AtLeastOnce, got.Fields.QoS);
        Assert.True(got.Fields.Retain);
    }

    [Fact]
    public void MQTT_3_3_1_7_QoS0RetainedReplacesThePreviousRetained_V311()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("r", "old", QoS.AtLeastOnce, retain: true, id: 1));
        pub.Handle(ChannelHarness.Publish("r", "new", QoS.AtMostOnce, retain: true));
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtLeastOnce)));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal("new", got.Payload);
    }

    [Fact]
    public void MQTT_3_3_1_10_And_3_3_1_11_EmptyRetainedIsDeliveredLiveButNotStored_V311()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("r", "v", retain: true));
        var (live, liveOut, _) = h.Connect("live", V4);
        live.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtMostOnce)));
        liveOut.Take();
        pub.Handle(ChannelHarness.Publish("r", "", retain: true));
        var cleared = Assert.Single(liveOut.Publishes());
        Assert.Equal("", cleared.Payload);
        var (late, lateOut, _) = h.Connect("late", V4);
        late.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtMostOnce)));
        Assert.Empty(lateOut.Publishes());
    }

    [Fact]
    public void MQTT_3_3_1_12_NonRetainedPublishLeavesTheRetainedMessage_V311()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("r", "kept", retain: true));
        pub.Handle(ChannelHarness.Publish("r", "passing"));
        pub.Handle(ChannelHarness.Publish("r", "", retain: false));
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtMostOnce)));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal("kept", got.Payload);
    }

    [Fact]
    public void MQTT_3_3_2_3_DeliveredTopicNameIsThePublishedOne_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("sport/+/player1/#", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("sport/tennis/player1/score", "15-0"));
        Assert.Equal("sport/tennis/player1/score", Assert.Single(subOut.Publishes()).Topic);
    }

    [Fact]
    public void MQTT_3_3_5_1_OverlappingSubscriptionsOneCopyAtTheHighestQoS_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("a/+", QoS.AtMostOnce), ("a/#", QoS.ExactlyOnce), ("a/b", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("a/b", "x", QoS.ExactlyOnce, id: 1));
        Assert.Equal(QoS.ExactlyOnce, Assert.Single(subOut.Publishes()).Fields.QoS);
    }

    [Fact]
    public void MQTT_3_3_5_2_UnauthorisedPublishIsAcknowledgedAndDropped_V311()
    {
        var dir = Directory.CreateTempSubdirectory("midge-311-").FullName;
        try
        {
            var acl = Path.Combine(dir, "acl");
            File.WriteAllText(acl, "topic read public/#\ntopic readwrite open/#\n");
            var listener = new ListenerConfig { AllowAnonymous = true, AclFile = acl };
            var h = new ChannelHarness(new BrokerConfig { Listeners = [listener], AclFile = acl }, listener);
            var (sub, subOut, _) = h.Connect("s", V4);
            sub.Handle(ChannelHarness.Subscribe(1, ("public/#", QoS.AtLeastOnce), ("open/#", QoS.AtLeastOnce)));
            subOut.Take();
            var (pub, pubOut, _) = h.Connect("p", V4);
            pub.Handle(ChannelHarness.Publish("public/x", "denied", QoS.AtLeastOnce, id: 1));
            // 3.1.1 has no way to say "refused": a normal PUBACK (or a close) is the only allowed answer.
            if (!pubOut.Closed)
            {
                var ack = Assert.IsType<PublishAckPacket>(Assert.Single(pubOut.Take()));
                Assert.Equal((PacketType.PubAck, (ushort)1), (ack.Type, ack.PacketId));
            }
            Assert.Empty(subOut.Publishes());
            pub.Handle(ChannelHarness.Publish("open/x", "allowed", QoS.AtLeastOnce, id: 2));
            if (!pubOut.Closed) Assert.Equal("allowed", Assert.Single(subOut.Publishes()).Payload);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // ---- 3.8 / 3.9 SUBSCRIBE / SUBACK ----

    [Fact]
    public void MQTT_3_8_4_1_To_3_8_4_5_And_3_9_3_1_OneSubAckWithACodePerFilterInOrder_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s", V4);
        c.Handle(ChannelHarness.Subscribe(321, ("x/#", QoS.ExactlyOnce), ("a", QoS.AtMostOnce), ("b/+", QoS.AtLeastOnce)));
        var suback = Assert.IsType<SubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(321, suback.PacketId);
        Assert.Equal([(ReasonCode)2, ReasonCode.Success, (ReasonCode)1], suback.ReasonCodes);
    }

    [Fact]
    public void MQTT_3_8_4_3_ResubscribingResendsRetainedAndKeepsOneSubscription_V311()
    {
        var h = new ChannelHarness();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("r", "v", retain: true));
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("r", QoS.AtLeastOnce)));
        Assert.Single(subOut.Publishes());
        sub.Handle(ChannelHarness.Subscribe(2, ("r", QoS.AtMostOnce)));
        var again = Assert.Single(subOut.Publishes());
        Assert.True(again.Fields.Retain);
        pub.Handle(ChannelHarness.Publish("r", "live", QoS.AtLeastOnce, id: 1));
        var live = Assert.Single(subOut.Publishes());
        Assert.Equal(QoS.AtMostOnce, live.Fields.QoS);
    }

    [Fact]
    public void MQTT_3_8_4_6_DeliveryQoSIsTheMinimumOfPublishAndGranted_V311()
    {
        var h = new ChannelHarness();
        var (s0, o0, _) = h.Connect("s0", V4);
        s0.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtMostOnce)));
        var (s2, o2, _) = h.Connect("s2", V4);
        s2.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        o0.Take();
        o2.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 1));
        Assert.Equal(QoS.AtMostOnce, Assert.Single(o0.Publishes()).Fields.QoS);
        Assert.Equal(QoS.AtLeastOnce, Assert.Single(o2.Publishes()).Fields.QoS);
    }

    // ---- 3.10 UNSUBSCRIBE ----

    [Fact]
    public void MQTT_3_10_4_4_To_3_10_4_6_OneUnsubAckWithThePacketIdForSeveralFilters_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("u", V4);
        c.Handle(ChannelHarness.Subscribe(1, ("a", QoS.AtLeastOnce), ("b", QoS.AtLeastOnce)));
        output.Take();
        c.Handle(new UnsubscribePacket { PacketId = 77, Filters = ["a", "never", "b"] });
        var unsuback = Assert.IsType<UnsubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(77, unsuback.PacketId);
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("a", "x"));
        pub.Handle(ChannelHarness.Publish("b", "y"));
        Assert.Empty(output.Publishes());
    }

    [Fact]
    public void MQTT_3_10_4_1_FiltersAreComparedCharacterByCharacter_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("u", V4);
        c.Handle(ChannelHarness.Subscribe(1, ("a/+", QoS.AtMostOnce)));
        c.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["a/b"] }); // does not remove a/+
        output.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("a/b", "x"));
        Assert.Single(output.Publishes());
    }

    [Fact]
    public void MQTT_3_10_4_3_InflightQoS1CompletesAfterUnsubscribe_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("u", V4);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        output.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 1));
        var sent = Assert.Single(output.Publishes());
        c.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["t"] });
        output.Take();
        c.Handle(new PublishAckPacket(PacketType.PubAck, sent.Fields.PacketId));
        Assert.False(output.Closed);
        Assert.Empty(output.Take());
    }

    // ---- 3.12 / 3.14 ----

    [Fact]
    public void MQTT_3_12_4_1_PingReqGetsPingResp_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("p", V4);
        c.Handle(PingReqPacket.Instance);
        Assert.IsType<PingRespPacket>(Assert.Single(output.Take()));
    }

    [Fact]
    public void MQTT_3_14_4_3_DisconnectDiscardsTheWill_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtLeastOnce)));
        subOut.Take();
        var (c, output, _) = h.Connect("w", V4, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/w", Payload = "gone"u8.ToArray(), QoS = QoS.AtLeastOnce };
        });
        c.Handle(new DisconnectPacket());
        Assert.True(output.Closed);
        Assert.Null(output.FinalPacket);
        c.OnConnectionClosed();
        Assert.Empty(subOut.Publishes());
    }

    // ---- 4.3 QoS flows ----

    [Fact]
    public void MQTT_4_3_1_1_QoS0IsSentWithQoS0AndDup0_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "x"));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal((QoS.AtMostOnce, false), (got.Fields.QoS, got.Fields.Dup));
    }

    [Fact]
    public void MQTT_4_3_2_1_QoS1SentWithDup0AndKeptUntilPubAck_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "a", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "b", QoS.AtLeastOnce, id: 2));
        var first = subOut.Publishes();
        Assert.All(first, p => Assert.False(p.Fields.Dup));
        Assert.NotEqual(first[0].Fields.PacketId, first[1].Fields.PacketId);
        sub.Handle(new PublishAckPacket(PacketType.PubAck, first[0].Fields.PacketId));
        sub.OnConnectionClosed();
        var (_, again, _) = h.Connect("s", V4, cleanStart: false);
        var resent = Assert.Single(again.Publishes());
        Assert.Equal(("b", first[1].Fields.PacketId, true), (resent.Payload, resent.Fields.PacketId, resent.Fields.Dup));
    }

    [Fact]
    public void MQTT_4_3_2_2_AfterPubAckTheSameIdIsANewMessage_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, pubOut, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "one", QoS.AtLeastOnce, id: 9));
        pub.Handle(ChannelHarness.Publish("t", "two", QoS.AtLeastOnce, id: 9));
        Assert.Equal(["one", "two"], subOut.Publishes().Select(p => p.Payload));
        Assert.Equal(2, pubOut.Take().OfType<PublishAckPacket>().Count(a => a.PacketId == 9));
    }

    [Fact]
    public void MQTT_4_3_3_1_ServerSendsPubRelAfterPubRecAndResendsPubRelNotPublish_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.ExactlyOnce, id: 1));
        var sent = Assert.Single(subOut.Publishes());
        Assert.Equal((QoS.ExactlyOnce, false), (sent.Fields.QoS, sent.Fields.Dup));
        sub.Handle(new PublishAckPacket(PacketType.PubRec, sent.Fields.PacketId));
        var rel = Assert.IsType<PublishAckPacket>(Assert.Single(subOut.Take()));
        Assert.Equal((PacketType.PubRel, sent.Fields.PacketId), (rel.Type, rel.PacketId));
        sub.OnConnectionClosed();
        var (again, againOut, _) = h.Connect("s", V4, cleanStart: false);
        var resent = againOut.Take();
        Assert.DoesNotContain(resent, o => o is SentPublish);
        var rel2 = Assert.IsType<PublishAckPacket>(Assert.Single(resent));
        Assert.Equal((PacketType.PubRel, sent.Fields.PacketId), (rel2.Type, rel2.PacketId));
        again.Handle(new PublishAckPacket(PacketType.PubComp, sent.Fields.PacketId));
        Assert.Empty(againOut.Take());
    }

    [Fact]
    public void MQTT_4_3_3_2_QoS2ResentBeforePubRelIsNotDeliveredTwice_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, pubOut, _) = h.Connect("p", V4, cleanStart: false);
        pub.Handle(ChannelHarness.Publish("t", "once", QoS.ExactlyOnce, id: 3));
        Assert.Equal(PacketType.PubRec, Assert.IsType<PublishAckPacket>(Assert.Single(pubOut.Take())).Type);
        // The publisher reconnects before PUBREL and sends the PUBLISH again with DUP.
        pub.OnConnectionClosed();
        var (pub2, pub2Out, _) = h.Connect("p", V4, cleanStart: false);
        var dup = ChannelHarness.Publish("t", "once", QoS.ExactlyOnce, id: 3);
        dup.Dup = true;
        pub2.Handle(dup);
        var rec = Assert.IsType<PublishAckPacket>(Assert.Single(pub2Out.Take()));
        Assert.Equal((PacketType.PubRec, (ushort)3), (rec.Type, rec.PacketId));
        pub2.Handle(new PublishAckPacket(PacketType.PubRel, 3));
        Assert.Equal(PacketType.PubComp, Assert.IsType<PublishAckPacket>(Assert.Single(pub2Out.Take())).Type);
        Assert.Single(subOut.Publishes());
    }

    // ---- 4.5 / 4.6 ----

    [Fact]
    public void MQTT_4_5_0_1_EveryMatchingSubscriberGetsACopy_V311()
    {
        var h = new ChannelHarness();
        var outs = Enumerable.Range(0, 3).Select(i =>
        {
            var (c, o, _) = h.Connect("s" + i, V4);
            c.Handle(ChannelHarness.Subscribe(1, (i == 0 ? "#" : i == 1 ? "a/+" : "a/b", QoS.AtLeastOnce)));
            o.Take();
            return o;
        }).ToList();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("a/b", "x", QoS.AtLeastOnce, id: 1));
        Assert.All(outs, o => Assert.Equal("x", Assert.Single(o.Publishes()).Payload));
    }

    [Fact]
    public void MQTT_4_6_0_5_And_4_6_0_6_MessagesFromOneClientArriveInOrder_AcrossQoS_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        var expected = new List<string>();
        for (ushort i = 1; i <= 30; i++)
        {
            var qos = (QoS)(i % 3);
            pub.Handle(ChannelHarness.Publish("t/" + (i % 4), "m" + i, qos, id: qos == QoS.AtMostOnce ? (ushort)0 : i));
            if (qos == QoS.ExactlyOnce) pub.Handle(new PublishAckPacket(PacketType.PubRel, i));
            expected.Add("m" + i);
        }
        Assert.Equal(expected, subOut.Publishes().Select(p => p.Payload));
    }

    // ---- 4.7 topics ----

    [Fact]
    public void MQTT_4_7_2_1_WildcardsDoNotMatchDollarTopics_ButExplicitFiltersDo_V311()
    {
        var h = new ChannelHarness();
        var (all, allOut, _) = h.Connect("all", V4);
        all.Handle(ChannelHarness.Subscribe(1, ("#", QoS.AtMostOnce), ("+/x", QoS.AtMostOnce)));
        var (dollar, dollarOut, _) = h.Connect("dollar", V4);
        dollar.Handle(ChannelHarness.Subscribe(1, ("$app/+", QoS.AtMostOnce)));
        allOut.Take();
        dollarOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("$app/x", "d"));
        Assert.Empty(allOut.Publishes());
        Assert.Equal("d", Assert.Single(dollarOut.Publishes()).Payload);
    }

    [Fact]
    public void MQTT_4_7_3_4_NoNormalisationOfTopics_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("a/b", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        foreach (var t in new[] { "A/b", "a//b", "a/b/", "/a/b", "a/ b", "a/b " }) pub.Handle(ChannelHarness.Publish(t, t));
        pub.Handle(ChannelHarness.Publish("a/b", "exact"));
        Assert.Equal(["exact"], subOut.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void MQTT_4_7_1_2_HashMatchesTheParentLevel_V311()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", V4);
        sub.Handle(ChannelHarness.Subscribe(1, ("sport/tennis/#", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", V4);
        pub.Handle(ChannelHarness.Publish("sport/tennis", "parent"));
        pub.Handle(ChannelHarness.Publish("sport/tennis/p1/ranking", "deep"));
        pub.Handle(ChannelHarness.Publish("sport/tennisball", "no"));
        Assert.Equal(["parent", "deep"], subOut.Publishes().Select(p => p.Payload));
    }

    // ---- 4.8 ----

    [Fact]
    public void MQTT_4_8_0_1_ProtocolViolationClosesWithoutAPacket_V311()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c", V4);
        c.OnProtocolError(new MqttProtocolException(ReasonCode.MalformedPacket, "bad", V4));
        Assert.True(output.Closed);
        Assert.Null(output.FinalPacket);
    }
}
