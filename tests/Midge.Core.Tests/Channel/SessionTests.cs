using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

public class SessionTests
{
    [Fact]
    public void MQTT_2_2_1_3_PacketIdsStartAtOneAndAreUnique()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 3; i++) pub.Handle(ChannelHarness.Publish("t", "m" + i, QoS.AtLeastOnce, id: i));
        Assert.Equal(new ushort[] { 1, 2, 3 }, subOut.Publishes().Select(p => p.Fields.PacketId));
    }

    [Fact]
    public void MaxInflightMessages_QueuesBeyondWindow_AndSendsOnAck()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxInflightMessages = 2 });
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 5; i++) pub.Handle(ChannelHarness.Publish("t", "m" + i, QoS.AtLeastOnce, id: i));
        var first = subOut.Publishes();
        Assert.Equal(["m1", "m2"], first.Select(p => p.Payload));
        sub.Handle(new PublishAckPacket(PacketType.PubAck, first[0].Fields.PacketId));
        Assert.Equal(["m3"], subOut.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void MQTT_3_3_4_9_ClientReceiveMaximumIsNeverExceeded()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", configure: c => c.GetOrCreateProperties().ReceiveMaximum = 1);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p");
        for (ushort i = 1; i <= 3; i++) pub.Handle(ChannelHarness.Publish("t", "m" + i, QoS.ExactlyOnce, id: i));
        var sent = subOut.Publishes();
        Assert.Single(sent);
        sub.Handle(new PublishAckPacket(PacketType.PubRec, sent[0].Fields.PacketId));
        Assert.IsType<PublishAckPacket>(Assert.Single(subOut.Take())); // PUBREL; still in flight
        sub.Handle(new PublishAckPacket(PacketType.PubComp, sent[0].Fields.PacketId));
        Assert.Equal(["m2"], subOut.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void MQTT_4_4_0_1_UnacknowledgedMessagesResentWithDupOnResume()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("t", "unacked", QoS.AtLeastOnce, id: 1));
        var original = Assert.Single(subOut.Publishes());
        Assert.False(original.Fields.Dup);
        sub.OnConnectionClosed();
        var (_, again, connack) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        Assert.True(connack.SessionPresent);
        var resent = Assert.Single(again.Publishes());
        Assert.True(resent.Fields.Dup);
        Assert.Equal(original.Fields.PacketId, resent.Fields.PacketId);
    }

    [Fact]
    public void PubRelResentOnResumeForQoS2AwaitingPubComp()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.ExactlyOnce, id: 1));
        var sent = Assert.Single(subOut.Publishes());
        sub.Handle(new PublishAckPacket(PacketType.PubRec, sent.Fields.PacketId));
        subOut.Take();
        sub.OnConnectionClosed();
        var (_, again, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        var rel = Assert.IsType<PublishAckPacket>(Assert.Single(again.Take()));
        Assert.Equal(PacketType.PubRel, rel.Type);
    }

    [Fact]
    public void OfflinePersistentSession_QueuesQoS1_NotQoS0ByDefault()
    {
        var h = new ChannelHarness();
        var (sub, _, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        sub.Handle(new DisconnectPacket());
        sub.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("t", "q0"));
        pub.Handle(ChannelHarness.Publish("t", "q1", QoS.AtLeastOnce, id: 1));
        var (_, again, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        Assert.Equal(["q1"], again.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void QueueQoS0Messages_QueuesQoS0ForOfflineSession()
    {
        var h = new ChannelHarness(new BrokerConfig { QueueQoS0Messages = true });
        var (sub, _, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        sub.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("t", "q0"));
        var (_, again, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        Assert.Equal(["q0"], again.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void MaxQueuedMessages_DropsBeyondLimitAndCounts()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxQueuedMessages = 2 });
        var (sub, _, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        sub.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (ushort i = 1; i <= 5; i++) pub.Handle(ChannelHarness.Publish("t", "m" + i, QoS.AtLeastOnce, id: i));
        Assert.Equal(3, h.Broker.Stats.PublishDropped);
        var (_, again, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        Assert.Equal(["m1", "m2"], again.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void CleanSession_DiscardsStateOnDisconnect()
    {
        var h = new ChannelHarness();
        var (sub, _, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: true);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        Assert.Equal(1, h.Broker.SubscriptionCount);
        sub.OnConnectionClosed();
        Assert.Equal(0, h.Broker.SubscriptionCount);
        Assert.Equal(0, h.Broker.SessionCount);
    }

    [Fact]
    public void V5_SessionExpiry_RemovesSessionAfterInterval()
    {
        var h = new ChannelHarness();
        var (sub, _, _) = h.Connect("s", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 10);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        sub.OnConnectionClosed();
        h.Time.Advance(TimeSpan.FromSeconds(9));
        h.Broker.Tick();
        Assert.Equal(1, h.Broker.SessionCount);
        h.Time.Advance(TimeSpan.FromSeconds(2));
        h.Broker.Tick();
        Assert.Equal(0, h.Broker.SessionCount);
        Assert.Equal(1, h.Broker.Stats.ClientsExpired);
    }

    [Fact]
    public void MQTT_3_14_2_2_SessionExpiryFromZeroAtDisconnectIsProtocolError()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("s");
        var d = new DisconnectPacket();
        d.GetOrCreateProperties().SessionExpiryInterval = 100;
        c.Handle(d);
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void PersistentClientExpiration_ExpiresV311Sessions()
    {
        var h = new ChannelHarness(new BrokerConfig { PersistentClientExpiration = TimeSpan.FromHours(1) });
        var (sub, _, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.OnConnectionClosed();
        h.Time.Advance(TimeSpan.FromMinutes(61));
        h.Broker.Tick();
        Assert.Equal(0, h.Broker.SessionCount);
    }

    [Fact]
    public void MessageExpiry_ForwardsRemainingInterval_AndDropsExpiredQueued()
    {
        var h = new ChannelHarness();
        var (sub, _, _) = h.Connect("s", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 3600);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        sub.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p");
        var shortLived = ChannelHarness.Publish("t", "short", QoS.AtLeastOnce, id: 1);
        shortLived.GetOrCreateProperties().MessageExpiryInterval = 5;
        pub.Handle(shortLived);
        var longLived = ChannelHarness.Publish("t", "long", QoS.AtLeastOnce, id: 2);
        longLived.GetOrCreateProperties().MessageExpiryInterval = 60;
        pub.Handle(longLived);
        h.Time.Advance(TimeSpan.FromSeconds(10));
        var (_, again, _) = h.Connect("s", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 3600);
        var got = Assert.Single(again.Publishes());
        Assert.Equal("long", got.Payload);
        Assert.Equal(50u, got.Fields.MessageExpiryInterval);
    }

    [Fact]
    public void SlowSubscriber_QoS0HeldInBoundedQueue_ThenDrained_ThenDroppedBeyondLimit()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxQueuedMessages = 3 });
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtMostOnce)));
        subOut.Take();
        subOut.Backlog = int.MaxValue; // the socket is not keeping up
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        for (int i = 1; i <= 5; i++) pub.Handle(ChannelHarness.Publish("t", "m" + i));
        Assert.Empty(subOut.Publishes());
        Assert.Equal(2, h.Broker.Stats.PublishDropped); // publishers were never blocked, the excess was counted
        subOut.Backlog = 0;
        sub.OnOutputDrained();
        Assert.Equal(["m1", "m2", "m3"], subOut.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void ExpiredButStartedDelivery_IsStillResentOnResume_AndCompletes()
    {
        var h = new ChannelHarness();
        Action<ConnectPacket> persistent = c => c.GetOrCreateProperties().SessionExpiryInterval = 3600;
        var (sub, subOut, _) = h.Connect("s", cleanStart: false, configure: persistent);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p");
        var p = ChannelHarness.Publish("t", "x", QoS.ExactlyOnce, id: 1);
        p.GetOrCreateProperties().MessageExpiryInterval = 5;
        pub.Handle(p);
        var first = Assert.Single(subOut.Publishes()); // sent, PUBREC never came
        sub.OnConnectionClosed();
        h.Time.Advance(TimeSpan.FromSeconds(30));
        var (again, againOut, _) = h.Connect("s", cleanStart: false, configure: persistent);
        var resent = Assert.Single(againOut.Publishes());
        Assert.True(resent.Fields.Dup);
        Assert.Equal(first.Fields.PacketId, resent.Fields.PacketId);
        Assert.Equal(1u, resent.Fields.MessageExpiryInterval);
        again.Handle(new PublishAckPacket(PacketType.PubRec, resent.Fields.PacketId));
        again.Handle(new PublishAckPacket(PacketType.PubComp, resent.Fields.PacketId));
        Assert.Equal(0, h.Broker.Clients.TryGet("s", out var session) ? session!.InflightCount : -1);
    }

    [Fact]
    public void QoS0_ForAWriterHoldingMaxQueuedBytes_WaitsInTheBoundedQueue_AndIsDroppedBeyondIt()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxQueuedBytes = 10, MaxQueuedMessages = 100 });
        var (sub, subOut, _) = h.Connect("s", ProtocolVersion.V311);
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtMostOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        subOut.BacklogBytes = 8; // the writer still holds 8 bytes of payload the socket has not taken
        for (int i = 0; i < 4; i++) pub.Handle(ChannelHarness.Publish("t", "abcd"));
        // 8 + 4 > 10: nothing goes to the writer; the queue takes 10 bytes' worth (two), the rest is dropped.
        Assert.Empty(subOut.Publishes());
        Assert.Equal(2, sub.Session!.QueuedCount);
        Assert.Equal(2, h.Broker.Stats.PublishDropped);
        subOut.BacklogBytes = 0;
        sub.OnOutputDrained();
        Assert.Equal(2, subOut.Publishes().Count);
    }

    [Fact]
    public void RetainedOnSubscribe_WaitsForTheWriter_NoneCutByTheQueueLimits_AndLiveMessagesComeAfter()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxQueuedMessages = 100 });
        var (pub, _, _) = h.Connect("p");
        for (int i = 0; i < 5000; i++) pub.Handle(ChannelHarness.Publish($"ret/{i}", "old", retain: true));
        var (sub, subOut, _) = h.Connect("s");
        subOut.Backlog = Midge.Core.Sessions.MessageQueue.MaxDirectBacklog; // the writer is full: nothing can go straight out
        sub.Handle(ChannelHarness.Subscribe(1, ("ret/#", QoS.AtMostOnce)));
        pub.Handle(ChannelHarness.Publish("ret/0", "new", retain: true)); // a live message during the backlog
        Assert.Empty(subOut.Publishes());

        subOut.Backlog = 0;
        sub.OnOutputDrained();
        var got = subOut.Publishes();
        Assert.Equal(5001, got.Count);
        Assert.All(got.Take(5000), p => Assert.True(p.Fields.Retain));
        Assert.Equal(("ret/0", "new"), (got[^1].Topic, got[^1].Payload)); // after the old retained value
        Assert.Equal(0, h.Broker.Stats.PublishDropped);
    }

    [Fact]
    public void QueueOfAnOfflineClient_IsBoundedBy64MiB_WhenMaxQueuedBytesIsNotSet()
    {
        var h = new ChannelHarness();
        var (sub, _, _) = h.Connect("s", ProtocolVersion.V311, cleanStart: false);
        sub.Handle(ChannelHarness.Subscribe(1, ("big", QoS.AtLeastOnce)));
        sub.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p", ProtocolVersion.V311);
        var payload = new byte[1024 * 1024];
        for (ushort id = 1; id <= 70; id++)
        {
            pub.Handle(new PublishPacket { Topic = "big", Payload = payload, QoS = QoS.AtLeastOnce, PacketId = id });
        }
        Assert.True(h.Broker.Clients.TryGet("s", out var session));
        Assert.Equal(64, session!.QueuedCount);
        Assert.Equal(6, h.Broker.Stats.PublishDropped);
    }
}
