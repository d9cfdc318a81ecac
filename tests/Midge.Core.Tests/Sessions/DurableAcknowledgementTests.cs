using Midge.Config;
using Midge.Core.Channel;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Sessions;

/// <summary>
/// A session store that writes to disk: PUBACK, PUBREC and PUBCOMP wait until what they acknowledge is durable, in
/// order, without holding the connection's other packets; a store that fails gets no acknowledgement out. The store
/// here is the memory store behind a gate: every change makes it "dirty", and a flush completes when the test opens
/// the gate.
/// </summary>
public class DurableAcknowledgementTests
{
    private static Action<ConnectPacket> Expiry(uint seconds) => c => c.GetOrCreateProperties().SessionExpiryInterval = seconds;

    /// <summary>A persistent subscriber to t/#, offline: messages to it are changes of a stored session.</summary>
    private static ChannelHarness WithStoredSubscriber(GatedStore store, BrokerConfig? config = null)
    {
        var h = new ChannelHarness(config: config, store: store);
        var (sub, subOut, _) = h.Connect("sub", cleanStart: false, configure: Expiry(3600));
        sub.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.ExactlyOnce)));
        subOut.Take();
        sub.OnConnectionClosed();
        store.Open(); // what the subscriber did is on disk
        return h;
    }

    [Fact]
    public void PubAck_WaitsForTheFlush_AndAcksLeaveInOrder()
    {
        var store = new GatedStore();
        var h = WithStoredSubscriber(store);
        var (pub, pubOut, _) = h.Connect("pub");

        pub.Handle(ChannelHarness.Publish("t/1", "one", QoS.AtLeastOnce, id: 1));
        var first = store.Gate;
        pub.Handle(ChannelHarness.Publish("t/2", "two", QoS.ExactlyOnce, id: 2));
        pub.Handle(ChannelHarness.Publish("x", "nobody's", QoS.AtLeastOnce, id: 3)); // needs nothing stored, but must not overtake
        pub.Handle(new PingReqPacket()); // not an acknowledgement: goes at once
        Assert.Equal([PacketType.PingResp], pubOut.Take().Cast<MqttPacket>().Select(p => p.Type));

        store.Open();
        var acks = WaitFor(pubOut, 3).Cast<PublishAckPacket>().ToList();
        Assert.Equal([(PacketType.PubAck, (ushort)1), (PacketType.PubRec, (ushort)2), (PacketType.PubAck, (ushort)3)],
            acks.Select(a => (a.Type, a.PacketId)));
        Assert.True(first.IsCompleted);
        Assert.Equal(2, store.Inner.Get("sub")!.Queued.Count);
    }

    [Fact]
    public void PubComp_WaitsForTheReleaseToBeStored()
    {
        var store = new GatedStore();
        var h = new ChannelHarness(store: store);
        var (pub, pubOut, _) = h.Connect("pub", cleanStart: false, configure: Expiry(3600));
        store.Open();
        pub.Handle(ChannelHarness.Publish("t", "once", QoS.ExactlyOnce, id: 9));
        Assert.Empty(pubOut.Take()); // the incoming id is recorded: PUBREC waits
        store.Open();
        Assert.Equal(PacketType.PubRec, WaitFor(pubOut, 1).Cast<PublishAckPacket>().Single().Type);

        pub.Handle(new PublishAckPacket(PacketType.PubRel, 9));
        Assert.Empty(pubOut.Take());
        store.Open();
        Assert.Equal(PacketType.PubComp, WaitFor(pubOut, 1).Cast<PublishAckPacket>().Single().Type);
    }

    [Fact]
    public void NothingPending_AcksAtOnce()
    {
        var store = new GatedStore();
        var h = new ChannelHarness(store: store);
        var (pub, pubOut, _) = h.Connect("pub"); // a session that ends with its connection: nothing stored
        pub.Handle(ChannelHarness.Publish("t", "x", QoS.AtLeastOnce, id: 1));
        Assert.Equal(PacketType.PubAck, pubOut.TakeFirst<PublishAckPacket>().Type);
    }

    [Fact]
    public void SnapshotMode_DoesNotWait()
    {
        var store = new GatedStore();
        var h = WithStoredSubscriber(store, new BrokerConfig { PersistenceMode = PersistenceMode.Snapshot });
        var (pub, pubOut, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("t/1", "one", QoS.AtLeastOnce, id: 1));
        Assert.False(store.Gate.IsCompleted);
        Assert.Equal(PacketType.PubAck, pubOut.TakeFirst<PublishAckPacket>().Type);
    }

    [Fact]
    public void AFailedFlush_AcknowledgesNothing_AndClosesTheConnection()
    {
        var store = new GatedStore();
        var h = WithStoredSubscriber(store);
        var (pub, pubOut, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("t/1", "one", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t/2", "two", QoS.AtLeastOnce, id: 2));
        store.Fail(new IOException("disk full"));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!pubOut.Closed && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.True(pubOut.Closed);
        Assert.Equal(ReasonCode.UnspecifiedError, Assert.IsType<DisconnectPacket>(pubOut.FinalPacket).ReasonCode);
        Assert.DoesNotContain(pubOut.Take(), p => p is PublishAckPacket);
    }

    [Fact]
    public async Task TooManyHeld_TheReadLoopWaitsForTheOldest()
    {
        var store = new GatedStore();
        var h = WithStoredSubscriber(store, new BrokerConfig { MaxQueuedMessages = 0 });
        var (pub, pubOut, _) = h.Connect("pub", ProtocolVersion.V311);
        ValueTask last = default;
        for (int i = 1; i <= MqttChannel.MaxHeldAcknowledgements; i++)
        {
            last = pub.Handle(ChannelHarness.Publish("t/" + i, "m", QoS.AtLeastOnce, id: (ushort)i));
            Assert.Equal(i == MqttChannel.MaxHeldAcknowledgements, !last.IsCompleted);
        }
        store.Open();
        await last.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MqttChannel.MaxHeldAcknowledgements, WaitFor(pubOut, MqttChannel.MaxHeldAcknowledgements).Count);
    }

    [Fact]
    public void QoS2ToAStoredSubscriber_IsWrittenAhead_AndWhatFollowsWaitsBehindIt()
    {
        var store = new GatedStore();
        var h = new ChannelHarness(store: store);
        var (sub, subOut, _) = h.Connect("sub", cleanStart: false, configure: Expiry(3600));
        sub.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.ExactlyOnce)));
        store.Open();
        WaitFor(subOut, 1); // SUBACK
        var (pub, _, _) = h.Connect("pub");

        pub.Handle(ChannelHarness.Publish("t/2", "exactly once", QoS.ExactlyOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("t/0", "after it"));
        Assert.Empty(subOut.Take()); // its packet id is not on disk yet: nothing leaves, the QoS 0 one waits behind
        store.Open();
        var sent = WaitFor(subOut, 2).Cast<SentPublish>().ToList();
        Assert.Equal(["exactly once", "after it"], sent.Select(p => p.Payload));

        // PUBREL waits until the PUBREC it answers is stored: a crash in between resends the PUBLISH with DUP.
        sub.Handle(new PublishAckPacket(PacketType.PubRec, sent[0].Fields.PacketId));
        Assert.Empty(subOut.Take());
        store.Open();
        Assert.Equal(PacketType.PubRel, WaitFor(subOut, 1).Cast<PublishAckPacket>().Single().Type);
    }

    [Fact]
    public void QoS2ToASessionThatEndsWithItsConnection_IsNotHeld()
    {
        var store = new GatedStore();
        var h = WithStoredSubscriber(store);
        var (sub, subOut, _) = h.Connect("clean");
        sub.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.ExactlyOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("t/1", "now", QoS.ExactlyOnce, id: 1));
        Assert.Equal(["now"], subOut.Publishes().Select(p => p.Payload));
    }

    private static List<object> WaitFor(RecordingOutput output, int count)
    {
        var got = new List<object>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (got.Count < count && DateTime.UtcNow < deadline)
        {
            got.AddRange(output.Take());
            if (got.Count < count) Thread.Sleep(2);
        }
        Assert.Equal(count, got.Count);
        return got;
    }

    /// <summary>The memory store, with flushes that complete only when the test says so.</summary>
    private sealed class GatedStore : ISessionStore
    {
        private readonly object _sync = new();
        private TaskCompletionSource _gate = NewGate();
        private bool _dirty;

        public MemorySessionStore Inner { get; } = new();

        /// <summary>The flush that the changes recorded so far wait for.</summary>
        public Task Gate
        {
            get
            {
                lock (_sync) return _gate.Task;
            }
        }

        private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Everything recorded so far is durable.</summary>
        public void Open() => Complete(g => g.SetResult());

        /// <summary>The write of everything recorded so far failed.</summary>
        public void Fail(Exception ex) => Complete(g => g.SetException(ex));

        private void Complete(Action<TaskCompletionSource> complete)
        {
            TaskCompletionSource gate;
            lock (_sync)
            {
                gate = _gate;
                _gate = NewGate();
                _dirty = false;
            }
            complete(gate);
        }

        private void Dirty()
        {
            lock (_sync) _dirty = true;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            lock (_sync) return _dirty ? new ValueTask(_gate.Task) : ValueTask.CompletedTask;
        }

        public IReadOnlyList<SessionState> LoadAll() => Inner.LoadAll();
        public void SessionSaved(SessionState state) { Inner.SessionSaved(state); Dirty(); }
        public void SessionRemoved(string clientId) { Inner.SessionRemoved(clientId); Dirty(); }
        public void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt) { Inner.SessionUpdated(clientId, expiryInterval, disconnectedAt); Dirty(); }
        public void SubscriptionSet(string clientId, Subscription subscription) { Inner.SubscriptionSet(clientId, subscription); Dirty(); }
        public void SubscriptionRemoved(string clientId, string filter) { Inner.SubscriptionRemoved(clientId, filter); Dirty(); }
        public void MessageQueued(string clientId, QueuedMessage message) { Inner.MessageQueued(clientId, message); Dirty(); }
        public void MessageDequeued(string clientId, long sequence) { Inner.MessageDequeued(clientId, sequence); Dirty(); }
        public void InflightAdded(string clientId, InflightMessage message) { Inner.InflightAdded(clientId, message); Dirty(); }
        public void InflightAdvanced(string clientId, ushort packetId, InflightState state) { Inner.InflightAdvanced(clientId, packetId, state); Dirty(); }
        public void InflightCompleted(string clientId, ushort packetId) { Inner.InflightCompleted(clientId, packetId); Dirty(); }
        public void IncomingQoS2Added(string clientId, ushort packetId) { Inner.IncomingQoS2Added(clientId, packetId); Dirty(); }
        public void IncomingQoS2Removed(string clientId, ushort packetId) { Inner.IncomingQoS2Removed(clientId, packetId); Dirty(); }
        public void WillChanged(string clientId, StoredWill? will) { Inner.WillChanged(clientId, will); Dirty(); }
        public void BeginGroup() => Inner.BeginGroup();
        public void EndGroup() => Inner.EndGroup();
        public IReadOnlyList<StoredMessage> LoadRetained() => Inner.LoadRetained();
        public void RetainedSet(StoredMessage message) { Inner.RetainedSet(message); Dirty(); }
        public void RetainedRemoved(string topic) { Inner.RetainedRemoved(topic); Dirty(); }
        public StoredTotals? LoadTotals() => Inner.LoadTotals();
        public void TotalsSaved(StoredTotals totals) { Inner.TotalsSaved(totals); Dirty(); }
        public IReadOnlyList<Ban> LoadBans() => Inner.LoadBans();
        public void BanSet(Ban ban) { Inner.BanSet(ban); Dirty(); }
        public void BanRemoved(BanKind kind, string who) { Inner.BanRemoved(kind, who); Dirty(); }
    }
}
