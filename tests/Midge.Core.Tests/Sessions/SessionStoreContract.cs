using System.Text;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Core.Tests.Sessions;

/// <summary>
/// What every session store (<see cref="ISessionStore"/>) must do, whatever keeps the state: a subclass supplies the
/// store (<see cref="CreateStore"/>) and, for a store that keeps state outside the object, how to open it again
/// (<see cref="Reopen"/>: every state read back goes through it, so a database store is checked across a reopen).
/// </summary>
public abstract class SessionStoreContract
{
    /// <summary>A new, empty store.</summary>
    protected abstract ISessionStore CreateStore();

    /// <summary>The same store as a restarted broker would open it (after a flush); the store itself for one that
    /// lives in memory.</summary>
    protected virtual ISessionStore Reopen(ISessionStore store) => store;

    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private IReadOnlyList<SessionState> LoadAll(ISessionStore store)
    {
        store.FlushAsync().AsTask().GetAwaiter().GetResult();
        return Reopen(store).LoadAll();
    }

    private SessionState? Load(ISessionStore store, string clientId) => LoadAll(store).SingleOrDefault(s => s.ClientId == clientId);

    private SessionState LoadOne(ISessionStore store, string clientId) =>
        Load(store, clientId) ?? throw new Xunit.Sdk.XunitException($"session {clientId} not found");

    private static StoredMessage Msg(string topic, string payload, QoS qos = QoS.AtLeastOnce) =>
        new(topic, Encoding.UTF8.GetBytes(payload), qos, Retain: false);

    private static SessionState Empty(string clientId, uint expiry = 3600) => new(clientId) { ExpiryInterval = expiry };

    [Fact]
    public void EmptyStore_LoadsNothing()
    {
        var store = CreateStore();
        Assert.Empty(LoadAll(store));
    }

    [Fact]
    public void SaveAndLoad_RoundTripsEveryField()
    {
        var store = CreateStore();
        var properties = new MqttProperties
        {
            PayloadFormatIndicator = 1,
            ContentType = "text/plain",
            ResponseTopic = "reply/to",
            CorrelationData = [1, 2, 3],
            UserProperties = [new("k", "v"), new("k", "w")],
        };
        var full = new StoredMessage("mount/a/b", new byte[] { 0, 1, 2, 255 }, QoS.ExactlyOnce, Retain: true)
        {
            Properties = properties,
            OriginClientId = "publisher",
            OriginUserName = "alice",
            ExpiresAt = Now.AddSeconds(90),
        };
        var state = new SessionState("c1")
        {
            ExpiryInterval = uint.MaxValue,
            DisconnectedAt = Now.AddMinutes(-5),
            Subscriptions =
            [
                new Subscription("mount/a/+", QoS.AtLeastOnce)
                {
                    NoLocal = true,
                    RetainAsPublished = true,
                    RetainHandling = RetainHandling.SendAtSubscribeIfNew,
                    SubscriptionId = 42,
                    ClientFilter = "a/+",
                },
                new Subscription("x/#", QoS.ExactlyOnce) { Exclusive = true, ClientFilter = "$exclusive/x/#" },
                new Subscription("$share/g/y", QoS.AtMostOnce),
            ],
            Queued =
            [
                new QueuedMessage(7, full, QoS.AtLeastOnce, Retain: true, [1, 42]),
                new QueuedMessage(9, Msg("q/2", "second", QoS.AtMostOnce), QoS.AtMostOnce, Retain: false, null),
            ],
            Inflight =
            [
                new InflightMessage(5, 1, Msg("i/1", "one"), QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck),
                new InflightMessage(65535, 2, Msg("i/2", "two", QoS.ExactlyOnce), QoS.ExactlyOnce, true, [3], InflightState.AwaitingPubRec),
                new InflightMessage(1, 3, Msg("i/3", "three", QoS.ExactlyOnce), QoS.ExactlyOnce, false, null, InflightState.AwaitingPubComp),
            ],
            IncomingQoS2 = [3, 10, 65535],
            Will = new StoredWill(Msg("will/c1", "gone"), 30) { DueAt = Now.AddSeconds(30) },
        };
        store.SessionSaved(state);

        AssertSameState(state, LoadOne(store, "c1"));
    }

