using static Midge.Persistence.Tests.Records;

namespace Midge.Persistence.Tests;

/// <summary>Snapshot mode (Mosquitto's autosave): nothing reaches the file between saves, as another connection
/// reading it sees (a WAL reader sees only what is committed).</summary>
public sealed class SnapshotModeTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    private string StorePath => _directory.File("store.db");

    private long Sessions => Count(StorePath, "SELECT count(*) FROM sessions");

    [Fact]
    public async Task NoAutosaveInterval_WritesOnlyOnClose()
    {
        var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions { Mode = StoreMode.Snapshot, AutosaveInterval = TimeSpan.Zero });
        store.SessionSaved(Session("c"));
        store.MessageQueued("c", Queued(1, Msg("t", "kept")));
        var flush = store.FlushAsync();
        Thread.Sleep(300);
        Assert.False(flush.IsCompleted);
        Assert.Equal(0, store.CommitCount);
        Assert.Equal(0, Sessions);

        store.Dispose();
        await flush.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, Sessions);
        Assert.Equal(1, Count(StorePath, "SELECT count(*) FROM queued"));
    }

    [Fact]
    public void AutosaveOnChanges_WritesAfterThatManyChanges()
    {
        using var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions { Mode = StoreMode.Snapshot, AutosaveOnChanges = 10 });
        store.SessionSaved(Session("c"));
        for (int i = 1; i <= 8; i++) store.MessageQueued("c", Queued(i, Msg("t", "m" + i)));
        Thread.Sleep(300);
        Assert.Equal(0, store.CommitCount);
        Assert.Equal(0, Sessions);

        store.MessageQueued("c", Queued(9, Msg("t", "m9"))); // the 10th change
        Assert.True(Eventually(() => store.CommitCount == 1));
        Assert.Equal(1, Sessions);
        Assert.Equal(9, Count(StorePath, "SELECT count(*) FROM queued"));
    }

    [Fact]
    public async Task AutosaveInterval_WritesOnATimer_AndFlushWaitsForIt()
    {
        using var store = SqliteSessionStore.Open(StorePath,
            new SqliteStoreOptions { Mode = StoreMode.Snapshot, AutosaveInterval = TimeSpan.FromMilliseconds(200) });
        store.SessionSaved(Session("c"));
        await store.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, store.CommitCount);
        Assert.Equal(1, Sessions);
        Thread.Sleep(500);
        Assert.Equal(1, store.CommitCount); // nothing changed: nothing written
    }

    [Fact]
    public void ReachingTheBound_WritesAtOnce()
    {
        using var store = SqliteSessionStore.Open(StorePath,
            new SqliteStoreOptions { Mode = StoreMode.Snapshot, AutosaveInterval = TimeSpan.Zero, MaxPendingChanges = 50 });
        store.SessionSaved(Session("c"));
        for (int i = 1; i < 49; i++) store.MessageQueued("c", Queued(i, Msg("t", "m" + i)));
        Thread.Sleep(200);
        Assert.Equal(0, store.CommitCount);
        store.MessageQueued("c", Queued(49, Msg("t", "m49")));
        Assert.True(Eventually(() => store.CommitCount == 1));
        Assert.Equal(49, Count(StorePath, "SELECT count(*) FROM queued"));
    }

    public void Dispose() => _directory.Dispose();
}
