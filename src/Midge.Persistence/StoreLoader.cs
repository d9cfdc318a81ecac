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
    private const string MessageColumns = "m.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.origin_client_id, m.origin_user_name, m.expires_at";

    public static List<SessionState> LoadSessions(SqliteConnection connection)
    {
        var sessions = new Dictionary<long, Builder>();
        Read(connection, "SELECT id, client_id, expiry_interval, disconnected_at FROM sessions", r =>
            sessions[r.GetInt64(0)] = new Builder(new SessionState(r.GetString(1))
            {
                ExpiryInterval = (uint)r.GetInt64(2),
                DisconnectedAt = Time(r, 3),
            }));
        Read(connection, """
            SELECT session_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id, exclusive, client_filter
            FROM subscriptions
            """, r => sessions[r.GetInt64(0)].Subscriptions.Add(Subscription(r)));
        var messages = new Dictionary<long, StoredMessage>();
        Read(connection, $"""
            SELECT {MessageColumns} FROM messages m WHERE m.id IN
                (SELECT message_id FROM queued UNION SELECT message_id FROM inflight UNION SELECT message_id FROM wills)
            """, r => messages[r.GetInt64(0)] = Message(r, 1));
        Read(connection, "SELECT session_id, sequence, message_id, qos, retain, subscription_ids FROM queued ORDER BY session_id, sequence",
            r => sessions[r.GetInt64(0)].Queued.Add(
                new QueuedMessage(r.GetInt64(1), messages[r.GetInt64(2)], (QoS)r.GetInt32(3), r.GetBoolean(4), Ids(r, 5))));
        Read(connection, """
            SELECT session_id, packet_id, sequence, message_id, qos, retain, subscription_ids, state FROM inflight
            ORDER BY session_id, sequence
            """, r => sessions[r.GetInt64(0)].Inflight.Add(new InflightMessage((ushort)r.GetInt32(1), r.GetInt64(2),
                messages[r.GetInt64(3)], (QoS)r.GetInt32(4), r.GetBoolean(5), Ids(r, 6), (InflightState)r.GetInt32(7))));
        Read(connection, "SELECT session_id, packet_id FROM incoming_qos2 ORDER BY session_id, packet_id",
            r => sessions[r.GetInt64(0)].IncomingQoS2.Add((ushort)r.GetInt32(1)));
        Read(connection, "SELECT session_id, message_id, delay_interval, due_at FROM wills", r =>
            sessions[r.GetInt64(0)].Will = new StoredWill(messages[r.GetInt64(1)], (uint)r.GetInt64(2)) { DueAt = Time(r, 3) });
        return sessions.Values.Select(b => b.Build()).ToList();
    }

    public static List<StoredMessage> LoadRetained(SqliteConnection connection)
    {
        var retained = new List<StoredMessage>();
        Read(connection, $"SELECT {MessageColumns} FROM retained JOIN messages m ON m.id = retained.message_id", r => retained.Add(Message(r, 1)));
        return retained;
    }

    public static List<Ban> LoadBans(SqliteConnection connection)
    {
        var bans = new List<Ban>();
        Read(connection, "SELECT kind, who, banned_by, reason, banned_at, until FROM bans", r => bans.Add(new Ban((BanKind)r.GetInt32(0),
            r.GetString(1), r.GetString(2), r.GetString(3), new DateTimeOffset(r.GetInt64(4), TimeSpan.Zero), Time(r, 5))));
        return bans;
    }

    public static StoredTotals? LoadTotals(SqliteConnection connection)
    {
        StoredTotals? totals = null;
        Read(connection, "SELECT * FROM totals", r => totals = new StoredTotals
        {
            MessagesReceived = r.GetInt64(1),
            MessagesSent = r.GetInt64(2),
            PublishReceived = r.GetInt64(3),
            PublishSent = r.GetInt64(4),
            PublishDropped = r.GetInt64(5),
            BytesReceived = r.GetInt64(6),
            BytesSent = r.GetInt64(7),
            ConnectsTotal = r.GetInt64(8),
            ClientsMaximum = r.GetInt64(9),
            ClientsExpired = r.GetInt64(10),
        });
        return totals;
    }

    private static Subscription Subscription(SqliteDataReader r) => new(r.GetString(1), (QoS)r.GetInt32(2))
    {
        NoLocal = r.GetBoolean(3),
        RetainAsPublished = r.GetBoolean(4),
        RetainHandling = (RetainHandling)r.GetInt32(5),
        SubscriptionId = (uint)r.GetInt64(6),
        Exclusive = r.GetBoolean(7),
        ClientFilter = r.GetString(8),
    };

    /// <summary>The message in the columns from <paramref name="at"/> on (<see cref="MessageColumns"/> after the id).</summary>
    private static StoredMessage Message(SqliteDataReader r, int at) =>
        new(r.GetString(at), Blob(r, at + 1) ?? [], (QoS)r.GetInt32(at + 2), r.GetBoolean(at + 3))
        {
            Properties = Blob(r, at + 4) is { } blob ? PropertiesCodec.Decode(blob) : null,
            OriginClientId = r.IsDBNull(at + 5) ? null : r.GetString(at + 5),
            OriginUserName = r.IsDBNull(at + 6) ? null : r.GetString(at + 6),
            ExpiresAt = Time(r, at + 7),
        };

    private static DateTimeOffset? Time(SqliteDataReader r, int column) =>
        r.IsDBNull(column) ? null : new DateTimeOffset(r.GetInt64(column), TimeSpan.Zero);

    private static byte[]? Blob(SqliteDataReader r, int column) => r.IsDBNull(column) ? null : (byte[])r.GetValue(column);

    private static uint[]? Ids(SqliteDataReader r, int column)
    {
        if (Blob(r, column) is not { } bytes) return null;
        var ids = new uint[bytes.Length / 4];
        for (int i = 0; i < ids.Length; i++) ids[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
        return ids;
    }

    private static void Read(SqliteConnection connection, string sql, Action<SqliteDataReader> row)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        while (reader.Read()) row(reader);
    }

    /// <summary>One session's state as its rows are read.</summary>
    private sealed class Builder(SessionState state)
    {
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
