namespace Midge.Persistence;

/// <summary>
/// The tables of a Midge store, format 2 (format 1 had no <c>bans</c>; opening such a file adds the table). The file
/// says what it is in its header: <c>PRAGMA application_id</c> is <see cref="ApplicationId"/> ("Mdge") and
/// <c>PRAGMA user_version</c> the format, <see cref="FormatVersion"/>.
/// <para>A session has a row id that its other rows use. A message is stored once however many sessions hold it
/// (<c>queued</c>, <c>inflight</c>, <c>wills</c> and <c>retained</c> point at it) and deleted when the last of them
/// lets it go; the store counts the references in memory and counts them again when it opens. Times are UTC ticks
/// (100 ns since 0001-01-01, <see cref="DateTimeOffset.UtcTicks"/>), NULL for none. Subscription identifiers are
/// 32-bit little-endian numbers one after the other, NULL for none. Properties are <see cref="PropertiesCodec"/>'s
/// blob, NULL for none.</para>
/// </summary>
internal static class StoreSchema
{
    /// <summary>"Mdge" in ASCII, the file's <c>application_id</c>.</summary>
    public const int ApplicationId = 0x4D646765;

    /// <summary>The format this code reads and writes, the file's <c>user_version</c>.</summary>
    public const int FormatVersion = 2;

    /// <summary>The bans an administrator made (format 2). <c>kind</c> is <see cref="Core.Protection.BanKind"/>'s
    /// number, <c>who</c> as the ban list holds it (an address in its usual form).</summary>
    public const string Bans = """
        CREATE TABLE IF NOT EXISTS bans (
            kind INTEGER NOT NULL,
            who TEXT NOT NULL,
            banned_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            banned_at INTEGER NOT NULL,
            until INTEGER,
            PRIMARY KEY (kind, who)
        ) WITHOUT ROWID;
        """;

    public static readonly string Create = $"""
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            client_id TEXT NOT NULL UNIQUE,
            expiry_interval INTEGER NOT NULL,
            disconnected_at INTEGER
        );
        CREATE TABLE subscriptions (
            session_id INTEGER NOT NULL,
            filter TEXT NOT NULL,
            qos INTEGER NOT NULL,
            no_local INTEGER NOT NULL,
            retain_as_published INTEGER NOT NULL,
            retain_handling INTEGER NOT NULL,
            subscription_id INTEGER NOT NULL,
            exclusive INTEGER NOT NULL,
            client_filter TEXT NOT NULL,
            PRIMARY KEY (session_id, filter)
        ) WITHOUT ROWID;
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            properties BLOB,
            origin_client_id TEXT,
            origin_user_name TEXT,
            expires_at INTEGER
        );
        CREATE TABLE queued (
            session_id INTEGER NOT NULL,
            sequence INTEGER NOT NULL,
            message_id INTEGER NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            subscription_ids BLOB,
            PRIMARY KEY (session_id, sequence)
        ) WITHOUT ROWID;
        CREATE TABLE inflight (
            session_id INTEGER NOT NULL,
            packet_id INTEGER NOT NULL,
            sequence INTEGER NOT NULL,
            message_id INTEGER NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            subscription_ids BLOB,
            state INTEGER NOT NULL,
            PRIMARY KEY (session_id, packet_id)
        ) WITHOUT ROWID;
        CREATE TABLE incoming_qos2 (
            session_id INTEGER NOT NULL,
            packet_id INTEGER NOT NULL,
            PRIMARY KEY (session_id, packet_id)
        ) WITHOUT ROWID;
        CREATE TABLE wills (
            session_id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL,
            delay_interval INTEGER NOT NULL,
            due_at INTEGER
        );
        CREATE TABLE retained (
            topic TEXT PRIMARY KEY,
            message_id INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE totals (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            messages_received INTEGER NOT NULL,
            messages_sent INTEGER NOT NULL,
            publish_received INTEGER NOT NULL,
            publish_sent INTEGER NOT NULL,
            publish_dropped INTEGER NOT NULL,
            bytes_received INTEGER NOT NULL,
            bytes_sent INTEGER NOT NULL,
            connects_total INTEGER NOT NULL,
            clients_maximum INTEGER NOT NULL,
            clients_expired INTEGER NOT NULL
        );
        {Bans}
        PRAGMA application_id = {ApplicationId};
        PRAGMA user_version = {FormatVersion};
        """;

    /// <summary>How many rows point at each message: the references the store counts in memory.</summary>
    public const string CountReferences = """
        SELECT message_id, count(*) FROM (
            SELECT message_id FROM queued UNION ALL SELECT message_id FROM inflight
            UNION ALL SELECT message_id FROM wills UNION ALL SELECT message_id FROM retained)
        GROUP BY message_id
        """;
}
