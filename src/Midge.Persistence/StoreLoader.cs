using System.Buffers.Binary;
using Microsoft.Data.Sqlite;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Persistence;

/// <summary>
/// Reads the store's tables (<see cref="StoreSchema"/>) back into the records of <see cref="ISessionStore"/>. A
/// message held by many sessions is read once and the same <see cref="StoredMessage"/> given to each.
/// </summary>
internal static class StoreLoader
{
    /// <summary>The columns of a message (<see cref="Message"/>) from a join of <c>messages m</c>: the message id first,
    /// NULL in every column when the row it names is missing. QoS and retain travel as one number (fewer calls per
    /// row).</summary>
    private const string MessageColumns =
        "m.id, m.topic, m.payload, m.qos | (m.retain << 2), m.properties, m.origin_client_id, m.origin_user_name, m.expires_at";

    /// <summary>Every session with its rows. <paramref name="tables"/> sees each session's row id and each message a
    /// row points at (<see cref="StoreTables.Loaded"/>): its memory is counted from this read, and a message held by
    /// many sessions is made once.</summary>
    public static List<SessionState> LoadSessions(SqliteConnection connection, StoreTables tables)
    {
        var sessions = new Dictionary<long, Builder>();
        RowReader.ForEach(connection, "SELECT id, client_id, expiry_interval, disconnected_at FROM sessions", r =>
        {
            var state = new SessionState(r.String(1)) { ExpiryInterval = (uint)r.Int64(2), DisconnectedAt = Time(r.NullableInt64(3)) };
            sessions[r.Int64(0)] = new Builder(state, r.Int64(0));
            tables.LoadedSession(state.ClientId, r.Int64(0));
        });
        RowReader.ForEach(connection, """
            SELECT session_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id, exclusive, client_filter
            FROM subscriptions
            """, r => Session(sessions, r.Int64(0)).Subscriptions.Add(Subscription(r)));
        // The rows come in the order of the tables' keys (session, then sequence or packet id): the builder of the
        // previous row is usually the one.
        Builder? last = null;
        RowReader.ForEach(connection, $"""
            SELECT q.session_id, q.sequence, q.qos | (q.retain << 2), q.subscription_ids, {MessageColumns}
            FROM queued q LEFT JOIN messages m ON m.id = q.message_id ORDER BY q.session_id, q.sequence
            """, r =>
            {
                var builder = Session(sessions, r.Int64(0), ref last);
                int flags = r.Int32(2);
                builder.Queued.Add(new QueuedMessage(r.Int64(1), tables.Loaded(r, 4), (QoS)(flags & 3), flags >> 2 != 0, Ids(r.Blob(3))));
            });
        RowReader.ForEach(connection, $"""
            SELECT i.session_id, i.packet_id, i.sequence, i.qos | (i.retain << 2), i.subscription_ids, i.state, {MessageColumns}
            FROM inflight i LEFT JOIN messages m ON m.id = i.message_id ORDER BY i.session_id, i.sequence
            """, r =>
            {
                var builder = Session(sessions, r.Int64(0), ref last);
                int flags = r.Int32(3);
                builder.Inflight.Add(new InflightMessage((ushort)r.Int32(1), r.Int64(2), tables.Loaded(r, 6), (QoS)(flags & 3),
                    flags >> 2 != 0, Ids(r.Blob(4)), (InflightState)r.Int32(5)));
            });
        RowReader.ForEach(connection, "SELECT session_id, packet_id FROM incoming_qos2 ORDER BY session_id, packet_id",
            r => Session(sessions, r.Int64(0), ref last).IncomingQoS2.Add((ushort)r.Int32(1)));
        RowReader.ForEach(connection, $"""
            SELECT w.session_id, w.delay_interval, w.due_at, {MessageColumns} FROM wills w LEFT JOIN messages m ON m.id = w.message_id
            """, r => Session(sessions, r.Int64(0)).Will = new StoredWill(tables.Loaded(r, 3), (uint)r.Int64(1)) { DueAt = Time(r.NullableInt64(2)) });
        var result = new List<SessionState>(sessions.Count);
        foreach (var builder in sessions.Values) result.Add(builder.Build());
        return result;
    }

