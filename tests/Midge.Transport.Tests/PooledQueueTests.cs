namespace Midge.Transport.Tests;

public class PooledQueueTests
{
    [Fact]
    public void Items_come_out_in_order_across_growth_and_partial_takes()
    {
        var q = new PooledQueue<int>();
        var expected = new Queue<int>();
        int next = 0;
        // Mixed enqueues and dequeues so the storage both grows and moves its remaining items to the front.
        for (int round = 0; round < 200; round++)
        {
            for (int i = 0; i < round % 37 + 1; i++)
            {
                q.Enqueue(next);
                expected.Enqueue(next++);
            }
            for (int i = 0; i < round % 23; i++)
            {
                bool got = q.TryDequeue(out int value);
                Assert.Equal(expected.TryDequeue(out int want), got);
                if (got) Assert.Equal(want, value);
            }
            Assert.Equal(expected.Count, q.Count);
        }
        while (q.TryDequeue(out int value)) Assert.Equal(expected.Dequeue(), value);
        Assert.Empty(expected);
        Assert.False(q.TryDequeue(out _));
    }

    [Fact]
    public void Release_gives_the_storage_back_and_the_queue_stays_usable()
    {
        var q = new PooledQueue<string>();
        Assert.False(q.HoldsStorage); // nothing rented until the first item
        q.Enqueue("a");
        q.Enqueue("b");
        Assert.True(q.HoldsStorage);
        q.Release();
        Assert.False(q.HoldsStorage);
        Assert.Equal(0, q.Count);
        Assert.False(q.TryDequeue(out _));
        q.Enqueue("c");
        Assert.True(q.TryDequeue(out var c));
        Assert.Equal("c", c);
    }

    [Fact]
    public void Clear_keeps_the_storage_and_forgets_the_items()
    {
        var q = new PooledQueue<string>();
        for (int i = 0; i < 40; i++) q.Enqueue(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        q.TryDequeue(out _);
        q.Clear();
        Assert.True(q.HoldsStorage);
        Assert.Equal(0, q.Count);
        Assert.False(q.TryDequeue(out _));
        q.Enqueue("x");
        Assert.True(q.TryDequeue(out var x));
        Assert.Equal("x", x);
    }
}
