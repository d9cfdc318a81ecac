namespace Midge.Client;

/// <summary>
/// Counts QoS 1/2 publishes awaiting acknowledgement against the server's Receive Maximum. A publisher waits
/// for a slot; the limit changes with each CONNACK. No lock is held while anyone waits.
/// </summary>
internal sealed class InflightWindow
{
    private readonly object _gate = new();
    private readonly Queue<TaskCompletionSource> _waiters = new();
    private int _inUse;
    private int _limit = ushort.MaxValue;

    public int InUse
    {
        get
        {
            lock (_gate) return _inUse;
        }
    }

    public ValueTask AcquireAsync(CancellationToken ct)
    {
        TaskCompletionSource waiter;
        lock (_gate)
        {
            if (_inUse < _limit && _waiters.Count == 0)
            {
                _inUse++;
                return ValueTask.CompletedTask;
            }
            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(waiter);
        }
        return WaitAsync(waiter, ct);
    }

    private async ValueTask WaitAsync(TaskCompletionSource waiter, CancellationToken ct)
    {
        using (ct.Register(static s => ((TaskCompletionSource)s!).TrySetCanceled(), waiter))
        {
            await waiter.Task.ConfigureAwait(false);
        }
    }

    public void Release()
    {
        lock (_gate)
        {
            _inUse--;
            Wake();
        }
    }

    public void SetLimit(int limit)
    {
        lock (_gate)
        {
            _limit = Math.Max(1, limit);
            Wake();
        }
    }

    /// <summary>Fails every waiter (the client is closing).</summary>
    public void FailAll(Exception ex)
    {
        lock (_gate)
        {
            while (_waiters.TryDequeue(out var w)) w.TrySetException(ex);
        }
    }

    private void Wake()
    {
        while (_inUse < _limit && _waiters.TryDequeue(out var w))
        {
            if (w.TrySetResult()) _inUse++;
        }
    }
}
