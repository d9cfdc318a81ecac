using Midge.Core.Sessions.Store;
using static Midge.Persistence.Tests.Records;

namespace Midge.Persistence.Tests;

/// <summary>Many flushes share one commit: the writer takes every change recorded while it wrote the last batch.</summary>
public sealed class GroupCommitTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Fact]
    public async Task ConcurrentFlushes_ShareCommits_AndLoseNothing()
    {
        string path = _directory.File("store.db");
        const int threads = 16, perThread = 125;
        using (var store = SqliteSessionStore.Open(path, new SqliteStoreOptions()))
        {
            for (int t = 0; t < threads; t++) store.SessionSaved(Session("c" + t));
            await store.FlushAsync();
            long before = store.CommitCount;

            var workers = Enumerable.Range(0, threads).Select(t => Task.Run(async () =>
            {
                for (int i = 1; i <= perThread; i++)
                {
                    store.MessageQueued("c" + t, Queued(i, Msg("t", $"c{t}-{i}")));
                    await store.FlushAsync();
                }
            }));
            await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));

            const int flushes = threads * perThread;
            long commits = store.CommitCount - before;
            Assert.True(commits < flushes / 2, $"{commits} commits for {flushes} flushes");
            Assert.Equal(threads + flushes, store.ChangesWritten);
        }

        using var reopened = SqliteSessionStore.Open(path, new SqliteStoreOptions());
        var sessions = reopened.LoadAll();
        Assert.Equal(threads, sessions.Count);
        foreach (var session in sessions)
        {
            Assert.Equal(Enumerable.Range(1, perThread).Select(i => $"{session.ClientId}-{i}"), session.Queued.Select(Text));
        }
    }

    [Fact]
    public async Task Flush_WithNothingPending_CompletesAtOnce()
    {
        using var store = SqliteSessionStore.Open(_directory.File("store.db"), new SqliteStoreOptions());
        Assert.True(store.FlushAsync().IsCompletedSuccessfully);
        store.SessionSaved(Session("c"));
        await store.FlushAsync();
        Assert.True(store.FlushAsync().IsCompletedSuccessfully);
        Assert.Equal(1, store.CommitCount);
    }

    [Fact]
    public void Recording_AfterDispose_IsIgnored()
    {
        string path = _directory.File("store.db");
        var store = SqliteSessionStore.Open(path, new SqliteStoreOptions());
        store.Dispose();
        store.SessionSaved(Session("late"));
        Assert.True(store.FlushAsync().IsCompletedSuccessfully);
        store.Dispose();
        Assert.Equal(0, Count(path, "SELECT count(*) FROM sessions"));
    }

    public void Dispose() => _directory.Dispose();
}

/// <summary>A group of changes is never cut by a batch.</summary>
public sealed class ChangeGroupTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task NoBatchIsCutWhileAGroupIsOpen()
    {
        using var store = SqliteSessionStore.Open(_directory.File("store.db"), new SqliteStoreOptions());
        store.SessionSaved(Records.Session("c"));
        await store.FlushAsync();

        var (flush, waited, queuedMeanwhile) = RecordInAGroup(store);
        Assert.True(waited); // the writer waited for the group
        Assert.Equal(0, queuedMeanwhile);
        await flush.WaitAsync(TimeSpan.FromSeconds(10));
        await store.FlushAsync();
        Assert.Equal(1, Records.Count(_directory.File("store.db"), "SELECT count(*) FROM queued"));
        Assert.Equal(1, Records.Count(_directory.File("store.db"), "SELECT count(*) FROM incoming_qos2"));
    }

    /// <summary>A group is synchronous: opened and closed on one thread, as the broker does around one routing.</summary>
    private (Task Flush, bool Waited, long QueuedMeanwhile) RecordInAGroup(SqliteSessionStore store)
    {
        store.BeginGroup();
        store.MessageQueued("c", Records.Queued(1, Records.Msg("t", "first half")));
        var flush = store.FlushAsync().AsTask();
        Thread.Sleep(300);
        bool waited = !flush.IsCompleted;
        long queued = Records.Count(_directory.File("store.db"), "SELECT count(*) FROM queued");
        store.IncomingQoS2Added("c", 7);
        store.EndGroup();
        return (flush, waited, queued);
    }
}
