using System.Buffers;

namespace Midge.Transport;

/// <summary>
/// A first-in, first-out list of outgoing items whose storage is rented from <see cref="ArrayPool{T}.Shared"/>
/// and given back by <see cref="Release"/>. <see cref="OutgoingQueue{T}"/> fills one while the writer drains
/// another, and the writer releases the drained one whenever the connection has nothing more to send: an idle
/// connection holds no slots, and a message to an idle subscriber rents and returns a pooled array instead of
/// allocating one (with <see cref="Queue{T}"/>, growing from empty and trimming back was half of what a QoS 0
/// delivery allocated; docs/benchmarks.md). Not thread-safe: one owner at a time, as handed over under the
/// queue's lock.
/// </summary>
internal sealed class PooledQueue<T>
{
    private const int InitialSize = 16;

    private T[]? _items;
    private int _head;
    private int _tail;

    public int Count => _tail - _head;

    /// <summary>True while it holds a rented array.</summary>
    public bool HoldsStorage => _items is not null;

    public void Enqueue(T item)
    {
        var items = _items;
        if (items is null || _tail == items.Length) items = Grow();
        items[_tail++] = item;
    }

    public bool TryDequeue(out T item)
    {
        if (_head == _tail)
        {
            item = default!;
            return false;
        }
        ref var slot = ref _items![_head++];
        item = slot;
        slot = default!; // drop the reference now: the pooled array may live long
        return true;
    }

    /// <summary>Empties it and keeps the storage for the next items.</summary>
    public void Clear()
    {
        if (_items is not null && _tail > _head) Array.Clear(_items, _head, _tail - _head);
        _head = _tail = 0;
    }

    /// <summary>Empties it and gives its storage back to the pool.</summary>
    public void Release()
    {
        Clear();
        if (_items is null) return;
        ArrayPool<T>.Shared.Return(_items);
        _items = null;
    }

    private T[] Grow()
    {
        int count = Count;
        var old = _items;
        // Items were taken from the front: move what is left there before asking for more room.
        if (old is not null && _head > 0 && count < old.Length / 2)
        {
            Array.Copy(old, _head, old, 0, count);
            Array.Clear(old, count, _tail - count);
            _head = 0;
            _tail = count;
            return old;
        }
        var bigger = ArrayPool<T>.Shared.Rent(old is null ? InitialSize : old.Length * 2);
        if (old is not null)
        {
            Array.Copy(old, _head, bigger, 0, count);
            Array.Clear(old, _head, count);
            ArrayPool<T>.Shared.Return(old);
        }
        _items = bigger;
        _head = 0;
        _tail = count;
        return bigger;
    }
}
