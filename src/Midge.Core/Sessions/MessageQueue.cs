using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Core.Protection;
using Midge.Protocol;

namespace Midge.Core.Sessions;

/// <summary>
/// The messages a session holds for its client beyond what is in flight: a bounded FIFO queue. This is the one
/// place that states the drop policy:
/// <list type="bullet">
/// <item><b>What waits here.</b> A QoS 1/2 message waits when the client is away or its inflight window
/// (<see cref="InflightWindow"/>) is full, or when older messages already wait (order is kept). A QoS 0 message goes
/// straight to a connected client's writer while that writer holds fewer than <see cref="MaxDirectBacklog"/> packets
/// and less than <c>max_queued_bytes</c> of payload (<see cref="DefaultMaxDirectBacklogBytes"/> when that is 0; one
/// message larger than that alone goes when the writer is empty), see <see cref="HasDirectRoom"/>; otherwise it waits
/// here too. For a client that is away, QoS 0 is queued only with <c>queue_qos0_messages</c> (otherwise it is
/// discarded, not counted as dropped, as Mosquitto does).</item>
/// <item><b>Bounds.</b> <c>max_queued_messages</c> messages (default 1000; 0 or less: no bound) and
/// <c>max_queued_bytes</c> payload bytes (default 64 MiB; 0 written in the file: no bound), both read from the
/// current configuration at each enqueue, so a reload applies at once.</item>
/// <item><b>Drop.</b> A message that would go past either bound is dropped: the newest, never one already queued
/// (the queue keeps its order, and what was queued first is what the client most likely waits for). Each drop is
/// counted in <c>$SYS/broker/publish/messages/dropped</c> and logged at most once a minute per client ("Outgoing
/// messages are being dropped for client ID.").</item>
/// <item><b>Leaving.</b> A message leaves from the front as the writer and the window make room; it is checked
/// against the client's ACL again as it leaves (a reload may have taken the right away meanwhile), and an expired
/// one (MQTT 5 Message Expiry Interval) is discarded then, or earlier by the broker's once-a-second sweep while the
/// client is away.</item>
/// <item><b>Memory.</b> The payload bytes queued count in <see cref="HeldBytes"/>, which <c>memory_limit</c>
/// limits.</item>
/// </list>
/// Retained messages sent because of a new subscription do not wait here but in the session's retained backlog,
/// which these limits do not cut (see <see cref="Session.DeliverRetained"/>).
/// </summary>
/// <remarks>
/// A mutable struct embedded in <see cref="Session"/> and guarded by its lock; the queue is made on first use. Keep
/// it in a non-readonly field and never copy it. Each message gets a sequence number, increasing within the session,
/// by which a session store (<see cref="Store.ISessionStore"/>) names it.
/// </remarks>
internal struct MessageQueue
{
    /// <summary>Output backlog (packets not yet written) at and above which QoS 0 waits in the queue.</summary>
    internal const int MaxDirectBacklog = 65536;

    /// <summary>Payload bytes waiting for the socket above which QoS 0 waits in the queue, when max_queued_bytes
    /// does not set it: a client that stops reading holds at most this in its writer, plus what its queue may hold
    /// (max_queued_messages, max_queued_bytes), whatever the size of the messages.</summary>
    internal const long DefaultMaxDirectBacklogBytes = 16 * 1024 * 1024;

    /// <summary>How often, at most, drops are logged per client.</summary>
    private const long DropLogIntervalMs = 60_000;

    private Queue<QueuedEntry>? _items;
    private long _bytes;
    private long _lastSequence;
    /// <summary>When a drop was last logged (broker clock): at most one line a minute per client.</summary>
    private long _lastDropLoggedMs;

    public readonly int Count => _items?.Count ?? 0;

    public readonly bool IsEmpty => _items is not { Count: > 0 };

    /// <summary>Payload bytes queued.</summary>
    public readonly long Bytes => _bytes;

    /// <summary>Whether anything may be queued, read without the session's lock (a writer that drained asks).</summary>
    public bool MayHoldMessages() => Volatile.Read(ref _bytes) != 0 || Volatile.Read(ref _items) is { Count: > 0 };

    /// <summary>Whether a QoS 0 message may go straight to <paramref name="output"/> rather than wait (the rule in the
    /// type's summary).</summary>
    public static bool HasDirectRoom(IClientOutput output, Message message, long maxQueuedBytes)
    {
        if (output.Backlog >= MaxDirectBacklog) return false;
        long backlogBytes = output.BacklogBytes;
        if (backlogBytes == 0) return true;
        long max = maxQueuedBytes > 0 ? maxQueuedBytes : DefaultMaxDirectBacklogBytes;
        return backlogBytes + message.PayloadLength <= max;
    }