    /// <summary>Every retained message; <paramref name="tables"/> sees each (<see cref="StoreTables.Loaded"/>).</summary>
    public static List<StoredMessage> LoadRetained(SqliteConnection connection, StoreTables tables)
    {
        var retained = new List<StoredMessage>();
        RowReader.ForEach(connection, $"SELECT {MessageColumns} FROM retained r LEFT JOIN messages m ON m.id = r.message_id",
            r => retained.Add(tables.Loaded(r, 0)));
        return retained;
    }

    public static List<Ban> LoadBans(SqliteConnection connection)
    {
        var bans = new List<Ban>();
        RowReader.ForEach(connection, "SELECT kind, who, banned_by, reason, banned_at, until FROM bans", r => bans.Add(
            new Ban((BanKind)r.Int32(0), r.String(1), r.String(2), r.String(3), new DateTimeOffset(r.Int64(4), TimeSpan.Zero),
                Time(r.NullableInt64(5)))));
        return bans;
    }

    public static StoredTotals? LoadTotals(SqliteConnection connection)
    {
        StoredTotals? totals = null;
        RowReader.ForEach(connection, "SELECT * FROM totals", r => totals = new StoredTotals
        {
            MessagesReceived = r.Int64(1),
            MessagesSent = r.Int64(2),
            PublishReceived = r.Int64(3),
            PublishSent = r.Int64(4),
            PublishDropped = r.Int64(5),
            BytesReceived = r.Int64(6),
            BytesSent = r.Int64(7),
            ConnectsTotal = r.Int64(8),
            ClientsMaximum = r.Int64(9),
            ClientsExpired = r.Int64(10),
        });
        return totals;
    }

    private static Subscription Subscription(RowReader r) => new(r.String(1), (QoS)r.Int32(2))
    {
        NoLocal = r.Int32(3) != 0,
        RetainAsPublished = r.Int32(4) != 0,
        RetainHandling = (RetainHandling)r.Int32(5),
        SubscriptionId = (uint)r.Int64(6),
        Exclusive = r.Int32(7) != 0,
        ClientFilter = r.String(8),
    };

    /// <summary>The message in the columns from <paramref name="at"/> on (<see cref="MessageColumns"/>, after the id).</summary>
    public static StoredMessage Message(RowReader r, int at)
    {
        int flags = r.Int32(at + 2);
        return new(r.String(at), r.Payload(at + 1), (QoS)(flags & 3), flags >> 2 != 0)
        {
            Properties = r.Blob(at + 3) is { } blob ? PropertiesCodec.Decode(blob) : null,
            OriginClientId = r.NullableString(at + 4),
            OriginUserName = r.NullableString(at + 5),
            ExpiresAt = Time(r.NullableInt64(at + 6)),
        };
    }

    /// <summary>A time column's value (UTC ticks), null for NULL.</summary>
    private static DateTimeOffset? Time(long? ticks) => ticks is { } t ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    private static uint[]? Ids(byte[]? bytes)
    {
        if (bytes is null) return null;
        var ids = new uint[bytes.Length / 4];
        for (int i = 0; i < ids.Length; i++) ids[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
        return ids;
    }

    private static Builder Session(Dictionary<long, Builder> sessions, long id) =>
        sessions.TryGetValue(id, out var builder) ? builder : throw new FormatException($"a row names session {id}, which is missing");

    private static Builder Session(Dictionary<long, Builder> sessions, long id, ref Builder? last) =>
        last is not null && last.Id == id ? last : last = Session(sessions, id);

    /// <summary>One session's state as its rows are read.</summary>
    private sealed class Builder(SessionState state, long id)
    {
        public readonly long Id = id;
        public readonly List<Subscription> Subscriptions = [];
        public readonly List<QueuedMessage> Queued = [];
        public readonly List<InflightMessage> Inflight = [];
        public readonly List<ushort> IncomingQoS2 = [];
        public StoredWill? Will;

        public SessionState Build() => state with
        {
            Subscriptions = Subscriptions,
            Queued = Queued,
            Inflight = Inflight,
            IncomingQoS2 = IncomingQoS2,
            Will = Will,
        };
    }
}
