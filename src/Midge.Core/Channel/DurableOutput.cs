using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Channel;

/// <summary>
/// What a connection writes, with write-ahead for exactly once: with a store in durable mode and a session the store
/// keeps, a QoS 2 PUBLISH or a PUBREL to the client leaves only once the store has the state it creates (the message
/// in flight under its packet id; its PUBREC), and everything queued after it for this client waits behind it, so
/// the order holds. Without this a crash could forget a QoS 2 message the client had already received: it would be
/// sent again under a new packet id (from the queue, or routed again from its publisher's resend), and the client
/// could not know it as a duplicate. Restored from the store, the message is resent under its packet id with DUP,
/// which the client recognises. Everything else passes straight through while nothing is held.
/// </summary>
internal sealed class DurableOutput(Broker broker, IClientOutput inner, Func<bool> sessionIsStored) : IClientOutput
{
    private readonly object _sync = new();
    /// <summary>Packets waiting for a flush, oldest first. Bounded as the connection's own queue is: entries wait only
    /// while a flush is pending (milliseconds; a failed one empties it); the QoS 2 PUBLISHes among them are within the
    /// session's inflight window, and everything held counts in <see cref="Backlog"/>/<see cref="BacklogBytes"/>, which
    /// the session checks before it writes more (QoS 0 held back past <c>max_queued_bytes</c>, QoS 1/2 queued).</summary>
    private readonly Queue<Item> _held = new();
    private int _heldCount;
    private long _heldBytes;
    private bool _failed;

    private readonly record struct Item(Task Durable, MqttPacket? Packet, Message? Message, OutgoingPublish Fields, bool Close);

    public int Backlog => inner.Backlog + Volatile.Read(ref _heldCount);

    public long BacklogBytes => inner.BacklogBytes + Volatile.Read(ref _heldBytes);

    public void Send(MqttPacket packet)
    {
        bool writeAhead = packet is PublishAckPacket { Type: PacketType.PubRel };
        if (Pass(writeAhead, out var durable)) inner.Send(packet);
        else Hold(new Item(durable, packet, null, default, false), 0);
    }

    public void SendPublish(Message message, in OutgoingPublish fields)
    {
        if (Pass(fields.QoS == QoS.ExactlyOnce, out var durable)) inner.SendPublish(message, fields);
        else Hold(new Item(durable, null, message, fields, false), message.PayloadLength);
    }

    public void Close(MqttPacket? finalPacket)
    {
        if (Volatile.Read(ref _heldCount) == 0)
        {
            inner.Close(finalPacket);
            return;
        }
        Hold(new Item(Task.CompletedTask, finalPacket, null, default, true), 0);
    }

    /// <summary>Whether the packet goes now: nothing is held before it, and it needs nothing from the store (or
    /// the store has everything). Otherwise <paramref name="durable"/> is what it waits for.</summary>
    private bool Pass(bool writeAhead, out Task durable)
    {
        durable = Task.CompletedTask;
        if (writeAhead && broker.HoldsAcknowledgements && sessionIsStored())
        {
            var flush = broker.SessionStore!.FlushAsync();
            if (!flush.IsCompletedSuccessfully) durable = flush.AsTask();
        }
        return Volatile.Read(ref _heldCount) == 0 && durable.IsCompleted;
    }

    private void Hold(in Item item, int bytes)
    {
        bool release;
        lock (_sync)
        {
            if (_failed) return;
            if (_held.Count == 0 && item.Durable.IsCompleted)
            {
                Dispatch(item); // the last held one left meanwhile
                return;
            }
            _held.Enqueue(item);
            _heldCount = _held.Count;
            _heldBytes += bytes;
            release = _held.Count == 1;
        }
        if (release) WhenDurable(item.Durable);
    }

    private void WhenDurable(Task durable) =>
        durable.ContinueWith(static (_, state) => ((DurableOutput)state!).Release(), this, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Writes, in order, what no longer waits; a failed flush writes none of it and closes the connection
    /// (the client gets the messages again, as resends, once the broker has them).</summary>
    private void Release()
    {
        Task? next = null;
        lock (_sync)
        {
            while (_held.TryPeek(out var item) && item.Durable.IsCompleted)
            {
                if (!item.Durable.IsCompletedSuccessfully)
                {
                    _failed = true;
                    _held.Clear();
                    _heldCount = 0;
                    _heldBytes = 0;
                    inner.Close(null);
                    return;
                }
                _held.Dequeue();
                if (item.Message is { } m) _heldBytes -= m.PayloadLength;
                Dispatch(item);
            }
            _heldCount = _held.Count;
            if (_held.Count > 0) next = _held.Peek().Durable;
        }
        if (next is not null) WhenDurable(next);
    }

    private void Dispatch(in Item item)
    {
        if (item.Close) inner.Close(item.Packet);
        else if (item.Message is { } message) inner.SendPublish(message, item.Fields);
        else inner.Send(item.Packet!);
    }
}