    /// <summary>Queues a message, or drops it at the bounds (counted, logged at most once a minute for
    /// <paramref name="clientId"/>). Returns false when it was dropped.</summary>
    public bool TryEnqueue(Broker broker, string clientId, Message message, QoS qos, bool retain, uint[]? subscriptionIds,
        object? sharedGroup, out long sequence)
    {
        var config = broker.Config;
        var items = _items ??= new();
        if ((config.MaxQueuedMessages > 0 && items.Count >= config.MaxQueuedMessages) ||
            (config.MaxQueuedBytes > 0 && _bytes + message.PayloadLength > config.MaxQueuedBytes))
        {
            broker.Dropped(clientId, message, "queue full");
            long now = broker.NowMs;
            if (_lastDropLoggedMs == 0 || now - _lastDropLoggedMs >= DropLogIntervalMs)
            {
                _lastDropLoggedMs = now;
                Log.MessagesDropped(broker.Logger, clientId);
            }
            sequence = 0;
            return false;
        }
        sequence = ++_lastSequence;
        items.Enqueue(new QueuedEntry(message, qos, retain, subscriptionIds, sharedGroup, sequence));
        BytesChanged(message.PayloadLength, broker.Held);
        return true;
    }

    public readonly bool TryPeek(out QueuedEntry entry)
    {
        if (_items is { Count: > 0 } items) return items.TryPeek(out entry);
        entry = default;
        return false;
    }

    /// <summary>Removes the message at the front (the one <see cref="TryPeek"/> gave).</summary>
    public void Dequeue(HeldBytes held) => BytesChanged(-_items!.Dequeue().Message.PayloadLength, held);

    /// <summary>Removes every message <paramref name="match"/> picks (it sees each once, front to back), keeping the
    /// order of the rest. Returns the removed ones when <paramref name="collect"/> is set and any were removed.</summary>
    public List<QueuedEntry>? RemoveWhere<TState>(TState state, Func<QueuedEntry, TState, bool> match, HeldBytes held, bool collect)
    {
        if (_items is not { Count: > 0 } items) return null;
        List<QueuedEntry>? removed = null;
        int n = items.Count;
        for (int i = 0; i < n; i++)
        {
            var entry = items.Dequeue();
            if (match(entry, state))
            {
                BytesChanged(-entry.Message.PayloadLength, held);
                if (collect) (removed ??= []).Add(entry);
                continue;
            }
            items.Enqueue(entry);
        }
        return removed;
    }

    /// <summary>The queued messages, front first (for a snapshot).</summary>
    public readonly IEnumerable<QueuedEntry> Items => (IEnumerable<QueuedEntry>?)_items ?? [];

    /// <summary>Drops everything queued.</summary>
    public void Clear(HeldBytes held)
    {
        _items = null;
        BytesChanged(-_bytes, held);
    }

    /// <summary>Appends a message read from a session store (a broker restart), keeping its sequence number; no
    /// bound applies (the messages were within them when queued).</summary>
    /// <summary>Makes room for <paramref name="count"/> entries at once (a restored queue, whose size is known).</summary>
    public void Reserve(int count)
    {
        if (count > 0) (_items ??= new(count)).EnsureCapacity(count);
    }

    public void Restore(QueuedEntry entry, HeldBytes held)
    {
        (_items ??= new()).Enqueue(entry);
        if (entry.Sequence > _lastSequence) _lastSequence = entry.Sequence;
        BytesChanged(entry.Message.PayloadLength, held);
    }

    /// <summary>Every change to the bytes queued goes through here, so the broker's total (memory_limit) moves with
    /// it.</summary>
    private void BytesChanged(long delta, HeldBytes held)
    {
        _bytes += delta;
        held.Add(delta);
    }
}

/// <summary>A message waiting for its client, with what its delivery to that client carries.</summary>
/// <param name="SharedGroup">The shared subscription group it came through (to hand it back if the client leaves).</param>
/// <param name="Sequence">Its number in the session's queue (0 in the retained backlog, which is not stored).</param>
internal readonly record struct QueuedEntry(Message Message, QoS QoS, bool Retain, uint[]? SubscriptionIds, object? SharedGroup,
    long Sequence = 0);
