namespace Midge.Transport.Tests;

public class OutgoingQueueTests
{
    [Fact]
    public async Task ItemsComeOutInOrder_InOneBatch()
    {
        var q = new OutgoingQueue<int>();
        for (int i = 0; i < 5; i++) Assert.True(q.TryWrite(i));
        Assert.True(await q.WaitToReadAsync());
        var batch = q.TakeAll(new PooledQueue<int>());
        Assert.Equal([0, 1, 2, 3, 4], Items(batch));
    }

    [Fact]
    public async Task AWaitingReader_IsWokenByAWrite_OnAnotherThread()
    {
        var q = new OutgoingQueue<int>();
        var wait = q.WaitToReadAsync().AsTask();
        Assert.False(wait.IsCompleted);
        int writerThread = 0;
        await Task.Run(() =>
        {
            writerThread = Environment.CurrentManagedThreadId;
            q.TryWrite(42);
        });
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal([42], Items(q.TakeAll(new PooledQueue<int>())));
    }

    [Fact]
    public async Task Complete_WakesTheReader_AndRefusesWrites_AfterTheRestIsTaken()
    {
        var q = new OutgoingQueue<int>();
        q.TryWrite(1);
        q.Complete();
        Assert.False(q.TryWrite(2));
        Assert.True(await q.WaitToReadAsync()); // the item written before Complete is still delivered
        Assert.Equal([1], Items(q.TakeAll(new PooledQueue<int>())));
        Assert.False(await q.WaitToReadAsync());

        var idle = new OutgoingQueue<int>();
        var waiting = idle.WaitToReadAsync().AsTask();
        idle.Complete();
        Assert.False(await waiting.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task ManyProducers_OneReader_LoseNothing()
    {
        var q = new OutgoingQueue<int>();
        const int producers = 4, each = 20_000;
        var seen = new List<int>();
        var reader = Task.Run(async () =>
        {
            var spare = new PooledQueue<int>();
            while (seen.Count < producers * each && await q.WaitToReadAsync())
            {
                var batch = q.TakeAll(spare);
                seen.AddRange(Items(batch));
                batch.Clear();
                spare = batch;
            }
        });
        await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(() =>
        {
            for (int i = 0; i < each; i++) q.TryWrite(p * each + i);
        })));
        await reader.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(producers * each, seen.Count);
        Assert.Equal(producers * each, seen.Distinct().Count());
        // Each producer's items stay in its own order.
        for (int p = 0; p < producers; p++)
        {
            var mine = seen.Where(v => v / each == p).ToList();
            Assert.Equal(mine.OrderBy(v => v), mine);
        }
    }

    [Fact]
    public void TheFirstWriteClaims_LaterWritesJoinTheClaimHoldersDrain()
    {
        var q = new OutgoingQueue<int>();
        Assert.True(q.TryWriteAndClaim(1, out bool first));
        Assert.True(first);
        Assert.True(q.TryWriteAndClaim(2, out bool second));
        Assert.False(second); // the holder will take it
        Assert.Equal([1, 2], Items(q.TakeOrRelease(new PooledQueue<int>())!));
        Assert.Null(q.TakeOrRelease(new PooledQueue<int>())); // empty: the claim is given up
        Assert.True(q.TryWriteAndClaim(3, out bool again));
        Assert.True(again);
    }

    [Fact]
    public async Task WhenReleased_WaitsForTheHolder_AndTryClaimTakesLeftovers()
    {
        var q = new OutgoingQueue<int>();
        Assert.True(q.WhenReleasedAsync().IsCompleted); // nobody holds it
        Assert.False(q.TryClaim()); // nothing to write
        q.TryWriteAndClaim(1, out _);
        Assert.False(q.TryClaim()); // already held
        var released = q.WhenReleasedAsync();
        Assert.False(released.IsCompleted);
        q.Complete();
        Assert.False(q.TryWriteAndClaim(2, out bool claimed)); // completed: refused
        Assert.False(claimed);
        Assert.Equal([1], Items(q.TakeOrRelease(new PooledQueue<int>())!)); // written before Complete: still delivered
        Assert.Null(q.TakeOrRelease(new PooledQueue<int>()));
        await released.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task CompleteAndRelease_DropsTheRest_AndFreesWaiters()
    {
        var q = new OutgoingQueue<int>();
        q.TryWriteAndClaim(1, out _);
        q.TryWriteAndClaim(2, out _);
        var released = q.WhenReleasedAsync();
        q.CompleteAndRelease();
        await released.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(q.IsEmpty);
        Assert.False(q.TryClaim());
        Assert.False(q.TryWriteAndClaim(3, out _));
    }

    [Fact]
    public async Task ConcurrentWriters_ExactlyOneDrainerAtATime_NothingLost()
    {
        var q = new OutgoingQueue<int>();
        int inBatch = 0, overlaps = 0;
        long received = 0;
        void Drain()
        {
            var spare = new PooledQueue<int>();
            while (q.TakeOrRelease(spare) is { } batch)
            {
                // Between a batch taken and the next TakeOrRelease the claim is held: nobody else is here.
                if (Interlocked.Increment(ref inBatch) > 1) Interlocked.Increment(ref overlaps);
                Interlocked.Add(ref received, batch.Count);
                batch.Clear();
                spare = batch;
                Interlocked.Decrement(ref inBatch);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                if (q.TryWriteAndClaim(i, out bool claimed) && claimed) Drain();
            }
        })));
        Assert.Equal(80_000, Interlocked.Read(ref received));
        Assert.Equal(0, overlaps);
    }

    private static List<T> Items<T>(PooledQueue<T> queue)
    {
        var items = new List<T>();
        while (queue.TryDequeue(out var item)) items.Add(item);
        return items;
    }
}
