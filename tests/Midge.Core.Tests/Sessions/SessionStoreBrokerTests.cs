using Midge.Core.Protection;
using Midge.Core.Sessions.Store;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Sessions;

/// <summary>A broker with a session store: what it records, and what a broker made again on the same store (a
/// restart) gets back.</summary>
public class SessionStoreBrokerTests
{
    private static Action<ConnectPacket> Expiry(uint seconds) => c => c.GetOrCreateProperties().SessionExpiryInterval = seconds;

    [Fact]
    public void PersistentSession_SurvivesARestart_WithItsSubscriptionsAndQueuedMessages()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (sub, subOut, _) = h.Connect("sub", cleanStart: false, configure: Expiry(3600));
        sub.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.AtLeastOnce)));
        subOut.Take();
        sub.OnConnectionClosed();
        var (pub, _, _) = h.Connect("pub");
        for (ushort i = 1; i <= 3; i++) pub.Handle(ChannelHarness.Publish("t/" + i, "m" + i, QoS.AtLeastOnce, id: i));
        pub.Handle(ChannelHarness.Publish("t/0", "qos0")); // not queued for a client that is away (queue_qos0_messages false)
        pub.OnConnectionClosed();

        // A new broker on the same store: the old one is gone with its connections.
        var restarted = new ChannelHarness(store: store, time: h.Time);
        Assert.Equal(1, restarted.Broker.SessionCount);
        Assert.Equal(1, restarted.Broker.SubscriptionCount);
        Assert.True(restarted.Broker.HeldBytes > 0); // the queued payloads count towards memory_limit again

        var (again, againOut, connack) = restarted.Connect("sub", cleanStart: false, configure: Expiry(3600));
        Assert.True(connack.SessionPresent);
        var received = againOut.Publishes();
        Assert.Equal(["m1", "m2", "m3"], received.Select(p => p.Payload));
        Assert.Equal(["t/1", "t/2", "t/3"], received.Select(p => p.Topic));
        Assert.All(received, p => Assert.Equal(QoS.AtLeastOnce, p.Fields.QoS));

        // The restored subscription routes new messages too.
        var (pub2, _, _) = restarted.Connect("pub");
        pub2.Handle(ChannelHarness.Publish("t/4", "m4", QoS.AtLeastOnce, id: 1));
        Assert.Equal(["m4"], againOut.Publishes().Select(p => p.Payload));

        // Acknowledged, the messages leave the store too.
        foreach (var p in received) again.Handle(new PublishAckPacket(PacketType.PubAck, p.Fields.PacketId));
        var state = store.Get("sub")!;
        Assert.Empty(state.Queued);
        Assert.Single(state.Inflight); // m4, not acknowledged yet
    }

    [Fact]
    public void UnacknowledgedMessages_AreResentWithDup_AfterARestart()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (sub, subOut, _) = h.Connect("sub", cleanStart: false, configure: Expiry(3600));
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("t", "one", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t", "two", QoS.ExactlyOnce, id: 2));
        var sent = subOut.Publishes();
        Assert.Equal(2, sent.Count);
        sub.Handle(new PublishAckPacket(PacketType.PubRec, sent[1].Fields.PacketId)); // "two" now awaits PUBCOMP
        subOut.Take();
        sub.OnConnectionClosed();

        var restarted = new ChannelHarness(store: store, time: h.Time);
        var (_, output, connack) = restarted.Connect("sub", cleanStart: false, configure: Expiry(3600));

        Assert.True(connack.SessionPresent);
        var resent = output.Take();
        var publish = Assert.IsType<SentPublish>(resent[0]);
        Assert.Equal("one", publish.Payload);
        Assert.True(publish.Fields.Dup);
        Assert.Equal(sent[0].Fields.PacketId, publish.Fields.PacketId);
        var pubrel = Assert.IsType<PublishAckPacket>(resent[1]);
        Assert.Equal(PacketType.PubRel, pubrel.Type);
        Assert.Equal(sent[1].Fields.PacketId, pubrel.PacketId);
    }

    [Fact]
    public void IncomingQoS2_IsNotRoutedTwice_AfterARestart()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (pub, pubOut, _) = h.Connect("pub", cleanStart: false, configure: Expiry(3600));
        pub.Handle(ChannelHarness.Publish("t", "once", QoS.ExactlyOnce, id: 7));
        Assert.Equal(PacketType.PubRec, pubOut.TakeFirst<PublishAckPacket>().Type);
        pub.OnConnectionClosed(); // PUBREL never came

        var restarted = new ChannelHarness(store: store, time: h.Time);
        var (watcher, watcherOut, _) = restarted.Connect("watcher");
        watcher.Handle(ChannelHarness.Subscribe(1, ("t", QoS.ExactlyOnce)));
        watcherOut.Take();
        var (again, againOut, _) = restarted.Connect("pub", cleanStart: false, configure: Expiry(3600));
        var resend = ChannelHarness.Publish("t", "once", QoS.ExactlyOnce, id: 7);
        resend.Dup = true;
        again.Handle(resend);

        Assert.Equal(PacketType.PubRec, againOut.TakeFirst<PublishAckPacket>().Type);
        Assert.Empty(watcherOut.Publishes()); // routed before the restart: not again
        again.Handle(new PublishAckPacket(PacketType.PubRel, 7));
        Assert.Empty(store.Get("pub")!.IncomingQoS2);
    }

    [Fact]
    public void RestoredSession_ExpiresAfterItsInterval_CountedFromItsDisconnection()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: Expiry(60));
        c.OnConnectionClosed();
        h.Time.Advance(TimeSpan.FromSeconds(40));

        var restarted = new ChannelHarness(store: store, time: h.Time);
        Assert.Equal(1, restarted.Broker.SessionCount);
        restarted.Time.Advance(TimeSpan.FromSeconds(19));
        restarted.Broker.Tick();
        Assert.Equal(1, restarted.Broker.SessionCount);
        restarted.Time.Advance(TimeSpan.FromSeconds(1));
        restarted.Broker.Tick();
        Assert.Equal(0, restarted.Broker.SessionCount);
        Assert.Equal(0, store.Count); // gone from the store too
    }

    [Fact]
    public void DelayedWill_StillGoes_AfterARestart()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/c", Payload = "gone"u8.ToArray(), Properties = new MqttProperties { WillDelayInterval = 30 } };
            p.GetOrCreateProperties().SessionExpiryInterval = 3600;
        });
        Assert.Equal("will/c", store.Get("c")!.Will!.Message.Topic);
        c.OnConnectionClosed();
        Assert.NotNull(store.Get("c")!.Will!.DueAt);
        h.Time.Advance(TimeSpan.FromSeconds(10));

        var restarted = new ChannelHarness(store: store, time: h.Time);
        var (watcher, watcherOut, _) = restarted.Connect("watcher");
        watcher.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtMostOnce)));
        watcherOut.Take();
        restarted.Time.Advance(TimeSpan.FromSeconds(19));
        restarted.Broker.Tick();
        Assert.Empty(watcherOut.Publishes());
        restarted.Time.Advance(TimeSpan.FromSeconds(1));
        restarted.Broker.Tick();
        Assert.Equal("gone", Assert.Single(watcherOut.Publishes()).Payload);
        Assert.Null(store.Get("c")!.Will); // published: forgotten
    }

    [Fact]
    public void NormalDisconnect_ClearsTheStoredWill()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/c", Payload = "gone"u8.ToArray() };
            p.GetOrCreateProperties().SessionExpiryInterval = 3600;
        });
        Assert.NotNull(store.Get("c")!.Will);
        c.Handle(new DisconnectPacket { ReasonCode = ReasonCode.NormalDisconnection });
        c.OnConnectionClosed();
        Assert.Null(store.Get("c")!.Will);
        Assert.NotNull(store.Get("c")!.DisconnectedAt);
    }

    [Fact]
    public void StoreFollowsTheSession()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, output, _) = h.Connect("c", cleanStart: false, configure: Expiry(100));
        var saved = store.Get("c")!;
        Assert.Equal(100u, saved.ExpiryInterval);
        Assert.Null(saved.DisconnectedAt);

        c.Handle(ChannelHarness.Subscribe(1, ("a", QoS.AtLeastOnce), ("b", QoS.ExactlyOnce)));
        c.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["a"] });
        output.Take();
        Assert.Equal(["b"], store.Get("c")!.Subscriptions.Select(s => s.Filter));

        // MQTT 5: a DISCONNECT that sets the Session Expiry Interval to 0 ends the session with the connection.
        var disconnect = new DisconnectPacket { ReasonCode = ReasonCode.NormalDisconnection };
        disconnect.GetOrCreateProperties().SessionExpiryInterval = 0;
        c.Handle(disconnect);
        Assert.Null(store.Get("c"));
        c.OnConnectionClosed();
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void SessionsThatEndWithTheirConnection_AreNeverStored()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, output, _) = h.Connect("clean", ProtocolVersion.V311, cleanStart: true);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        output.Take();
        var (pub, _, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("t", "m", QoS.AtLeastOnce, id: 1));
        Assert.Single(output.Publishes());
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void CleanStart_RemovesTheStoredSession_AndStoresTheNewOne()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, output, _) = h.Connect("c", ProtocolVersion.V311, cleanStart: false);
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        output.Take();
        c.OnConnectionClosed();
        Assert.Single(store.Get("c")!.Subscriptions);

        h.Connect("c", ProtocolVersion.V311, cleanStart: true); // 3.1.1 clean session: not stored at all
        Assert.Null(store.Get("c"));

        h.Connect("c", configure: Expiry(10)); // MQTT 5 clean start with a lifetime: a new, empty session
        var state = store.Get("c")!;
        Assert.Equal(10u, state.ExpiryInterval);
        Assert.Empty(state.Subscriptions);
    }

    [Fact]
    public void AdministrativeEnd_RemovesTheStoredSession()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: Expiry(100));
        c.OnConnectionClosed();
        Assert.True(h.Broker.DisconnectClient("c", endSession: true));
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void WillOfAConnectionUpAtACrash_GoesAfterItsDelay_FromTheRestart()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        h.Connect("c", cleanStart: false, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/c", Payload = "lost"u8.ToArray(), Properties = new MqttProperties { WillDelayInterval = 5 } };
            p.GetOrCreateProperties().SessionExpiryInterval = 3600;
        });
        // The broker dies with the connection up: nothing ends it.

        var restarted = new ChannelHarness(store: store, time: h.Time);
        Assert.NotNull(store.Get("c")!.Will!.DueAt); // now waiting for its delay, as after any lost connection
        var (watcher, watcherOut, _) = restarted.Connect("watcher");
        watcher.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtMostOnce)));
        watcherOut.Take();
        restarted.Time.Advance(TimeSpan.FromSeconds(4));
        restarted.Broker.Tick();
        Assert.Empty(watcherOut.Publishes());
        restarted.Time.Advance(TimeSpan.FromSeconds(1));
        restarted.Broker.Tick();
        Assert.Equal("lost", Assert.Single(watcherOut.Publishes()).Payload);
    }

    [Fact]
    public void CleanShutdown_SendsNoWill_BeforeOrAfterTheRestart()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will/c", Payload = "lost"u8.ToArray() };
            p.GetOrCreateProperties().SessionExpiryInterval = 3600;
        });
        h.Broker.Shutdown();
        c.OnConnectionClosed();
        Assert.Null(store.Get("c")!.Will);

        var restarted = new ChannelHarness(store: store, time: h.Time);
        var (watcher, watcherOut, _) = restarted.Connect("watcher");
        watcher.Handle(ChannelHarness.Subscribe(1, ("will/#", QoS.AtMostOnce)));
        watcherOut.Take();
        restarted.Time.Advance(TimeSpan.FromSeconds(5));
        restarted.Broker.Tick();
        Assert.Empty(watcherOut.Publishes());
    }

    [Fact]
    public void RetainedMessages_SurviveARestart_ButNotSysOrExpiredOnes()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (pub, _, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("r/kept", "k", QoS.AtLeastOnce, retain: true, id: 1));
        pub.Handle(ChannelHarness.Publish("r/cleared", "c", retain: true));
        pub.Handle(ChannelHarness.Publish("r/cleared", "", retain: true));
        var expiring = ChannelHarness.Publish("r/expiring", "e", retain: true);
        expiring.GetOrCreateProperties().MessageExpiryInterval = 10;
        pub.Handle(expiring);
        h.Broker.PublishFromBroker("$SYS/broker/uptime", "1 seconds"u8.ToArray(), retain: true);
        Assert.Equal(["r/expiring", "r/kept"], store.LoadRetained().Select(m => m.Topic).Order());

        h.Time.Advance(TimeSpan.FromSeconds(11));
        var restarted = new ChannelHarness(store: store, time: h.Time);
        Assert.Equal(1, restarted.Broker.RetainedCount);
        Assert.Equal(["r/kept"], store.LoadRetained().Select(m => m.Topic)); // the expired one is forgotten too
        var (sub, subOut, _) = restarted.Connect("sub");
        sub.Handle(ChannelHarness.Subscribe(1, ("r/#", QoS.AtLeastOnce)));
        var got = Assert.Single(subOut.Publishes());
        Assert.Equal(("r/kept", "k", true), (got.Topic, got.Payload, got.Fields.Retain));
        Assert.True(restarted.Broker.HeldBytes > 0);
    }

    [Fact]
    public void AdministratorsBans_SurviveARestart_UntilLiftedOrOver()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var now = h.Broker.UtcNow;
        Assert.True(h.Broker.AddBan(new Ban(BanKind.ClientId, "spammer", "http_api", "spam", now, null)));
        Assert.True(h.Broker.AddBan(new Ban(BanKind.PeerHost, "::ffff:10.0.0.7", "ops", "", now, now.AddMinutes(10))));
        Assert.True(h.Broker.AddBan(new Ban(BanKind.Username, "lifted", "ops", "", now, null)));
        Assert.True(h.Broker.RemoveBan(BanKind.Username, "lifted"));
        h.Broker.Bans.Set(new Ban(BanKind.ClientId, "flapper", "flapping_detect", "", now, now.AddMinutes(5)));

        var restarted = new ChannelHarness(store: store, time: h.Time);
        // The address as the list holds it; flapping_detect's ban is not stored (it lasts minutes).
        Assert.Equal(["10.0.0.7", "spammer"], restarted.Broker.Bans.All().Select(b => b.Who).Order(StringComparer.Ordinal));
        var (_, _, connack) = restarted.Connect("spammer");
        Assert.Equal(ReasonCode.Banned, connack.ReasonCode);

        // Lifted after the restart, or over by the next one: gone from the store too.
        Assert.True(restarted.Broker.RemoveBan(BanKind.ClientId, "spammer"));
        h.Time.Advance(TimeSpan.FromMinutes(11));
        var later = new ChannelHarness(store: store, time: h.Time);
        Assert.Empty(later.Broker.Bans.All());
        Assert.Empty(store.LoadBans());
    }

    [Fact]
    public void Totals_GoOnFromTheLastRun()
    {
        var store = new MemorySessionStore();
        var h = new ChannelHarness(store: store);
        var (pub, _, _) = h.Connect("pub");
        for (int i = 0; i < 3; i++) pub.Handle(ChannelHarness.Publish("t", "x"));
        h.Broker.SaveTotals();
        Assert.Equal(3, store.LoadTotals()!.PublishReceived);

        var restarted = new ChannelHarness(store: store, time: h.Time);
        var (again, _, _) = restarted.Connect("pub");
        again.Handle(ChannelHarness.Publish("t", "x"));
        Assert.Equal(4, restarted.Broker.Stats.PublishReceived);
        Assert.Equal(2, restarted.Broker.Stats.ConnectsTotal);
    }
}
