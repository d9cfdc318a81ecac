using System.Threading.Tasks.Sources;

namespace Midge.Transport;

/// <summary>
/// The queue in front of one connection's single writer: any thread adds, the writer takes everything at once
/// and encodes it without holding the lock. It allocates nothing until the first item (an idle connection pays
/// for an empty queue and this object, not for a channel's preallocated segment). Two ways to drive it:
/// <list type="bullet">
/// <item>a writer loop that awaits <see cref="WaitToReadAsync"/> (a reusable
/// <see cref="ManualResetValueTaskSourceCore{TResult}"/>, whose continuation never runs on a producer's thread);
/// the connections behind TLS use it;</item>
/// <item>a claim: <see cref="TryWriteAndClaim"/> tells the one producer that found the writer idle that it
/// now owns the writing, until <see cref="TakeOrRelease"/> finds nothing left. Nothing waits while idle, so an
/// idle connection holds no writer state at all; plain-TCP connections use it
/// (MqttConnection.Socket.cs).</item>
/// </list>
/// </summary>
internal sealed class OutgoingQueue<T> : IValueTaskSource<bool>
{
    private readonly object _sync = new();
    private PooledQueue<T> _pending = new();
    private ManualResetValueTaskSourceCore<bool> _signal = new() { RunContinuationsAsynchronously = true };
    private bool _waiting;
    private bool _completed;
    private bool _claimed;
    private TaskCompletionSource? _released;

    /// <summary>True when nothing is waiting to be taken.</summary>
    public bool IsEmpty
    {
        get
        {
            lock (_sync) return _pending.Count == 0;
        }
    }

    /// <summary>Adds an item; false once the queue is completed.</summary>
    public bool TryWrite(T item)
    {
        lock (_sync)
        {
            if (_completed) return false;
            _pending.Enqueue(item);
            if (!_waiting) return true;
            _waiting = false;
        }
        _signal.SetResult(true);
        return true;
    }

    /// <summary>No more items will come; a waiting writer wakes and sees the end once the queue is empty.</summary>
    public void Complete()
    {
        lock (_sync)
        {
            if (_completed) return;
            _completed = true;
            if (!_waiting) return;
            _waiting = false;
        }
        _signal.SetResult(false);
    }

    /// <summary>True when items are there to take; false when the queue is completed and empty.</summary>
    public ValueTask<bool> WaitToReadAsync()
    {
        lock (_sync)
        {
            if (_pending.Count > 0) return new ValueTask<bool>(true);
            if (_completed) return new ValueTask<bool>(false);
            _signal.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _signal.Version);
        }
    }

    /// <summary>Adds an item; <paramref name="claimed"/> is true when the writing was idle and the caller now
    /// owns it (it must drain, or hand the draining on). False once the queue is completed.</summary>
    public bool TryWriteAndClaim(T item, out bool claimed)
    {
        lock (_sync)
        {
            claimed = false;
            if (_completed) return false;
            _pending.Enqueue(item);
            if (_claimed) return true;
            _claimed = claimed = true;
            return true;
        }
    }

    /// <summary>Claims the writing when it is idle and something is queued (leftovers at the end).</summary>
    public bool TryClaim()
    {
        lock (_sync)
        {
            if (_claimed || _pending.Count == 0) return false;
            _claimed = true;
            return true;
        }
    }

    /// <summary>For the claim holder: takes every queued item (leaving <paramref name="empty"/> in place), or,
    /// when there are none, gives the claim up and returns null.</summary>
    public PooledQueue<T>? TakeOrRelease(PooledQueue<T> empty)
    {
        TaskCompletionSource? released;
        lock (_sync)
        {
            if (_pending.Count > 0)
            {
                var taken = _pending;
                _pending = empty;
                return taken;
            }
            released = ReleaseLocked();
        }
        released?.TrySetResult();
        return null;
    }

    /// <summary>For the claim holder whose writing failed or closed the connection: completes the queue, drops
    /// what is left and gives the claim up.</summary>
    public void CompleteAndRelease()
    {
        TaskCompletionSource? released;
        lock (_sync)
        {
            _completed = true;
            _pending.Release();
            released = ReleaseLocked();
        }
        released?.TrySetResult();
    }

    /// <summary>Gives the claim up (under the lock); returns the waiter to wake once the lock is left.</summary>
    private TaskCompletionSource? ReleaseLocked()
    {
        _claimed = false;
        var released = _released;
        _released = null;
        return released;
    }

    /// <summary>Completes when nobody holds the claim (at once when nobody does).</summary>
    public Task WhenReleasedAsync()
    {
        lock (_sync)
        {
            if (!_claimed) return Task.CompletedTask;
            _released ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _released.Task;
        }
    }

    /// <summary>Takes every queued item, leaving <paramref name="empty"/> (an emptied earlier batch) in place.</summary>
    public PooledQueue<T> TakeAll(PooledQueue<T> empty)
    {
        lock (_sync)
        {
            var taken = _pending;
            _pending = empty;
            return taken;
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _signal.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _signal.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _signal.OnCompleted(continuation, state, token, flags);
}
