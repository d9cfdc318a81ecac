using System.Buffers;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Cluster;

/// <summary>
/// A session as one node hands it to another (a takeover across nodes): everything <see cref="SessionState"/> holds
/// (expiry, subscriptions with their options, queued and in-flight messages with their per-receiver fields, incoming
/// QoS 2 packet ids, the will), in a compact binary form; messages as <see cref="ClusterWire"/> writes them. Numbers
/// are big-endian; times are Unix milliseconds.
/// </summary>
internal static class SessionStateCodec
{
    private const byte Version = 1;

    public static byte[] Encode(SessionState state, DateTimeOffset utcNow)
    {
        var w = new ArrayBufferWriter<byte>(256);
        ClusterWire.WriteByte(w, Version);
        ClusterWire.WriteString(w, state.ClientId);
        ClusterWire.WriteUInt32(w, state.ExpiryInterval);
        ClusterWire.WriteInt64(w, state.DisconnectedAt?.ToUnixTimeMilliseconds() ?? -1);
        ClusterWire.WriteUInt32(w, (uint)state.Subscriptions.Count);
        foreach (var s in state.Subscriptions)
        {
            ClusterWire.WriteString(w, s.Filter);
            ClusterWire.WriteString(w, s.ClientFilter);
            ClusterWire.WriteByte(w, (byte)s.QoS);
            ClusterWire.WriteByte(w, (byte)((s.NoLocal ? 1 : 0) | (s.RetainAsPublished ? 2 : 0) | (s.Exclusive ? 4 : 0)));
            ClusterWire.WriteByte(w, (byte)s.RetainHandling);
            ClusterWire.WriteUInt32(w, s.SubscriptionId);
        }
        ClusterWire.WriteUInt32(w, (uint)state.Queued.Count);
        foreach (var q in state.Queued)
        {
            ClusterWire.WriteInt64(w, q.Sequence);
            WriteDelivery(w, q.Message, q.QoS, q.Retain, q.SubscriptionIds, utcNow);
        }
        ClusterWire.WriteUInt32(w, (uint)state.Inflight.Count);
        foreach (var f in state.Inflight)
        {
            ClusterWire.WriteUInt32(w, f.PacketId);
            ClusterWire.WriteInt64(w, f.Sequence);
            ClusterWire.WriteByte(w, (byte)f.State);
            WriteDelivery(w, f.Message, f.QoS, f.Retain, f.SubscriptionIds, utcNow);
        }
        ClusterWire.WriteUInt32(w, (uint)state.IncomingQoS2.Count);
        foreach (var id in state.IncomingQoS2) ClusterWire.WriteUInt32(w, id);
        ClusterWire.WriteByte(w, state.Will is null ? (byte)0 : (byte)1);
        if (state.Will is { } will)
        {
            ClusterWire.WriteUInt32(w, will.DelayInterval);
            ClusterWire.WriteInt64(w, will.DueAt?.ToUnixTimeMilliseconds() ?? -1);
            ClusterWire.WriteStored(w, will.Message, utcNow);
        }
        return w.WrittenSpan.ToArray();
    }

    /// <exception cref="FormatException">Not a session this version writes.</exception>
    public static SessionState Decode(ReadOnlySequence<byte> bytes, DateTimeOffset utcNow)
    {
        var r = new SequenceReader<byte>(bytes);
        if (ClusterWire.ReadByte(ref r) != Version) throw new FormatException("unknown session format");
        var clientId = ClusterWire.ReadString(ref r) ?? throw new FormatException("a session without a client id");
        uint expiry = ClusterWire.ReadUInt32(ref r);
        long disconnected = ClusterWire.ReadInt64(ref r);
        var subscriptions = new List<Subscription>();
        for (uint i = Count(ref r); i > 0; i--)
        {
            var filter = ClusterWire.ReadString(ref r) ?? throw new FormatException("a subscription without a filter");
            var clientFilter = ClusterWire.ReadString(ref r) ?? filter;
            var qos = (QoS)ClusterWire.ReadByte(ref r);
            byte flags = ClusterWire.ReadByte(ref r);
            var handling = (RetainHandling)ClusterWire.ReadByte(ref r);
            subscriptions.Add(new Subscription(filter, qos)
            {
                ClientFilter = clientFilter,
                NoLocal = (flags & 1) != 0,
                RetainAsPublished = (flags & 2) != 0,
                Exclusive = (flags & 4) != 0,
                RetainHandling = handling,
                SubscriptionId = ClusterWire.ReadUInt32(ref r),
            });
        }
        var queued = new List<QueuedMessage>();
        for (uint i = Count(ref r); i > 0; i--)
        {
            long sequence = ClusterWire.ReadInt64(ref r);
            var (message, qos, retain, ids) = ReadDelivery(ref r, utcNow);
            queued.Add(new QueuedMessage(sequence, message, qos, retain, ids));
        }
        var inflight = new List<InflightMessage>();
        for (uint i = Count(ref r); i > 0; i--)
        {
            var packetId = (ushort)ClusterWire.ReadUInt32(ref r);
            long sequence = ClusterWire.ReadInt64(ref r);
            var state = (InflightState)ClusterWire.ReadByte(ref r);
            var (message, qos, retain, ids) = ReadDelivery(ref r, utcNow);
            inflight.Add(new InflightMessage(packetId, sequence, message, qos, retain, ids, state));
        }
        var incoming = new List<ushort>();
        for (uint i = Count(ref r); i > 0; i--) incoming.Add((ushort)ClusterWire.ReadUInt32(ref r));
        StoredWill? will = null;
        if (ClusterWire.ReadByte(ref r) == 1)
        {
            uint delay = ClusterWire.ReadUInt32(ref r);
            long due = ClusterWire.ReadInt64(ref r);
            will = new StoredWill(ClusterWire.ReadStored(ref r, utcNow), delay) { DueAt = Time(due) };
        }
        return new SessionState(clientId)
        {
            ExpiryInterval = expiry,
            DisconnectedAt = Time(disconnected),
            Subscriptions = subscriptions,
            Queued = queued,
            Inflight = inflight,
            IncomingQoS2 = incoming,
            Will = will,
        };
    }

