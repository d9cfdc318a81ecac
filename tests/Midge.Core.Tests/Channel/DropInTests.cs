using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>
/// Defects a Mosquitto user and an outside conformance run met: the client's Maximum Packet Size on every packet,
/// a takeover of a session that had to end, acknowledgements of the wrong kind, bridges' $SYS state topic and
/// the default topic depth.
/// </summary>
public sealed class DropInTests
{
    private static Action<ConnectPacket> MaxPacketSize(uint size) => c => c.GetOrCreateProperties().MaximumPacketSize = size;

    [Fact]
    public void MQTT_3_1_2_24_ConnAckLargerThanTheClientsMaximum_IsNotSent_AndNoSessionIsMade()
    {
        var h = new ChannelHarness();
        var (_, output, connack) = h.Connect("tiny", configure: MaxPacketSize(2));
        Assert.Null(connack);
        Assert.True(output.Closed);
        Assert.Null(output.FinalPacket);
        Assert.Empty(output.Take());
        Assert.Equal(0, h.Broker.SessionCount);
    }

    [Fact]
    public void MQTT_3_1_2_24_ConnAckThatFits_IsSent()
    {
        var h = new ChannelHarness();
        var size = (uint)PacketEncoder.GetSize(h.Connect("probe").ConnAck, ProtocolVersion.V500);
        var (_, output, connack) = h.Connect("exact", configure: MaxPacketSize(size));
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        Assert.False(output.Closed);
    }

    [Fact]
    public void MQTT_3_1_2_24_RefusingConnAck_DropsItsReasonString_OrIsNotSent()
    {
        var listener = new ListenerConfig { AllowAnonymous = false };
        var h = new ChannelHarness(listener: listener);
        // Refused (anonymous): the CONNACK carries a Reason String unless that would not fit.
        var (_, _, full) = h.Connect("a");
        Assert.NotNull(full.Properties?.ReasonString);
        var (_, _, bare) = h.Connect("b", configure: MaxPacketSize(8));
        Assert.Equal(ReasonCode.NotAuthorized, bare.ReasonCode);
        Assert.Null(bare.Properties?.ReasonString);
        var (_, output, none) = h.Connect("c", configure: MaxPacketSize(3));
        Assert.Null(none);
        Assert.True(output.Closed);
    }

