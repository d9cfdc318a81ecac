using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using static Midge.Persistence.Tests.Records;

namespace Midge.Persistence.Tests;

/// <summary>A message the broker fans out to many sessions (one <see cref="StoredMessage"/>) is stored once, and
/// deleted with its last reference, across a reopen too.</summary>
public sealed class SharedMessageTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    private string StorePath => _directory.File("store.db");

    private long MessageRows => Count(StorePath, "SELECT count(*) FROM messages");

    [Fact]
    public async Task OneMessage_InManySessions_IsStoredOnce_AndGoesWithItsLastReference()
    {
        using var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var shared = Msg("fan/out", "to everyone");
        for (int i = 0; i < 100; i++)
        {
            store.SessionSaved(Session("c" + i));
            store.MessageQueued("c" + i, Queued(1, shared));
        }
        await store.FlushAsync();
        Assert.Equal(1, MessageRows);
        Assert.Equal(100, Count(StorePath, "SELECT count(*) FROM queued"));

        for (int i = 0; i < 98; i++) store.MessageDequeued("c" + i, 1);
        store.SessionRemoved("c98");
        await store.FlushAsync();
        Assert.Equal(1, MessageRows);

        store.SessionRemoved("c99"); // the last session that held it
        await store.FlushAsync();
        Assert.Equal(0, MessageRows);
    }

    [Fact]
    public async Task References_AreCountedAgain_WhenTheStoreOpens()
    {
        WriteSharedMessage();
        Assert.Equal(1, MessageRows);

        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var loaded = reopened.LoadAll().ToDictionary(s => s.ClientId);
        Assert.Same(loaded["a"].Queued[0].Message, loaded["b"].Inflight[0].Message); // read once, shared again

        reopened.MessageDequeued("a", 1);
        await ReleaseAllButTheRetained(reopened);
    }

    // Restored payloads share blocks (RowReader.Payload): sizes on both sides of the shared limit, an empty one, and
    // enough of them to fill several blocks come back byte for byte, each its own length.
    [Fact]
    public async Task Payloads_ComeBack_ByteForByte_AcrossSharedBlocks()
    {
        int[] sizes = [0, 1, 64, 1023, 1024, 1025, 4000, 65_536, 70_000];
        var written = new Dictionary<string, byte[]>();
        using (var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions()))
        {
            for (int i = 0; i < 300; i++)
            {
                int size = sizes[i % sizes.Length];
                var payload = new byte[size];
                new Random(i).NextBytes(payload);
                string topic = "p/" + i;
                written[topic] = payload;
                store.RetainedSet(new StoredMessage(topic, payload, QoS.AtLeastOnce, true));
            }
            await store.FlushAsync();
        }
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var retained = reopened.LoadRetained();
        Assert.Equal(written.Count, retained.Count);
        foreach (var message in retained) Assert.Equal(written[message.Topic], message.Payload.ToArray());
    }

    /// <summary>A store with one message held by a queue, a window, a will and the retained store, closed.</summary>
    private StoredMessage WriteSharedMessage()
    {
        var shared = Msg("fan/out", "kept") with { Retain = true };
        using var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        store.SessionSaved(Session("a"));
        store.SessionSaved(Session("b"));
        store.MessageQueued("a", Queued(1, shared));
        store.InflightAdded("b", new InflightMessage(7, 1, shared, QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck));
        store.WillChanged("b", new StoredWill(shared, 0));
        store.RetainedSet(shared);
        return shared;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task References_AreCountedFromTheLoads_AndEachLoadedMessageIsOneInstance(bool retainedFirst)
    {
        WriteSharedMessage();
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        IReadOnlyList<StoredMessage> retained = [];
        if (retainedFirst) retained = reopened.LoadRetained();
        var loaded = reopened.LoadAll().ToDictionary(s => s.ClientId);
        if (!retainedFirst) retained = reopened.LoadRetained();
        var message = loaded["a"].Queued[0].Message;
        Assert.Same(message, loaded["b"].Inflight[0].Message);
        Assert.Same(message, loaded["b"].Will!.Message);
        Assert.Same(message, Assert.Single(retained)); // one instance for the four rows

        // The broker sends the queued message to a: the loaded record goes in flight. The store does not look loaded
        // records up (a restart would pay for a map of them): it stores this one again, and the row read stays
        // for the rows that still point at it.
        reopened.MessageDequeued("a", 1);
        reopened.InflightAdded("a", new InflightMessage(1, 1, message, QoS.AtLeastOnce, false, null, InflightState.AwaitingPubAck));
        await reopened.FlushAsync();
        Assert.Equal(2, MessageRows);

        reopened.InflightCompleted("a", 1);
        await ReleaseAllButTheRetained(reopened);
    }

    /// <summary>b's window and will let the message of <see cref="WriteSharedMessage"/> go: the retained message
    /// still holds it; then that one goes too, and the message with it.</summary>
    private async Task ReleaseAllButTheRetained(SqliteSessionStore store)
    {
        store.InflightCompleted("b", 7);
        store.WillChanged("b", null);
        await store.FlushAsync();
        Assert.Equal(1, MessageRows);
        store.RetainedRemoved("fan/out");
        await store.FlushAsync();
        Assert.Equal(0, MessageRows);
    }

    [Fact]
    public async Task ReadingTheSessionsTwice_CountsTheirReferencesOnce()
    {
        WriteSharedMessage();
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        reopened.LoadAll();
        reopened.LoadRetained();
        reopened.LoadAll();
        reopened.MessageDequeued("a", 1);
        await ReleaseAllButTheRetained(reopened);
    }

    [Fact]
    public async Task AMessageNothingPointsAt_IsDeleted_EvenWhenTheLoadsCountedTheRest()
    {
        WriteSharedMessage();
        Count(StorePath, "INSERT INTO messages (topic, payload, qos, retain) VALUES ('orphan', x'00', 1, 0) RETURNING id");
        Assert.Equal(2, MessageRows);
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        reopened.LoadAll();
        reopened.LoadRetained();
        reopened.SessionSaved(Session("c")); // the first batch
        await reopened.FlushAsync();
        Assert.Equal(1, MessageRows);
        Assert.Equal(0, Count(StorePath, "SELECT count(*) FROM messages WHERE topic = 'orphan'"));
    }

    [Fact]
    public async Task EqualMessages_ThatAreNotTheSameInstance_AreStoredApart()
    {
        using var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        store.SessionSaved(Session("c"));
        store.MessageQueued("c", Queued(1, Msg("t", "same")));
        store.MessageQueued("c", Queued(2, Msg("t", "same")));
        await store.FlushAsync();
        Assert.Equal(2, MessageRows);
    }

    public void Dispose() => _directory.Dispose();
}
