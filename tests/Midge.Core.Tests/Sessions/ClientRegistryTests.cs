using Midge.Core.Channel;
using Midge.Core.Sessions;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Sessions;

/// <summary>The client registry: ownership of client ids, takeover, clean start, resume, and concurrent CONNECTs.</summary>
public class ClientRegistryTests
{
    private static Action<ConnectPacket> Expiry(uint seconds) => c => c.GetOrCreateProperties().SessionExpiryInterval = seconds;

    private static Session SessionOf(ChannelHarness h, string clientId)
    {
        Assert.True(h.Broker.Clients.TryGet(clientId, out var session));
        return session;
    }

    [Fact]
    public void Takeover_ClosesTheOldConnection_AndHandsTheSessionOn()
    {
        var h = new ChannelHarness();
        var (first, firstOut, _) = h.Connect("c", cleanStart: false, configure: Expiry(60));
        var session = SessionOf(h, "c");
        first.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));

        var (second, _, connack) = h.Connect("c", cleanStart: false, configure: Expiry(60));

        Assert.True(connack.SessionPresent);
        Assert.Equal(ReasonCode.SessionTakenOver, Assert.IsType<DisconnectPacket>(firstOut.FinalPacket).ReasonCode);
        Assert.Same(session, SessionOf(h, "c"));
        Assert.Same(second, session.Channel);
        Assert.Single(h.Broker.Clients);
        Assert.Equal(1, session.SubscriptionCount);

        // The old connection's close finds itself taken over: the session stays, attached to the new connection.
        first.OnConnectionClosed();
        Assert.Same(session, SessionOf(h, "c"));
        Assert.True(session.IsOnline);
    }

    [Fact]
    public void CleanStart_ReplacesAnOfflineSession()
    {
        var h = new ChannelHarness();
        var (first, _, _) = h.Connect("c", cleanStart: false, configure: Expiry(60));
        first.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        first.OnConnectionClosed();
        var old = SessionOf(h, "c");

        var (_, output, connack) = h.Connect("c", cleanStart: true, configure: Expiry(60));

        Assert.False(connack.SessionPresent);
        var fresh = SessionOf(h, "c");
        Assert.NotSame(old, fresh);
        Assert.Equal(0, fresh.SubscriptionCount);
        Assert.Equal(0, h.Broker.SubscriptionCount); // the old session left the routing index
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 1));
        Assert.Empty(output.Publishes());
    }

    [Fact]
    public void Resume_KeepsTheSession()
    {
        var h = new ChannelHarness();
        var (first, _, _) = h.Connect("c", cleanStart: false, configure: Expiry(60));
        first.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        first.OnConnectionClosed();
        var old = SessionOf(h, "c");
        Assert.False(old.IsOnline);
        Assert.NotEqual(0, old.DisconnectedAtMs);

        var (second, _, connack) = h.Connect("c", cleanStart: false, configure: Expiry(120));

        Assert.True(connack.SessionPresent);
        Assert.Same(old, SessionOf(h, "c"));
        Assert.Same(second, old.Channel);
        Assert.Equal(0, old.DisconnectedAtMs);
        Assert.Equal(120u, old.ExpiryInterval); // the new CONNECT's Session Expiry Interval
    }

    [Fact]
    public void TakeoverOfASessionThatEndsWithItsConnection_MakesANewOne()
    {
        var h = new ChannelHarness();
        h.Connect("c", cleanStart: false, configure: Expiry(0));
        var old = SessionOf(h, "c");

        var (_, _, connack) = h.Connect("c", cleanStart: false, configure: Expiry(60));

        Assert.False(connack.SessionPresent);
        Assert.NotSame(old, SessionOf(h, "c"));
    }

    [Fact]
    public void Connect_CancelsAWillWaitingForItsDelay()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: p =>
        {
            p.Will = new WillMessage { Topic = "will", Payload = "gone"u8.ToArray(), Properties = new MqttProperties { WillDelayInterval = 10 } };
            p.GetOrCreateProperties().SessionExpiryInterval = 60;
        });
        c.OnConnectionClosed();
        Assert.Equal(1, h.Broker.DelayedWillCount);

        h.Broker.Clients.Connect("c", cleanStart: false, 60, h.Broker.NowMs, static (_, _) => { });

        Assert.Equal(0, h.Broker.DelayedWillCount);
    }

    [Fact]
    public void EndIfOffline_EndsAnOfflineSession_NotAnOnlineOne()
    {
        var h = new ChannelHarness();
        var (c, _, _) = h.Connect("c", cleanStart: false, configure: Expiry(60));
        var session = SessionOf(h, "c");
        Assert.False(h.Broker.Clients.EndIfOffline(session));
        Assert.Single(h.Broker.Clients);

        c.OnConnectionClosed();
        Assert.True(h.Broker.Clients.EndIfOffline(session));
        Assert.Empty(h.Broker.Clients);
    }

    [Fact]
    public void Registry_EnumeratesItsSessions()
    {
        var h = new ChannelHarness();
        h.Connect("a", cleanStart: false, configure: Expiry(60));
        h.Connect("b", cleanStart: false, configure: Expiry(60));
        Assert.Equal(["a", "b"], h.Broker.Clients.Select(s => s.ClientId).Order());
    }

    [Fact]
    public void ConcurrentConnects_OfOneClientId_LeaveOneSession_OwnedByTheLastConnect()
    {
        var h = new ChannelHarness();
        const int threads = 16, rounds = 20;
        var connections = new System.Collections.Concurrent.ConcurrentBag<(MqttChannel Channel, RecordingOutput Output, ConnAckPacket ConnAck)>();
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < rounds; i++)
            {
                // Not h.Connect: a later CONNECT may take this one over before it looks for its CONNACK.
                var (channel, output) = h.Open();
                channel.Handle(new ConnectPacket
                {
                    ClientId = "same",
                    ProtocolVersion = ProtocolVersion.V500,
                    ProtocolName = "MQTT",
                    CleanStart = false,
                    KeepAlive = 60,
                    Properties = new MqttProperties { SessionExpiryInterval = 60 },
                });
                connections.Add((channel, output, output.TakeFirst<ConnAckPacket>()));
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        Assert.Single(h.Broker.Clients);
        var session = SessionOf(h, "same");
        // Every connection but one was taken over by a later CONNECT: the one left is the last, and it owns the session.
        var open = Assert.Single(connections, c => !c.Output.Closed);
        Assert.Same(open.Channel, session.Channel);
        Assert.All(connections.Where(c => c.Output.Closed),
            c => Assert.Equal(ReasonCode.SessionTakenOver, Assert.IsType<DisconnectPacket>(c.Output.FinalPacket).ReasonCode));
        // One session all along: only the first CONNECT found none.
        Assert.Single(connections, c => !c.ConnAck.SessionPresent);
    }

    [Fact]
    public void ConcurrentConnects_ThroughTheRegistry_AreSerialised()
    {
        var h = new ChannelHarness();
        const int threads = 8, rounds = 200;
        int inside = 0, maxInside = 0, fresh = 0;
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<Session, byte>();
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < rounds; i++)
            {
                h.Broker.Clients.Connect("x", cleanStart: false, 60, h.Broker.NowMs, (session, present) =>
                {
                    int now = Interlocked.Increment(ref inside);
                    if (now > Volatile.Read(ref maxInside)) Volatile.Write(ref maxInside, now);
                    if (!present) Interlocked.Increment(ref fresh);
                    seen.TryAdd(session, 0);
                    Interlocked.Decrement(ref inside);
                });
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        Assert.Equal(1, maxInside); // one attach at a time: the client id's lock
        Assert.Equal(1, fresh);
        Assert.Single(seen);
        Assert.Single(h.Broker.Clients);
    }

    [Fact]
    public void Session_IsSeenThroughItsInterface()
    {
        var h = new ChannelHarness();
        var (c, output, _) = h.Connect("c", cleanStart: false, configure: Expiry(300));
        c.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        output.Take();
        c.OnConnectionClosed();
        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("t", "m1", QoS.AtLeastOnce, id: 1));

        ISession session = SessionOf(h, "c");
        Assert.Equal("c", session.ClientId);
        Assert.Equal(300u, session.ExpiryInterval);
        Assert.False(session.IsOnline);
        Assert.Equal(1, session.SubscriptionCount);
        Assert.Equal(QoS.AtLeastOnce, Assert.Single(session.Subscriptions, s => s.Filter == "t").QoS);
        Assert.Equal(1, session.QueuedCount);
        Assert.Equal(0, session.InflightCount);

        var state = session.GetState();
        Assert.Equal(300u, state.ExpiryInterval);
        Assert.Equal(h.Broker.UtcNow, state.DisconnectedAt);
        Assert.Equal("t", Assert.Single(state.Subscriptions).Filter);
        var queued = Assert.Single(state.Queued);
        Assert.Equal("m1", System.Text.Encoding.UTF8.GetString(queued.Message.Payload.Span));
        Assert.Equal(QoS.AtLeastOnce, queued.QoS);
    }
}
