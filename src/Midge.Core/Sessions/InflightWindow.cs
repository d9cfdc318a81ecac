using System.Diagnostics.CodeAnalysis;
using Midge.Core.Messages;
using Midge.Core.Protection;
using Midge.Protocol;

namespace Midge.Core.Sessions;

/// <summary>
/// The outgoing QoS 1 and 2 messages a session has sent and the client has not finished acknowledging: each under
/// its packet id, with the acknowledgement it waits for (<see cref="InflightState"/>), in send order (resent in that
/// order when the client comes back), their payload bytes (<c>max_inflight_bytes</c>, and <c>memory_limit</c>
/// through <see cref="HeldBytes"/>), and the allocation of packet ids. The window's size is the client's Receive
/// Maximum capped by <c>max_inflight_messages</c>, given by the caller.
/// </summary>
/// <remarks>
/// A mutable struct embedded in <see cref="Session"/> and guarded by its lock: a session costs no more than when
/// these were its own fields, and the dictionary is made on first use (most sessions never have a message in flight).
/// Keep it in a non-readonly field and never copy it.
/// </remarks>
internal struct InflightWindow
{
    private Dictionary<ushort, InflightEntry>? _entries;
    private long _bytes;
    /// <summary>Send order of the entries, for resends.</summary>
    private long _sequence;
    /// <summary>The packet id given last; 0 before the first.</summary>
    private ushort _lastPacketId;

    public readonly int Count => _entries?.Count ?? 0;

    /// <summary>Payload bytes in flight.</summary>
    public readonly long Bytes => _bytes;

    /// <summary>Whether one more message of <paramref name="payloadLength"/> bytes may go: fewer than
    /// <paramref name="window"/> in flight, and within <paramref name="maxBytes"/> (max_inflight_bytes, 0 = no limit;
    /// one message goes whatever its size when nothing is in flight).</summary>
    public readonly bool HasRoom(int window, long maxBytes, int payloadLength)
    {
        if (Count >= window) return false;
        return maxBytes <= 0 || _bytes == 0 || _bytes + payloadLength <= maxBytes;
    }

    /// <summary>The next free packet id: ids start at 1, wrap after 65535 and skip those still in flight (65535 in
    /// flight at once cannot happen: the window is smaller).</summary>
    public ushort NextPacketId()
    {
        while (true)
        {
            ushort id = _lastPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_lastPacketId + 1);
            _lastPacketId = id;
            if (_entries?.ContainsKey(id) != true) return id;
        }
    }

    /// <summary>Records a message just sent under <paramref name="packetId"/>.</summary>
    public InflightEntry Add(ushort packetId, Message message, QoS qos, bool retain, uint[]? subscriptionIds, object? sharedGroup,
        HeldBytes held)
    {
        var entry = new InflightEntry(message, qos, retain, subscriptionIds, ++_sequence,
            qos == QoS.AtLeastOnce ? InflightState.AwaitingPubAck : InflightState.AwaitingPubRec, sharedGroup);
        (_entries ??= new())[packetId] = entry;
        BytesChanged(message.PayloadLength, held);
        return entry;
    }

    public readonly bool TryGet(ushort packetId, [NotNullWhen(true)] out InflightEntry? entry)
    {
        entry = null;
        return _entries?.TryGetValue(packetId, out entry) == true;
    }

    /// <summary>Ends the flow of <paramref name="entry"/> (found under <paramref name="packetId"/>): the id is free.</summary>
    public void Remove(ushort packetId, InflightEntry entry, HeldBytes held)
    {
        _entries!.Remove(packetId);
        BytesChanged(-entry.Message.PayloadLength, held);
    }

    /// <summary>The entries in send order; null when there are none.</summary>
    public readonly List<(ushort PacketId, InflightEntry Entry)>? InSendOrder()
    {
        if (_entries is not { Count: > 0 } entries) return null;
        var ordered = new List<(ushort, InflightEntry)>(entries.Count);
        foreach (var (id, e) in entries) ordered.Add((id, e));
        ordered.Sort(static (a, b) => a.Item2.Sequence.CompareTo(b.Item2.Sequence));
        return ordered;
    }

    /// <summary>Removes, in send order, the messages that came through a shared subscription and whose delivery the
    /// client has not taken yet (a QoS 2 message whose PUBREC arrived is the client's already); null when none.</summary>
    public List<(ushort PacketId, InflightEntry Entry)>? TakeShared(HeldBytes held)
    {
        if (_entries is not { Count: > 0 } entries) return null;
        List<(ushort, InflightEntry)>? taken = null;
        foreach (var (id, e) in entries)
        {
            if (e.SharedGroup is null || e.State == InflightState.AwaitingPubComp) continue;
            (taken ??= []).Add((id, e));
        }
        if (taken is null) return null;
        taken.Sort(static (a, b) => a.Item2.Sequence.CompareTo(b.Item2.Sequence));
        foreach (var (id, e) in taken) Remove(id, e, held);
        return taken;
    }

    /// <summary>Drops everything in flight; packet ids start again at 1.</summary>
    public void Clear(HeldBytes held)
    {
        _entries = null;
        BytesChanged(-_bytes, held);
        _lastPacketId = 0;
    }

    /// <summary>Puts back an entry read from a session store (a broker restart), keeping its send order.</summary>
    public void Restore(ushort packetId, InflightEntry entry, HeldBytes held)
    {
        (_entries ??= new())[packetId] = entry;
        if (entry.Sequence > _sequence) _sequence = entry.Sequence;
        BytesChanged(entry.Message.PayloadLength, held);
    }

    /// <summary>Every change to the bytes in flight goes through here, so the broker's total (memory_limit) moves
    /// with it.</summary>
    private void BytesChanged(long delta, HeldBytes held)
    {
        _bytes += delta;
        held.Add(delta);
    }
}

/// <summary>Which acknowledgement a message in flight waits for.</summary>
public enum InflightState : byte
{
    /// <summary>QoS 1, sent: waits for PUBACK.</summary>
    AwaitingPubAck,
    /// <summary>QoS 2, sent: waits for PUBREC.</summary>
    AwaitingPubRec,
    /// <summary>QoS 2, PUBREC received and PUBREL sent: waits for PUBCOMP.</summary>
    AwaitingPubComp,
}

/// <summary>One message in flight: what to resend, and the state of its flow.</summary>
internal sealed class InflightEntry(Message message, QoS qos, bool retain, uint[]? subscriptionIds, long sequence, InflightState state,
    object? sharedGroup)
{
    /// <summary>The shared subscription group it came through, to hand it back to if the client leaves; null otherwise.</summary>
    public object? SharedGroup { get; } = sharedGroup;
    public Message Message { get; } = message;
    public QoS QoS { get; } = qos;
    public bool Retain { get; } = retain;
    public uint[]? SubscriptionIds { get; } = subscriptionIds;
    /// <summary>Send order within its session.</summary>
    public long Sequence { get; } = sequence;
    public InflightState State { get; set; } = state;
}