    [Fact]
    public void SessionSaved_ReplacesWhatWasHeld()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c") with
        {
            Subscriptions = [new Subscription("old", QoS.AtMostOnce)],
            Queued = [new QueuedMessage(1, Msg("t", "old"), QoS.AtLeastOnce, false, null)],
            IncomingQoS2 = [1],
        });
        store.SessionSaved(Empty("c", 60) with { Subscriptions = [new Subscription("new", QoS.AtLeastOnce)] });

        var loaded = LoadOne(store, "c");
        Assert.Equal(60u, loaded.ExpiryInterval);
        Assert.Equal(["new"], loaded.Subscriptions.Select(s => s.Filter));
        Assert.Empty(loaded.Queued);
        Assert.Empty(loaded.IncomingQoS2);
    }

    [Fact]
    public void SessionUpdated_ChangesExpiryAndConnectionState()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        store.SessionUpdated("c", 120, Now);
        var loaded = LoadOne(store, "c");
        Assert.Equal(120u, loaded.ExpiryInterval);
        Assert.Equal(Now, loaded.DisconnectedAt);

        store.SessionUpdated("c", uint.MaxValue, null);
        loaded = LoadOne(store, "c");
        Assert.Equal(uint.MaxValue, loaded.ExpiryInterval);
        Assert.Null(loaded.DisconnectedAt);
    }

    [Fact]
    public void Subscriptions_AreSetReplacedAndRemoved()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        store.SubscriptionSet("c", new Subscription("a/+", QoS.AtMostOnce));
        store.SubscriptionSet("c", new Subscription("b/#", QoS.AtLeastOnce) { SubscriptionId = 1 });
        store.SubscriptionSet("c", new Subscription("a/+", QoS.ExactlyOnce) { NoLocal = true, SubscriptionId = 2 });
        store.SubscriptionRemoved("c", "b/#");
        store.SubscriptionRemoved("c", "never/subscribed");

        var subscription = Assert.Single(LoadOne(store, "c").Subscriptions);
        Assert.Equal(new Subscription("a/+", QoS.ExactlyOnce) { NoLocal = true, SubscriptionId = 2 }, subscription);
    }

    [Fact]
    public void Queue_KeepsItsOrder_AndLosesMessagesFromAnywhere()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        for (int i = 1; i <= 10; i++) store.MessageQueued("c", new QueuedMessage(i, Msg("t", "m" + i), QoS.AtLeastOnce, false, null));
        store.MessageDequeued("c", 1); // the front, as a delivery takes it
        store.MessageDequeued("c", 2);
        store.MessageDequeued("c", 6); // from the middle, as expiry or a shared group takes it
        store.MessageDequeued("c", 99); // not queued: nothing happens
        store.MessageQueued("c", new QueuedMessage(11, Msg("t", "m11"), QoS.AtMostOnce, true, [5]));

        var queued = LoadOne(store, "c").Queued;
        Assert.Equal([3L, 4, 5, 7, 8, 9, 10, 11], queued.Select(q => q.Sequence));
        Assert.Equal(["m3", "m4", "m5", "m7", "m8", "m9", "m10", "m11"], queued.Select(q => Encoding.UTF8.GetString(q.Message.Payload.Span)));
        var last = queued[^1];
        Assert.Equal(QoS.AtMostOnce, last.QoS);
        Assert.True(last.Retain);
        Assert.Equal([5u], last.SubscriptionIds!);
    }

    [Fact]
    public void Inflight_MovesThroughItsStates()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        store.InflightAdded("c", new InflightMessage(1, 1, Msg("t", "qos1"), QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck));
        store.InflightAdded("c", new InflightMessage(2, 2, Msg("t", "qos2"), QoS.ExactlyOnce, false, null, InflightState.AwaitingPubRec));
        store.InflightAdded("c", new InflightMessage(3, 3, Msg("t", "qos2b"), QoS.ExactlyOnce, false, null, InflightState.AwaitingPubRec));

        store.InflightAdvanced("c", 2, InflightState.AwaitingPubComp); // PUBREC came, PUBREL sent
        var inflight = LoadOne(store, "c").Inflight;
        Assert.Equal([1, 2, 3], inflight.Select(m => (int)m.PacketId));
        Assert.Equal([InflightState.AwaitingPubAck, InflightState.AwaitingPubComp, InflightState.AwaitingPubRec], inflight.Select(m => m.State));
        Assert.Equal("qos2", Encoding.UTF8.GetString(inflight[1].Message.Payload.Span)); // advancing keeps the message

        store.InflightCompleted("c", 1); // PUBACK
        store.InflightCompleted("c", 2); // PUBCOMP
        store.InflightAdvanced("c", 9, InflightState.AwaitingPubComp); // not in flight: nothing happens
        var left = Assert.Single(LoadOne(store, "c").Inflight);
        Assert.Equal(3, left.PacketId);

        // A packet id is used again once its flow ended; the new message goes after the older ones.
        store.InflightAdded("c", new InflightMessage(1, 4, Msg("t", "again"), QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck));
        inflight = LoadOne(store, "c").Inflight;
        Assert.Equal([3, 1], inflight.Select(m => (int)m.PacketId));
        Assert.Equal("again", Encoding.UTF8.GetString(inflight[1].Message.Payload.Span));
    }

    [Fact]
    public void IncomingQoS2_IdsAreAddedAndReleased()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        store.IncomingQoS2Added("c", 7);
        store.IncomingQoS2Added("c", 3);
        store.IncomingQoS2Added("c", 7); // a retransmission: still one
        store.IncomingQoS2Removed("c", 3);
        store.IncomingQoS2Removed("c", 100);
        Assert.Equal([(ushort)7], LoadOne(store, "c").IncomingQoS2);
    }

    [Fact]
    public void Will_IsSetAndCleared()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        store.WillChanged("c", new StoredWill(Msg("will", "w1"), 0));
        var due = new StoredWill(Msg("will", "w2") with { Properties = new MqttProperties { ContentType = "x" } }, 10) { DueAt = Now };
        store.WillChanged("c", due);
        var loaded = LoadOne(store, "c").Will;
        Assert.NotNull(loaded);
        AssertSameWill(due, loaded);

        store.WillChanged("c", null);
        Assert.Null(LoadOne(store, "c").Will);
    }

    [Fact]
    public void SessionRemoved_RemovesEverything()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c") with { Will = new StoredWill(Msg("w", "w"), 5) });
        store.SubscriptionSet("c", new Subscription("a", QoS.AtLeastOnce));
        store.MessageQueued("c", new QueuedMessage(1, Msg("a", "1"), QoS.AtLeastOnce, false, null));
        store.InflightAdded("c", new InflightMessage(1, 1, Msg("a", "0"), QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck));
        store.IncomingQoS2Added("c", 1);
        store.SessionSaved(Empty("other"));

        store.SessionRemoved("c");
        store.SessionRemoved("never-there");
        Assert.Equal(["other"], LoadAll(store).Select(s => s.ClientId));

        // Saved again, it starts from what is saved, nothing of before.
        store.SessionSaved(Empty("c"));
        var again = LoadOne(store, "c");
        Assert.Empty(again.Subscriptions);
        Assert.Empty(again.Queued);
        Assert.Empty(again.Inflight);
        Assert.Empty(again.IncomingQoS2);
        Assert.Null(again.Will);
    }

    [Fact]
    public void ChangesToASessionNotHeld_AreIgnored()
    {
        var store = CreateStore();
        store.SessionUpdated("ghost", 10, Now);
        store.SubscriptionSet("ghost", new Subscription("a", QoS.AtMostOnce));
        store.SubscriptionRemoved("ghost", "a");
        store.MessageQueued("ghost", new QueuedMessage(1, Msg("a", "1"), QoS.AtLeastOnce, false, null));
        store.MessageDequeued("ghost", 1);
        store.InflightAdded("ghost", new InflightMessage(1, 1, Msg("a", "1"), QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck));
        store.InflightAdvanced("ghost", 1, InflightState.AwaitingPubComp);
        store.InflightCompleted("ghost", 1);
        store.IncomingQoS2Added("ghost", 1);
        store.IncomingQoS2Removed("ghost", 1);
        store.WillChanged("ghost", new StoredWill(Msg("w", "w"), 0));
        Assert.Empty(LoadAll(store));
    }

    [Fact]
    public void ManySessions_AreKeptApart()
    {
        var store = CreateStore();
        const int n = 2000;
        for (int i = 0; i < n; i++)
        {
            string id = "client-" + i;
            store.SessionSaved(Empty(id, (uint)i + 1));
            store.SubscriptionSet(id, new Subscription("t/" + i, QoS.AtLeastOnce));
            store.MessageQueued(id, new QueuedMessage(1, Msg("t/" + i, "p" + i), QoS.AtLeastOnce, false, null));
        }
        for (int i = 0; i < n; i += 2) store.SessionRemoved("client-" + i);

        var all = LoadAll(store).ToDictionary(s => s.ClientId);
        Assert.Equal(n / 2, all.Count);
        for (int i = 1; i < n; i += 2)
        {
            var state = all["client-" + i];
            Assert.Equal((uint)i + 1, state.ExpiryInterval);
            Assert.Equal("t/" + i, Assert.Single(state.Subscriptions).Filter);
            Assert.Equal("p" + i, Encoding.UTF8.GetString(Assert.Single(state.Queued).Message.Payload.Span));
        }
    }

    [Fact]
    public void ConcurrentWriters_OnDifferentSessions_LoseNothing()
    {
        var store = CreateStore();
        const int threads = 8, perThread = 25, messages = 40;
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            for (int s = 0; s < perThread; s++)
            {
                string id = $"t{t}-s{s}";
                store.SessionSaved(Empty(id));
                for (int m = 1; m <= messages; m++)
                {
                    store.MessageQueued(id, new QueuedMessage(m, Msg("t", $"{id}-{m}"), QoS.AtLeastOnce, false, null));
                    store.SubscriptionSet(id, new Subscription("f/" + (m % 4), QoS.AtLeastOnce));
                    if (m % 2 == 0)
                    {
                        // Every second message goes into flight and half of those complete.
                        store.MessageDequeued(id, m);
                        var packetId = (ushort)m;
                        store.InflightAdded(id, new InflightMessage(packetId, m, Msg("t", $"{id}-{m}"), QoS.ExactlyOnce, false, null,
                            InflightState.AwaitingPubRec));
                        store.InflightAdvanced(id, packetId, InflightState.AwaitingPubComp);
                        if (m % 4 == 0) store.InflightCompleted(id, packetId);
                    }
                    store.IncomingQoS2Added(id, (ushort)m);
                    if (m % 3 != 0) store.IncomingQoS2Removed(id, (ushort)m);
                }
                store.SubscriptionRemoved(id, "f/0");
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        var all = LoadAll(store);
        Assert.Equal(threads * perThread, all.Count);
        foreach (var state in all)
        {
            Assert.Equal(Enumerable.Range(1, messages).Where(m => m % 2 == 1).Select(m => (long)m), state.Queued.Select(q => q.Sequence));
            Assert.Equal(Enumerable.Range(1, messages).Where(m => m % 4 == 2).Select(m => (ushort)m), state.Inflight.Select(i => i.PacketId));
            Assert.All(state.Inflight, i => Assert.Equal(InflightState.AwaitingPubComp, i.State));
            Assert.Equal(["f/1", "f/2", "f/3"], state.Subscriptions.Select(s => s.Filter).Order());
            Assert.Equal(Enumerable.Range(1, messages).Where(m => m % 3 == 0).Select(m => (ushort)m), state.IncomingQoS2);
            Assert.All(state.Queued, q => Assert.StartsWith(state.ClientId + "-", Encoding.UTF8.GetString(q.Message.Payload.Span)));
        }
    }

    [Fact]
    public void InflightFromTheQueue_LeavesTheQueueInTheSameChange()
    {
        var store = CreateStore();
        store.SessionSaved(Empty("c"));
        store.MessageQueued("c", new QueuedMessage(1, Msg("t", "waited"), QoS.AtLeastOnce, false, null));
        store.MessageQueued("c", new QueuedMessage(2, Msg("t", "still waits"), QoS.AtLeastOnce, false, null));
        store.InflightAdded("c", new InflightMessage(9, 1, Msg("t", "waited"), QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck)
        {
            FromQueue = 1,
        });
        var state = LoadOne(store, "c");
        Assert.Equal([2L], state.Queued.Select(q => q.Sequence));
        Assert.Equal([(ushort)9], state.Inflight.Select(f => f.PacketId));
    }

    [Fact]
    public async Task Retained_IsSetReplacedAndRemoved()
    {
        var store = CreateStore();
        store.RetainedSet(Msg("r/1", "one") with { Retain = true });
        store.RetainedSet(Msg("r/2", "two") with { Retain = true, ExpiresAt = Now.AddHours(1), OriginClientId = "p", OriginUserName = "u" });
        store.RetainedSet(Msg("r/1", "one again", QoS.ExactlyOnce) with { Retain = true });
        store.RetainedSet(Msg("r/3", "three") with { Retain = true });
        store.RetainedRemoved("r/3");
        store.RetainedRemoved("r/never");
        await store.FlushAsync();
        var retained = Reopen(store).LoadRetained().OrderBy(m => m.Topic, StringComparer.Ordinal).ToList();
        Assert.Equal(["r/1", "r/2"], retained.Select(m => m.Topic));
        AssertSameMessage(Msg("r/1", "one again", QoS.ExactlyOnce) with { Retain = true }, retained[0]);
        AssertSameMessage(Msg("r/2", "two") with { Retain = true, ExpiresAt = Now.AddHours(1), OriginClientId = "p", OriginUserName = "u" }, retained[1]);
    }

    [Fact]
    public async Task Totals_AreKeptAsLastSaved()
    {
        var store = CreateStore();
        Assert.Null(store.LoadTotals());
        store.TotalsSaved(new StoredTotals { MessagesReceived = 1, BytesSent = 2 });
        var totals = new StoredTotals
        {
            MessagesReceived = 10,
            MessagesSent = 20,
            PublishReceived = 3,
            PublishSent = 4,
            PublishDropped = 5,
            BytesReceived = 600,
            BytesSent = 700,
            ConnectsTotal = 8,
            ClientsMaximum = 9,
            ClientsExpired = 1,
        };
        store.TotalsSaved(totals);
        await store.FlushAsync();
        Assert.Equal(totals, Reopen(store).LoadTotals());
    }

    [Fact]
    public async Task Bans_AreSetReplacedAndRemoved()
    {
        var store = CreateStore();
        Assert.Empty(store.LoadBans());
        var forever = new Ban(BanKind.ClientId, "spammer", "http_api", "spam", Now, null);
        var forAnHour = new Ban(BanKind.PeerHost, "10.0.0.7", "ops", "", Now, Now.AddHours(1));
        store.BanSet(forever with { Reason = "first" });
        store.BanSet(forever);
        store.BanSet(forAnHour);
        store.BanSet(new Ban(BanKind.Username, "spammer", "http_api", "", Now, null));
        store.BanRemoved(BanKind.Username, "spammer");
        store.BanRemoved(BanKind.Username, "never");
        await store.FlushAsync();
        var bans = Reopen(store).LoadBans().OrderBy(b => b.As).ToList();
        Assert.Equal([forever, forAnHour], bans);
    }

    [Fact]
    public async Task Flush_Completes()
    {
        var store = CreateStore();
        await store.FlushAsync();
        store.SessionSaved(Empty("c"));
        store.MessageQueued("c", new QueuedMessage(1, Msg("a", "1"), QoS.AtLeastOnce, false, null));
        await store.FlushAsync();
        Assert.Single(LoadOne(store, "c").Queued);
    }

    /// <summary>Field by field: a store may give back equal records, not the same ones.</summary>
    private static void AssertSameState(SessionState expected, SessionState actual)
    {
        Assert.Equal(expected.ClientId, actual.ClientId);
        Assert.Equal(expected.ExpiryInterval, actual.ExpiryInterval);
        Assert.Equal(expected.DisconnectedAt, actual.DisconnectedAt);
        Assert.Equal(expected.Subscriptions.OrderBy(s => s.Filter, StringComparer.Ordinal), actual.Subscriptions.OrderBy(s => s.Filter, StringComparer.Ordinal));
        Assert.Equal(expected.Queued.Count, actual.Queued.Count);
        for (int i = 0; i < expected.Queued.Count; i++)
        {
            var (e, a) = (expected.Queued[i], actual.Queued[i]);
            Assert.Equal((e.Sequence, e.QoS, e.Retain), (a.Sequence, a.QoS, a.Retain));
            Assert.Equal(e.SubscriptionIds ?? [], a.SubscriptionIds ?? []);
            AssertSameMessage(e.Message, a.Message);
        }
        Assert.Equal(expected.Inflight.Count, actual.Inflight.Count);
        for (int i = 0; i < expected.Inflight.Count; i++)
        {
            var (e, a) = (expected.Inflight[i], actual.Inflight[i]);
            Assert.Equal((e.PacketId, e.Sequence, e.QoS, e.Retain, e.State), (a.PacketId, a.Sequence, a.QoS, a.Retain, a.State));
            Assert.Equal(e.SubscriptionIds ?? [], a.SubscriptionIds ?? []);
            AssertSameMessage(e.Message, a.Message);
        }
        Assert.Equal(expected.IncomingQoS2, actual.IncomingQoS2);
        if (expected.Will is null) Assert.Null(actual.Will);
        else AssertSameWill(expected.Will, actual.Will!);
    }

    private static void AssertSameWill(StoredWill expected, StoredWill actual)
    {
        Assert.Equal((expected.DelayInterval, expected.DueAt), (actual.DelayInterval, actual.DueAt));
        AssertSameMessage(expected.Message, actual.Message);
    }

    private static void AssertSameMessage(StoredMessage expected, StoredMessage actual)
    {
        Assert.Equal((expected.Topic, expected.QoS, expected.Retain), (actual.Topic, actual.QoS, actual.Retain));
        Assert.Equal(expected.Payload.ToArray(), actual.Payload.ToArray());
        Assert.Equal((expected.OriginClientId, expected.OriginUserName, expected.ExpiresAt),
            (actual.OriginClientId, actual.OriginUserName, actual.ExpiresAt));
        var (e, a) = (expected.Properties, actual.Properties);
        if (e is null)
        {
            Assert.Null(a);
            return;
        }
        Assert.NotNull(a);
        Assert.Equal((e.PayloadFormatIndicator, e.ContentType, e.ResponseTopic), (a.PayloadFormatIndicator, a.ContentType, a.ResponseTopic));
        Assert.Equal(e.CorrelationData?.ToArray(), a.CorrelationData?.ToArray());
        Assert.Equal(e.UserProperties?.Select(p => (p.Name, p.Value)), a.UserProperties?.Select(p => (p.Name, p.Value)));
    }
}

/// <summary>The contract, against the in-memory store.</summary>
public sealed class MemorySessionStoreTests : SessionStoreContract
{
    protected override ISessionStore CreateStore() => new MemorySessionStore();
}
