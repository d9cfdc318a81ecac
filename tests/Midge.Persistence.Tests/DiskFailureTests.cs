using Microsoft.Extensions.Logging;
using Midge.Core.Sessions.Store;
using static Midge.Persistence.Tests.Records;

namespace Midge.Persistence.Tests;

/// <summary>
/// A store on a tmpfs of 512 KiB that a filler file makes full: batches fail and are retried every second, flushes
/// fail with an error that names the file, nothing is lost, and deleting the filler lets the store carry on.
/// </summary>
public sealed class DiskFailureTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly Tmpfs _tmpfs = new("size=512k");
    private readonly ListLogger _logger = new();

    private string StorePath => _tmpfs.File("store.db");

    private SqliteSessionStore OpenFull(SqliteStoreOptions options)
    {
        var store = SqliteSessionStore.Open(StorePath, options, _logger);
        store.SessionSaved(Session("c"));
        store.MessageQueued("c", Queued(1, Msg("t", "before")));
        store.FlushAsync().AsTask().Wait(Bound);
        _tmpfs.Fill("filler");
        for (int i = 2; i <= 5; i++) store.MessageQueued("c", Queued(i, Msg("t", 16 * 1024)));
        return store;
    }

    private int Logged(LogLevel level, string text) => _logger.Entries.Count(e => e.Level == level && e.Message.Contains(text));

    [Fact]
    public async Task DiskFull_FailsFlushes_ThenRecovers_WithNothingLost()
    {
        using (var store = OpenFull(new SqliteStoreOptions()))
        {
            var e = await Assert.ThrowsAnyAsync<StoreException>(() => store.FlushAsync().AsTask().WaitAsync(Bound));
            Assert.StartsWith($"persistence file {StorePath}: the disk is full", e.Message);
            Assert.Contains("free space", e.Message);

            store.MessageQueued("c", Queued(6, Msg("t", "while failing")));
            await Assert.ThrowsAnyAsync<StoreException>(() => store.FlushAsync().AsTask().WaitAsync(Bound)); // the retry fails too
            Assert.Equal(1, Logged(LogLevel.Error, StorePath)); // logged once

            File.Delete(_tmpfs.File("filler"));
            await store.FlushAsync().AsTask().WaitAsync(Bound);
            Assert.Equal(1, Logged(LogLevel.Information, "writing works again"));
            store.MessageQueued("c", Queued(7, Msg("t", "after")));
            await store.FlushAsync().AsTask().WaitAsync(Bound);
        }

        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var queued = Assert.Single(reopened.LoadAll()).Queued;
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7], queued.Select(q => q.Sequence));
        Assert.Equal(["before", "while failing", "after"], queued.Where(q => q.Message.Payload.Length < 100).Select(Text));
    }

    [Fact]
    public async Task ReachingTheBound_WhileFailing_StopsTakingChanges()
    {
        int recorded = 5;
        using (var store = OpenFull(new SqliteStoreOptions { MaxPendingChanges = 20 }))
        {
            await Assert.ThrowsAnyAsync<StoreException>(() => store.FlushAsync().AsTask().WaitAsync(Bound));
            while (recorded < 40) store.MessageQueued("c", Queued(++recorded, Msg("t", "m" + recorded)));

            var refused = store.FlushAsync();
            Assert.True(refused.IsFaulted);
            var e = await Assert.ThrowsAnyAsync<StoreException>(refused.AsTask);
            Assert.Contains("took no more; restart the broker", e.Message);
            Assert.Equal(1, Logged(LogLevel.Error, "nothing more is recorded until the broker restarts"));

            // What was recorded before the stop is still written once the disk has room again.
            File.Delete(_tmpfs.File("filler"));
            Assert.True(Eventually(() => store.CommitCount == 2));
        }

        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        var sequences = Assert.Single(reopened.LoadAll()).Queued.Select(q => q.Sequence).ToList();
        Assert.InRange(sequences.Count, 21, recorded - 1);
        Assert.Equal(Enumerable.Range(1, sequences.Count).Select(i => (long)i), sequences); // a prefix: nothing lost before the stop
    }

    [Fact]
    public void Dispose_OnAFullDisk_LogsWhatIsLost_AndDoesNotThrow()
    {
        var store = OpenFull(new SqliteStoreOptions());
        store.Dispose();
        Assert.Equal(1, Logged(LogLevel.Error, "could not be written and are lost"));
        Assert.True(store.FlushAsync().IsFaulted);
    }

    [Fact]
    public async Task SnapshotMode_FullDisk_IsRetriedEverySecond()
    {
        using var store = OpenFull(new SqliteStoreOptions { Mode = StoreMode.Snapshot, AutosaveOnChanges = 1 });
        await Assert.ThrowsAnyAsync<StoreException>(() => store.FlushAsync().AsTask().WaitAsync(Bound));
        File.Delete(_tmpfs.File("filler"));
        await store.FlushAsync().AsTask().WaitAsync(Bound);
        Assert.Equal(5, Count(StorePath, "SELECT count(*) FROM queued"));
    }

    public void Dispose() => _tmpfs.Dispose();
}
