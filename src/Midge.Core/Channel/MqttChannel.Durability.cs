using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Channel;

public sealed partial class MqttChannel
{
    /// <summary>
    /// The most acknowledgements one connection may have waiting for the store. Beyond it the connection's read loop
    /// waits for the oldest to go (the client is not read meanwhile), so a client that floods QoS 1 while the disk is
    /// slow holds at most this many small entries, not an unbounded list.
    /// </summary>
    internal const int MaxHeldAcknowledgements = 4096;

    /// <summary>Acknowledgements waiting for the store, oldest first, each with the flush it waits for; guarded by
    /// locking it. Null until the first is held.</summary>
    private Queue<(MqttPacket Ack, Task Durable)>? _heldAcks;

    /// <summary>
    /// Sends PUBACK, PUBREC or PUBCOMP, which tell the client that the broker has taken over the message: with a
    /// store in durable mode (<see cref="Broker.HoldsAcknowledgements"/>), only once every change recorded so far
    /// (this message in the stored sessions and retained store it went to) is on disk, and in order with the
    /// acknowledgements held before it (MQTT-4.6.0-2). Holding one does not stop the read loop: later messages
    /// are routed meanwhile, and their flushes are shared (group commit). Without anything pending in the store
    /// the acknowledgement goes at once.
    /// </summary>
    private ValueTask SendDurable(MqttPacket ack)
    {
        if (!_broker.HoldsAcknowledgements)
        {
            Send(ack);
            return default;
        }
        var flush = _broker.SessionStore!.FlushAsync();
        var held = _heldAcks;
        if (flush.IsCompletedSuccessfully && (held is null || Volatile.Read(ref _heldCount) == 0))
        {
            Send(ack);
            return default;
        }
        held ??= Interlocked.CompareExchange(ref _heldAcks, new(), null) ?? _heldAcks!;
        var durable = flush.AsTask();
        Task? oldest;
        lock (held)
        {
            held.Enqueue((ack, durable));
            _heldCount = held.Count;
            if (held.Count == 1) WhenDurable(durable);
            oldest = held.Count >= MaxHeldAcknowledgements ? held.Peek().Durable : null;
        }
        return oldest is null ? default : new ValueTask(oldest.ContinueWith(static _ => { }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default));
    }

    /// <summary>How many acknowledgements are held (read without the lock for the fast path).</summary>
    private int _heldCount;

    private void WhenDurable(Task durable) =>
        durable.ContinueWith(static (_, state) => ((MqttChannel)state!).ReleaseDurable(), this, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>A flush completed: sends, in order, every held acknowledgement whose changes are now on disk. When the
    /// store failed, none is sent: the connection is closed, and the client sends its messages again once it is
    /// back (the broker never acknowledges what it could not store).</summary>
    private void ReleaseDurable()
    {
        var held = _heldAcks!;
        lock (held)
        {
            while (held.TryPeek(out var next) && next.Durable.IsCompleted)
            {
                if (!next.Durable.IsCompletedSuccessfully)
                {
                    held.Clear();
                    _heldCount = 0;
                    Log.StoreFailed(_broker.Logger, ClientId ?? RemoteEndPoint, next.Durable.Exception?.GetBaseException().Message ?? "cancelled");
                    ServerDisconnect(ReasonCode.UnspecifiedError, publishWill: true, "the broker could not store the message");
                    return;
                }
                held.Dequeue();
                Send(next.Ack);
            }
            _heldCount = held.Count;
            if (held.Count > 0) WhenDurable(held.Peek().Durable);
        }
    }
}
