using System.Threading.Tasks.Sources;

namespace Midge.Transport;

/// <summary>
/// The queue in front of one connection's single writer: any thread adds, the writer takes everything at once
/// and encodes it without holding the lock. It allocates nothing until the first item (an idle connection pays
/// for two empty queues and this object, not for a channel's preallocated segment), and the writer awaits it
/// through a reusable <see cref="ManualResetValueTaskSourceCore{TResult}"/>, whose continuation never runs on a
/// producer's thread.
/// </summary>
internal sealed class OutgoingQueue<T> : IValueTaskSource<bool>
{
    private readonly object _sync = new();
    private Queue<T> _pending = new();
    private ManualResetValueTaskSourceCore<bool> _signal = new() { RunContinuationsAsynchronously = true };
    private bool _waiting;
    private bool _completed;

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

    /// <summary>Takes every queued item, leaving <paramref name="empty"/> (an emptied earlier batch) in place.</summary>
    public Queue<T> TakeAll(Queue<T> empty)
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