    [Fact]
    public void MQTT_3_1_2_24_SubAckLargerThanTheClientsMaximum_EndsTheConnectionWith0x95()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c", configure: MaxPacketSize(40));
        // 40 filters: a SUBACK of 40 reason codes (46 bytes) cannot be sent.
        c.Handle(ChannelHarness.Subscribe(1, Enumerable.Range(0, 40).Select(i => ($"t/{i}", QoS.AtMostOnce)).ToArray()));
        Assert.Empty(output.Take().OfType<SubAckPacket>());
        Assert.True(output.Closed);
        Assert.Equal(ReasonCode.PacketTooLarge, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void MQTT_3_1_2_24_PubAckWithAReasonString_LosesTheStringToFit()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = true, MaxQoS = 1 });
        var (c, output, _) = h.Connect("c", configure: MaxPacketSize(64));
        c.Handle(ChannelHarness.Publish("$SYS/x", "no", QoS.AtLeastOnce, id: 3));
        var ack = Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(ReasonCode.NotAuthorized, ack.ReasonCode);
        Assert.True(PacketEncoder.GetSize(ack, ProtocolVersion.V500) <= 64);
        Assert.False(output.Closed);
    }

    [Theory]
    [InlineData(ProtocolVersion.V311)]
    [InlineData(ProtocolVersion.V500)]
    public void TakeoverOfASessionThatEndsWithItsConnection_StartsFresh(ProtocolVersion version)
    {
        // MQTT-3.1.2-6, MQTT-3.2.2-3, 5.0 3.1.2.11.2: Clean Session 1 / Session Expiry 0 ends with the connection,
        // so a new connection with Clean Session 0 gets no session back, even when it is a takeover.
        var h = new ChannelHarness();
        var (old, oldOut, _) = h.Connect("same", version, cleanStart: true);
        old.Handle(ChannelHarness.Subscribe(1, ("x/y", QoS.AtLeastOnce)));
        oldOut.Take();
        var (_, _, connack) = h.Connect("same", version, cleanStart: false,
            configure: version == ProtocolVersion.V500 ? c => c.GetOrCreateProperties().SessionExpiryInterval = 100 : null);
        Assert.False(connack.SessionPresent);
        Assert.True(oldOut.Closed);
        Assert.Equal(0, h.Broker.SubscriptionCount);
        old.OnConnectionClosed();
        Assert.Equal(1, h.Broker.SessionCount);
    }

    [Fact]
    public void TakeoverOfAPersistentSession_StillResumesIt()
    {
        var h = new ChannelHarness();
        var (old, oldOut, _) = h.Connect("same", ProtocolVersion.V311, cleanStart: false);
        old.Handle(ChannelHarness.Subscribe(1, ("x/y", QoS.AtLeastOnce)));
        var (_, _, connack) = h.Connect("same", ProtocolVersion.V311, cleanStart: false);
        Assert.True(connack.SessionPresent);
        Assert.Equal(1, h.Broker.SubscriptionCount);
        _ = oldOut;
    }

    /// <summary>A subscriber with one QoS <paramref name="qos"/> message in flight under packet id 1.</summary>
    private static (Core.Channel.MqttChannel Sub, RecordingOutput Out) OneInFlight(ChannelHarness h, ProtocolVersion version, QoS qos)
    {
        var (sub, subOut, _) = h.Connect("s", version);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", qos)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "m", qos, id: 7));
        Assert.Equal(1, Assert.Single(subOut.Publishes()).Fields.PacketId);
        return (sub, subOut);
    }

    [Theory]
    [InlineData(QoS.AtLeastOnce, PacketType.PubRec)]
    [InlineData(QoS.AtLeastOnce, PacketType.PubComp)]
    [InlineData(QoS.ExactlyOnce, PacketType.PubAck)]
    [InlineData(QoS.ExactlyOnce, PacketType.PubComp)]
    public void MQTT_4_13_1_1_WrongAcknowledgement_V5_IsDisconnectedWith0x82(QoS qos, PacketType wrong)
    {
        var h = new ChannelHarness();
        var (sub, subOut) = OneInFlight(h, ProtocolVersion.V500, qos);
        sub.Handle(new PublishAckPacket(wrong, 1));
        Assert.True(subOut.Closed);
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(subOut.FinalPacket).ReasonCode);
    }

    [Theory]
    [InlineData(QoS.AtLeastOnce, PacketType.PubRec)]
    [InlineData(QoS.ExactlyOnce, PacketType.PubAck)]
    public void MQTT_4_8_0_1_WrongAcknowledgement_V311_IsClosed(QoS qos, PacketType wrong)
    {
        var h = new ChannelHarness();
        var (sub, subOut) = OneInFlight(h, ProtocolVersion.V311, qos);
        sub.Handle(new PublishAckPacket(wrong, 1));
        Assert.True(subOut.Closed);
        Assert.Null(subOut.FinalPacket);
    }

    [Fact]
    public void PubAckAfterPubRel_IsAProtocolError()
    {
        var h = new ChannelHarness();
        var (sub, subOut) = OneInFlight(h, ProtocolVersion.V500, QoS.ExactlyOnce);
        sub.Handle(new PublishAckPacket(PacketType.PubRec, 1));
        Assert.Equal(PacketType.PubRel, Assert.IsType<PublishAckPacket>(Assert.Single(subOut.Take())).Type);
        sub.Handle(new PublishAckPacket(PacketType.PubAck, 1));
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(subOut.FinalPacket).ReasonCode);
    }

    [Fact]
    public void RightAcknowledgements_AndOnesForUnknownIds_AreNotErrors()
    {
        var h = new ChannelHarness();
        var (sub, subOut) = OneInFlight(h, ProtocolVersion.V500, QoS.ExactlyOnce);
        sub.Handle(new PublishAckPacket(PacketType.PubAck, 42)); // not in flight: a late duplicate, say
        sub.Handle(new PublishAckPacket(PacketType.PubComp, 43));
        sub.Handle(new PublishAckPacket(PacketType.PubRec, 1));
        sub.Handle(new PublishAckPacket(PacketType.PubRec, 1)); // repeated: PUBREL again
        sub.Handle(new PublishAckPacket(PacketType.PubComp, 1));
        Assert.False(subOut.Closed);
        Assert.Equal(2, subOut.Take().OfType<PublishAckPacket>().Count(a => a.Type == PacketType.PubRel));
    }

    [Theory]
    [InlineData(ProtocolVersion.V311)]
    [InlineData(ProtocolVersion.V500)]
    public void BridgeFromMosquitto_MayUseItsStateTopic(ProtocolVersion version)
    {
        // A Mosquitto bridge (notifications on) sets its will on $SYS/broker/connection/NAME/state and publishes
        // its state there, retained.
        var h = new ChannelHarness();
        var (watcher, watcherOut, _) = h.Connect("w");
        watcher.Handle(ChannelHarness.Subscribe(1, ("$SYS/broker/connection/#", QoS.AtLeastOnce)));
        watcherOut.Take();
        var (bridge, output, connack) = h.Connect("edge.bridge", version, configure: c =>
        {
            c.IsBridge = true;
            c.Will = new WillMessage { Topic = "$SYS/broker/connection/edge.bridge/state", Payload = "0"u8.ToArray(), QoS = QoS.AtLeastOnce, Retain = true };
        });
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        bridge.Handle(ChannelHarness.Publish("$SYS/broker/connection/edge.bridge/state", "1", QoS.AtLeastOnce, retain: true, id: 1));
        Assert.Equal(ReasonCode.Success, Assert.IsType<PublishAckPacket>(Assert.Single(output.Take())).ReasonCode);
        Assert.Equal("1", Assert.Single(watcherOut.Publishes()).Payload);

        // The rest of $SYS stays the broker's.
        foreach (var topic in new[] { "$SYS/broker/uptime", "$SYS/broker/connection/a/b/state", "$SYS/broker/connection/a/status" })
        {
            bridge.Handle(ChannelHarness.Publish(topic, "x", QoS.AtLeastOnce, id: 2));
            var ack = Assert.IsType<PublishAckPacket>(Assert.Single(output.Take()));
            if (version == ProtocolVersion.V500) Assert.Equal(ReasonCode.NotAuthorized, ack.ReasonCode);
        }
        Assert.Empty(watcherOut.Publishes());
    }

    [Fact]
    public void DefaultTopicDepth_IsMosquittos200Levels()
    {
        var h = new ChannelHarness();
        string Deep(int levels) => string.Join('/', Enumerable.Repeat("a", levels));
        var (c, output, _) = h.Connect("c");
        c.Handle(ChannelHarness.Subscribe(1, (Deep(200), QoS.AtMostOnce), (Deep(201), QoS.AtMostOnce)));
        Assert.Equal([ReasonCode.GrantedQoS0, ReasonCode.TopicFilterInvalid], Assert.IsType<SubAckPacket>(Assert.Single(output.Take())).ReasonCodes);
        c.Handle(ChannelHarness.Publish(Deep(200), "ok", QoS.AtLeastOnce, id: 1));
        c.Handle(ChannelHarness.Publish(Deep(201), "too deep", QoS.AtLeastOnce, id: 2));
        Assert.Equal([ReasonCode.Success, ReasonCode.TopicNameInvalid],
            output.Take().OfType<PublishAckPacket>().Select(a => a.ReasonCode));

        var (_, _, refused) = h.Connect("w", configure: p => p.Will = new WillMessage { Topic = Deep(201), Payload = "x"u8.ToArray() });
        Assert.Equal(ReasonCode.TopicNameInvalid, refused.ReasonCode);
    }
}
