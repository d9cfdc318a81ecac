using Midge.Core.Sessions.Store;
using static Midge.Persistence.Tests.Records;

namespace Midge.Persistence.Tests;

/// <summary>Changes that undo each other within one batch are skipped, and what is written is still exactly the
/// state the changes left.</summary>
public sealed class CoalescingTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    private string StorePath => _directory.File("store.db");

    public void Dispose() => _directory.Dispose();

    /// <summary>Snapshot mode with no autosave: every change below is in the one batch written at close.</summary>
    private SqliteSessionStore OpenOneBatch() =>
        SqliteSessionStore.Open(StorePath, new SqliteStoreOptions { Mode = StoreMode.Snapshot, AutosaveInterval = TimeSpan.Zero });

    [Fact]
    public void MessagesDeliveredWithinABatch_NeverReachTheFile()
    {
        var store = OpenOneBatch();
        store.SessionSaved(Session("c"));
        for (int i = 1; i <= 100; i++)
        {
            var m = Msg("t", "m" + i);
            store.MessageQueued("c", Queued(i, m));
            store.MessageDequeued("c", i);
            var id = (ushort)(i % 7 + 1); // packet ids come back: each flight pairs with its own completion
            store.InflightAdded("c", new InflightMessage(id, i, m, Midge.Protocol.QoS.ExactlyOnce, false, null, Core.Sessions.InflightState.AwaitingPubRec));
            store.InflightAdvanced("c", id, Core.Sessions.InflightState.AwaitingPubComp);
            store.InflightCompleted("c", id);
            store.IncomingQoS2Added("c", id);
            store.IncomingQoS2Removed("c", id);
        }
        store.MessageQueued("c", Queued(101, Msg("t", "kept")));
        store.Dispose();

        Assert.Equal(700, store.ChangesCoalesced);
        Assert.Equal(1, Count(StorePath, "SELECT count(*) FROM messages"));
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var state = Assert.Single(reopened.LoadAll());
        Assert.Equal(["kept"], state.Queued.Select(Text));
        Assert.Empty(state.Inflight);
        Assert.Empty(state.IncomingQoS2);
    }

    [Fact]
    public void APairAcrossASessionRewrite_IsWritten()
    {
        var store = OpenOneBatch();
        store.SessionSaved(Session("c"));
        store.MessageQueued("c", Queued(1, Msg("t", "before")));
        // The session is saved whole in between (with the message): the dequeue must still remove it.
        store.SessionSaved(Session("c") with { Queued = [Queued(1, Msg("t", "before"))] });
        store.MessageDequeued("c", 1);
        store.InflightAdded("c", new InflightMessage(5, 2, Msg("t", "flying"), Midge.Protocol.QoS.AtLeastOnce, false, null, Core.Sessions.InflightState.AwaitingPubAck));
        store.SessionRemoved("c");
        store.SessionSaved(Session("c"));
        store.InflightCompleted("c", 5); // not held by the new session: nothing to pair with
        store.Dispose();

        Assert.Equal(0, store.ChangesCoalesced);
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var state = Assert.Single(reopened.LoadAll());
        Assert.Empty(state.Queued);
        Assert.Empty(state.Inflight);
        Assert.Equal(0, Count(StorePath, "SELECT count(*) FROM messages"));
    }

    [Fact]
    public void AMoveFromTheQueue_IsOneChange_WhicheverBatchTheQueuedMessageWasWrittenIn()
    {
        // Queued and sent in one batch: the queued row never exists; the dequeue after deletes nothing.
        var store = OpenOneBatch();
        store.SessionSaved(Session("c"));
        store.MessageQueued("c", Queued(1, Msg("t", "one")));
        store.InflightAdded("c", Flight(1, "one") with { FromQueue = 1 });
        store.MessageDequeued("c", 1);
        store.MessageQueued("c", Queued(2, Msg("t", "two")));
        store.InflightAdded("c", Flight(2, "two") with { FromQueue = 2 });
        store.InflightCompleted("c", 2);
        store.Dispose();
        var state = Reload();
        Assert.Empty(state.Queued);
        Assert.Equal([(ushort)1], state.Inflight.Select(f => f.PacketId));

        // Queued in an earlier batch, sent and completed in this one: the queued row must still go.
        store = OpenOneBatch();
        store.MessageQueued("c", Queued(3, Msg("t", "three")));
        store.Dispose();
        store = OpenOneBatch();
        store.InflightAdded("c", Flight(3, "three") with { FromQueue = 3 });
        store.InflightCompleted("c", 3);
        store.Dispose();
        state = Reload();
        Assert.Empty(state.Queued);
        Assert.Equal([(ushort)1], state.Inflight.Select(f => f.PacketId));
    }

    private static InflightMessage Flight(ushort id, string payload) =>
        new(id, id, Msg("t", payload), Midge.Protocol.QoS.AtLeastOnce, false, null, Core.Sessions.InflightState.AwaitingPubAck);

    private SessionState Reload()
    {
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        return Assert.Single(reopened.LoadAll());
    }
}