    /// <summary>A queued message as the sessions bucket keeps it, under a key of its own (<see cref="SessionReplica"/>).</summary>
    public static byte[] EncodeQueued(QueuedMessage q, DateTimeOffset utcNow)
    {
        var w = new ArrayBufferWriter<byte>(64 + q.Message.Payload.Length);
        ClusterWire.WriteByte(w, Version);
        ClusterWire.WriteInt64(w, q.Sequence);
        WriteDelivery(w, q.Message, q.QoS, q.Retain, q.SubscriptionIds, utcNow);
        return w.WrittenSpan.ToArray();
    }

    /// <exception cref="FormatException">Not a queued message this version writes.</exception>
    public static QueuedMessage DecodeQueued(ReadOnlySequence<byte> bytes, DateTimeOffset utcNow)
    {
        var r = new SequenceReader<byte>(bytes);
        if (ClusterWire.ReadByte(ref r) != Version) throw new FormatException("unknown queued message format");
        long sequence = ClusterWire.ReadInt64(ref r);
        var (message, qos, retain, ids) = ReadDelivery(ref r, utcNow);
        return new QueuedMessage(sequence, message, qos, retain, ids);
    }

    /// <summary>A message in flight as the sessions bucket keeps it, under a key of its own, with the queued message it
    /// came from (<see cref="InflightMessage.FromQueue"/>: a session read back leaves that one out, should its removal
    /// not have been written).</summary>
    public static byte[] EncodeInflight(InflightMessage f, DateTimeOffset utcNow)
    {
        var w = new ArrayBufferWriter<byte>(64 + f.Message.Payload.Length);
        ClusterWire.WriteByte(w, Version);
        ClusterWire.WriteUInt32(w, f.PacketId);
        ClusterWire.WriteInt64(w, f.Sequence);
        ClusterWire.WriteInt64(w, f.FromQueue);
        ClusterWire.WriteByte(w, (byte)f.State);
        WriteDelivery(w, f.Message, f.QoS, f.Retain, f.SubscriptionIds, utcNow);
        return w.WrittenSpan.ToArray();
    }

    /// <exception cref="FormatException">Not a message in flight this version writes.</exception>
    public static InflightMessage DecodeInflight(ReadOnlySequence<byte> bytes, DateTimeOffset utcNow)
    {
        var r = new SequenceReader<byte>(bytes);
        if (ClusterWire.ReadByte(ref r) != Version) throw new FormatException("unknown in-flight message format");
        var packetId = (ushort)ClusterWire.ReadUInt32(ref r);
        long sequence = ClusterWire.ReadInt64(ref r);
        long fromQueue = ClusterWire.ReadInt64(ref r);
        var state = (InflightState)ClusterWire.ReadByte(ref r);
        var (message, qos, retain, ids) = ReadDelivery(ref r, utcNow);
        return new InflightMessage(packetId, sequence, message, qos, retain, ids, state) { FromQueue = fromQueue };
    }

    private static DateTimeOffset? Time(long unixMs) => unixMs < 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(unixMs);

    /// <summary>A count of items, each at least a byte: more than the bytes left is malformed.</summary>
    private static uint Count(ref SequenceReader<byte> r)
    {
        uint n = ClusterWire.ReadUInt32(ref r);
        return n <= r.Remaining ? n : throw new FormatException("a count beyond the session's end");
    }

    private static void WriteDelivery(IBufferWriter<byte> w, StoredMessage message, QoS qos, bool retain, uint[]? ids, DateTimeOffset utcNow)
    {
        ClusterWire.WriteByte(w, (byte)qos);
        ClusterWire.WriteByte(w, retain ? (byte)1 : (byte)0);
        ClusterWire.WriteUInt32(w, ids is null ? uint.MaxValue : (uint)ids.Length);
        foreach (var id in ids ?? []) ClusterWire.WriteUInt32(w, id);
        ClusterWire.WriteStored(w, message, utcNow);
    }

    private static (StoredMessage Message, QoS QoS, bool Retain, uint[]? Ids) ReadDelivery(ref SequenceReader<byte> r, DateTimeOffset utcNow)
    {
        var qos = (QoS)ClusterWire.ReadByte(ref r);
        bool retain = ClusterWire.ReadByte(ref r) == 1;
        uint n = ClusterWire.ReadUInt32(ref r);
        uint[]? ids = null;
        if (n != uint.MaxValue)
        {
            if (n > r.Remaining) throw new FormatException("a count beyond the session's end");
            ids = new uint[n];
            for (int i = 0; i < ids.Length; i++) ids[i] = ClusterWire.ReadUInt32(ref r);
        }
        return (ClusterWire.ReadStored(ref r, utcNow), qos, retain, ids);
    }
}
