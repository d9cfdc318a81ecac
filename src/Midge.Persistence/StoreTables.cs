using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Persistence;

/// <summary>
/// The store's tables (<see cref="StoreSchema"/>) as the writer sees them: applies a batch of changes in one
/// transaction with statements prepared once, and reads everything back. Not thread-safe: one thread at a time (the
/// writer, or a loader holding the store's database lock).
/// <para>It keeps in memory what the changes need to be quick: the row id of each session held (a change to a client
/// id it does not hold is ignored), and for each stored message how many rows point at it and the record it was
/// stored from, so that a message passed for many sessions (the same <see cref="StoredMessage"/> instance) is stored
/// once and deleted with its last reference. A batch that fails is rolled back, and this memory with it: it is counted
/// again from the tables before the next batch.</para>
/// </summary>
internal sealed class StoreTables : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly Dictionary<string, long> _sessions = new(StringComparer.Ordinal);
    private readonly Dictionary<StoredMessage, long> _messageIds = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<long, Held> _held = [];
    private readonly List<long> _released = [];
    /// <summary>The memory counts what the tables hold (after <see cref="Count"/>, or a batch written since).</summary>
    private bool _counted;
    /// <summary>Not counted yet, and these loads have counted into the memory since (<see cref="Loaded"/>): once both
    /// have, the memory counts everything without reading the tables again.</summary>
    private bool _sessionsLoaded, _retainedLoaded;
    private readonly BatchCoalescer _coalescer = new();
    private long _changesCoalesced;

    /// <summary>Changes skipped so far because they cancelled out within their batch.</summary>
    public long ChangesCoalesced => Interlocked.Read(ref _changesCoalesced);

    private readonly Statement _begin, _commit, _rollback;
    private readonly Statement _insertSession, _updateSession, _deleteSession;
    private readonly Statement _setSubscription, _deleteSubscription, _clearSubscriptions;
    private readonly Statement _insertMessage, _deleteMessage;
    private readonly Statement _insertQueued, _deleteQueued, _clearQueued;
    private readonly Statement _insertInflight, _advanceInflight, _deleteInflight, _clearInflight;
    private readonly Statement _insertIncoming, _deleteIncoming, _clearIncoming;
    private readonly Statement _insertWill, _deleteWill;
    private readonly Statement _insertRetained, _deleteRetained;
    private readonly Statement _setTotals;
    private readonly Statement _setBan, _deleteBan;

    public StoreTables(SqliteConnection connection)
    {
        _connection = connection;
        _begin = new(connection, "BEGIN IMMEDIATE");
        _commit = new(connection, "COMMIT");
        _rollback = new(connection, "ROLLBACK");
        _insertSession = new(connection, "INSERT INTO sessions (client_id, expiry_interval, disconnected_at) VALUES ($c, $e, $d) RETURNING id", "$c", "$e", "$d");
        _updateSession = new(connection, "UPDATE sessions SET expiry_interval = $e, disconnected_at = $d WHERE id = $s", "$s", "$e", "$d");
        _deleteSession = new(connection, "DELETE FROM sessions WHERE id = $s", "$s");
        _setSubscription = new(connection, """
            INSERT OR REPLACE INTO subscriptions (session_id, filter, qos, no_local, retain_as_published, retain_handling,
                subscription_id, exclusive, client_filter) VALUES ($s, $f, $q, $n, $r, $h, $i, $x, $cf)
            """, "$s", "$f", "$q", "$n", "$r", "$h", "$i", "$x", "$cf");
        _deleteSubscription = new(connection, "DELETE FROM subscriptions WHERE session_id = $s AND filter = $f", "$s", "$f");
        _clearSubscriptions = new(connection, "DELETE FROM subscriptions WHERE session_id = $s", "$s");
        _insertMessage = new(connection, """
            INSERT INTO messages (topic, payload, qos, retain, properties, origin_client_id, origin_user_name, expires_at)
            VALUES ($t, $p, $q, $r, $pr, $oc, $ou, $x) RETURNING id
            """, "$t", "$p", "$q", "$r", "$pr", "$oc", "$ou", "$x");
        _deleteMessage = new(connection, "DELETE FROM messages WHERE id = $m", "$m");
        _insertQueued = new(connection, """
            INSERT INTO queued (session_id, sequence, message_id, qos, retain, subscription_ids) VALUES ($s, $n, $m, $q, $r, $i)
            """, "$s", "$n", "$m", "$q", "$r", "$i");
        _deleteQueued = new(connection, "DELETE FROM queued WHERE session_id = $s AND sequence = $n RETURNING message_id", "$s", "$n");
        _clearQueued = new(connection, "DELETE FROM queued WHERE session_id = $s RETURNING message_id", "$s");
        _insertInflight = new(connection, """
            INSERT INTO inflight (session_id, packet_id, sequence, message_id, qos, retain, subscription_ids, state)
            VALUES ($s, $p, $n, $m, $q, $r, $i, $st)
            """, "$s", "$p", "$n", "$m", "$q", "$r", "$i", "$st");
        _advanceInflight = new(connection, "UPDATE inflight SET state = $st WHERE session_id = $s AND packet_id = $p", "$s", "$p", "$st");
        _deleteInflight = new(connection, "DELETE FROM inflight WHERE session_id = $s AND packet_id = $p RETURNING message_id", "$s", "$p");
        _clearInflight = new(connection, "DELETE FROM inflight WHERE session_id = $s RETURNING message_id", "$s");
        _insertIncoming = new(connection, "INSERT OR IGNORE INTO incoming_qos2 (session_id, packet_id) VALUES ($s, $p)", "$s", "$p");
        _deleteIncoming = new(connection, "DELETE FROM incoming_qos2 WHERE session_id = $s AND packet_id = $p", "$s", "$p");
        _clearIncoming = new(connection, "DELETE FROM incoming_qos2 WHERE session_id = $s", "$s");
        _insertWill = new(connection, "INSERT INTO wills (session_id, message_id, delay_interval, due_at) VALUES ($s, $m, $d, $at)", "$s", "$m", "$d", "$at");
        _deleteWill = new(connection, "DELETE FROM wills WHERE session_id = $s RETURNING message_id", "$s");
        _insertRetained = new(connection, "INSERT INTO retained (topic, message_id) VALUES ($t, $m)", "$t", "$m");
        _deleteRetained = new(connection, "DELETE FROM retained WHERE topic = $t RETURNING message_id", "$t");
        _setTotals = new(connection, "INSERT OR REPLACE INTO totals VALUES (0, $a, $b, $c, $d, $e, $f, $g, $h, $i, $j)",
            "$a", "$b", "$c", "$d", "$e", "$f", "$g", "$h", "$i", "$j");
        _setBan = new(connection, "INSERT OR REPLACE INTO bans (kind, who, banned_by, reason, banned_at, until) VALUES ($k, $w, $b, $r, $a, $u)",
            "$k", "$w", "$b", "$r", "$a", "$u");
        _deleteBan = new(connection, "DELETE FROM bans WHERE kind = $k AND who = $w", "$k", "$w");
    }

    /// <summary>Applies <paramref name="changes"/> in order in one transaction and commits it, less the changes that
    /// undo each other within the batch (<see cref="BatchCoalescer"/>); on failure rolls it back and throws (nothing of
    /// the batch is written).</summary>
    public void Write(List<Change> changes)
    {
        _begin.Execute();
        try
        {
            if (!_counted) CountUnlessLoaded();
            _coalescer.Mark(changes);
            Interlocked.Add(ref _changesCoalesced, _coalescer.Skipped);
            var span = CollectionsMarshal.AsSpan(changes);
            for (int i = 0; i < span.Length; i++)
            {
                if (!_coalescer.Skips(i)) Apply(span[i]);
            }
            _commit.Execute();
        }
        catch
        {
            _counted = _sessionsLoaded = _retainedLoaded = false;
            Rollback();
            throw;
        }
    }

    /// <summary>Reads every session back (<see cref="StoreLoader.LoadSessions"/>), counting the memory from it.</summary>
    public List<SessionState> LoadSessions()
    {
        StartLoad(_sessionsLoaded);
        var sessions = StoreLoader.LoadSessions(_connection, this);
        _sessionsLoaded = !_counted;
        return sessions;
    }

    /// <summary>Reads every retained message back (<see cref="StoreLoader.LoadRetained"/>), counting the memory from it.</summary>
    public List<StoredMessage> LoadRetained()
    {
        StartLoad(_retainedLoaded);
        var retained = StoreLoader.LoadRetained(_connection, this);
        _retainedLoaded = !_counted;
        return retained;
    }

    /// <summary>A load begins: unless the memory already counts everything, it counts from the loads, from nothing (or
    /// from the other load, when that one came first).</summary>
    private void StartLoad(bool loadedBefore)
    {
        if (_counted) return;
        if (loadedBefore || !(_sessionsLoaded || _retainedLoaded)) Forget();
    }

    /// <summary>A loaded session: its row id, unless the memory already counts it.</summary>
    public void LoadedSession(string clientId, long id)
    {
        if (!_counted) _sessions[clientId] = id;
    }

    /// <summary>
    /// The message of a loaded row (the message's id and columns from <paramref name="at"/> on, as
    /// <see cref="StoreLoader"/> selects them). A message read before (by this load or the other) is given back as the
    /// same instance, so the broker holds one copy; unless the memory already counts everything, the row is one more
    /// reference to it. The instance is not looked up when it is passed again (a million entries more in a map would
    /// cost a large restart a good part of its time): the first time the broker passes a loaded message again (sending
    /// a queued one, say), it is stored once more, and the row read goes with its last reference.
    /// </summary>
    public StoredMessage Loaded(RowReader r, int at)
    {
        if (r.IsNull(at)) throw new FormatException("a row points at a message that is missing");
        long id = r.Int64(at);
        ref var held = ref CollectionsMarshal.GetValueRefOrAddDefault(_held, id, out bool existed);
        if (!_counted) held.References++;
        else if (!existed) held.References = 1; // counted, yet unknown to the memory: cannot be; counted as one
        if (held.Instance is { } instance) return instance;
        instance = StoreLoader.Message(r, at + 1);
        held.Instance = instance;
        return instance;
    }

    /// <summary>Before a batch, when the memory does not count the tables: both loads counted it, and no message is
    /// held that nothing points at (the messages number as many as the memory holds), or it is counted again.</summary>
    private void CountUnlessLoaded()
    {
        if (_sessionsLoaded && _retainedLoaded)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT count(*) FROM messages";
            if ((long)command.ExecuteScalar()! == _held.Count)
            {
                _counted = true;
                _sessionsLoaded = _retainedLoaded = false;
                return;
            }
        }
        Count();
    }

    private void Forget()
    {
        _sessions.Clear();
        _messageIds.Clear();
        _held.Clear();
        _sessionsLoaded = _retainedLoaded = false;
    }

    /// <summary>Counts again what the memory keeps: the sessions held and the references to each message (and
    /// deletes a message nothing points at).</summary>
    public void Count()
    {
        Forget();
        ReadAll("SELECT id, client_id FROM sessions", r => _sessions[r.GetString(1)] = r.GetInt64(0));
        ReadAll(StoreSchema.CountReferences, r => _held[r.GetInt64(0)] = new Held { References = r.GetInt32(1) });
        ReadAll("SELECT id FROM messages", r =>
        {
            if (!_held.ContainsKey(r.GetInt64(0))) _released.Add(r.GetInt64(0));
        });
        foreach (long id in _released) _deleteMessage.Execute(id);
        _released.Clear();
        _counted = true;
    }

    private void Apply(in Change c)
    {
        if (c.Kind == ChangeKind.SessionSaved)
        {
            Save((SessionState)c.Record!);
            return;
        }
        if (c.Kind >= ChangeKind.RetainedSet)
        {
            ApplyBrokerWide(c);
            return;
        }
        if (!_sessions.TryGetValue(c.Key, out long s)) return; // not held (removed meanwhile): ignored
        switch (c.Kind)
        {
            case ChangeKind.SessionRemoved:
                Clear(s);
                _deleteSession.Execute(s);
                _sessions.Remove(c.Key);
                break;
            case ChangeKind.SessionUpdated:
                _updateSession.Execute(s, c.Number, c.Extra == Change.NoTime ? null : c.Extra);
                break;
            case ChangeKind.SubscriptionSet:
                SetSubscription(s, (Subscription)c.Record!);
                break;
            case ChangeKind.SubscriptionRemoved:
                _deleteSubscription.Execute(s, (string)c.Record!);
                break;
            case ChangeKind.MessageQueued:
                Queue(s, (QueuedMessage)c.Record!);
                break;
            case ChangeKind.MessageDequeued:
                Release(_deleteQueued, s, c.Number);
                break;
            case ChangeKind.InflightAdded:
                AddInflight(s, (InflightMessage)c.Record!);
                break;
            case ChangeKind.InflightAdvanced:
                _advanceInflight.Execute(s, c.Number, c.Extra);
                break;
            case ChangeKind.InflightCompleted:
                Release(_deleteInflight, s, c.Number);
                break;
            case ChangeKind.IncomingQoS2Added:
                _insertIncoming.Execute(s, c.Number);
                break;
            case ChangeKind.IncomingQoS2Removed:
                _deleteIncoming.Execute(s, c.Number);
                break;
            case ChangeKind.WillChanged:
                SetWill(s, (StoredWill?)c.Record);
                break;
        }
    }

    private void ApplyBrokerWide(in Change c)
    {
        switch (c.Kind)
        {
            case ChangeKind.RetainedSet:
                Release(_deleteRetained, c.Key);
                _insertRetained.Execute(c.Key, Reference((StoredMessage)c.Record!));
                break;
            case ChangeKind.RetainedRemoved:
                Release(_deleteRetained, c.Key);
                break;
            case ChangeKind.TotalsSaved:
                var t = (StoredTotals)c.Record!;
                _setTotals.Execute(t.MessagesReceived, t.MessagesSent, t.PublishReceived, t.PublishSent, t.PublishDropped,
                    t.BytesReceived, t.BytesSent, t.ConnectsTotal, t.ClientsMaximum, t.ClientsExpired);
                break;
            case ChangeKind.BanSet:
                var ban = (Ban)c.Record!;
                _setBan.Execute(c.Number, c.Key, ban.By, ban.Reason, ban.At.UtcTicks, ban.Until?.UtcTicks);
                break;
            case ChangeKind.BanRemoved:
                _deleteBan.Execute(c.Number, c.Key);
                break;
        }
    }

    private void Save(SessionState state)
    {
        long? disconnectedAt = state.DisconnectedAt?.UtcTicks;
        if (_sessions.TryGetValue(state.ClientId, out long s))
        {
            Clear(s);
            _updateSession.Execute(s, state.ExpiryInterval, disconnectedAt);
        }
        else
        {
            s = _insertSession.Scalar(state.ClientId, state.ExpiryInterval, disconnectedAt);
            _sessions[state.ClientId] = s;
        }
        foreach (var subscription in state.Subscriptions) SetSubscription(s, subscription);
        foreach (var queued in state.Queued) Queue(s, queued);
        foreach (var inflight in state.Inflight) AddInflight(s, inflight);
        foreach (ushort packetId in state.IncomingQoS2) _insertIncoming.Execute(s, packetId);
        SetWill(s, state.Will);
    }

    /// <summary>Deletes everything of session <paramref name="s"/> but its row.</summary>
    private void Clear(long s)
    {
        _clearSubscriptions.Execute(s);
        Release(_clearQueued, s);
        Release(_clearInflight, s);
        _clearIncoming.Execute(s);
        Release(_deleteWill, s);
    }

    private void SetSubscription(long s, Subscription u) =>
        _setSubscription.Execute(s, u.Filter, (int)u.QoS, u.NoLocal, u.RetainAsPublished, (int)u.RetainHandling, u.SubscriptionId,
            u.Exclusive, u.ClientFilter);

    private void Queue(long s, QueuedMessage m)
    {
        Release(_deleteQueued, s, m.Sequence); // one already queued under this number is replaced
        _insertQueued.Execute(s, m.Sequence, Reference(m.Message), (int)m.QoS, m.Retain, Ids(m.SubscriptionIds));
    }

    private void AddInflight(long s, InflightMessage m)
    {
        Release(_deleteInflight, s, m.PacketId); // one already in flight under this id is replaced
        if (m.FromQueue != 0) Release(_deleteQueued, s, m.FromQueue); // moved from the queue: one change
        _insertInflight.Execute(s, m.PacketId, m.Sequence, Reference(m.Message), (int)m.QoS, m.Retain, Ids(m.SubscriptionIds), (int)m.State);
    }

    private void SetWill(long s, StoredWill? will)
    {
        Release(_deleteWill, s);
        if (will is not null) _insertWill.Execute(s, Reference(will.Message), will.DelayInterval, will.DueAt?.UtcTicks);
    }

    /// <summary>The row id of <paramref name="message"/>, stored now unless this instance already is, with one more
    /// reference.</summary>
    private long Reference(StoredMessage message)
    {
        if (_messageIds.TryGetValue(message, out long id))
        {
            CollectionsMarshal.GetValueRefOrNullRef(_held, id).References++;
            return id;
        }
        id = _insertMessage.Scalar(message.Topic, Bytes(message.Payload), (int)message.QoS, message.Retain,
            message.Properties is { } p ? PropertiesCodec.Encode(p) : null, message.OriginClientId, message.OriginUserName,
            message.ExpiresAt?.UtcTicks);
        _messageIds[message] = id;
        _held[id] = new Held { References = 1, Instance = message };
        return id;
    }

    /// <summary>Runs a DELETE that returns the message ids of the rows it deleted, and lets each go: a message whose
    /// last reference that was is deleted.</summary>
    private void Release(Statement delete, params ReadOnlySpan<object?> values)
    {
        delete.Bind(values);
        using (var reader = delete.Reader())
        {
            while (reader.Read()) _released.Add(reader.GetInt64(0));
        }
        foreach (long id in _released)
        {
            ref var held = ref CollectionsMarshal.GetValueRefOrNullRef(_held, id);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref held) || --held.References > 0) continue;
            if (held.Instance is { } instance && _messageIds.TryGetValue(instance, out long mapped) && mapped == id) _messageIds.Remove(instance);
            _held.Remove(id);
            _deleteMessage.Execute(id);
        }
        _released.Clear();
    }

    private void Rollback()
    {
        if (SQLitePCL.raw.sqlite3_get_autocommit(_connection.Handle) != 0) return; // SQLite rolled it back itself
        try
        {
            _rollback.Execute();
        }
        catch (SqliteException)
        {
            // The connection is in a state the next BEGIN reports; the error that matters is the one being thrown.
        }
    }

    private void ReadAll(string sql, Action<SqliteDataReader> row)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        while (reader.Read()) row(reader);
    }

    private static byte[] Bytes(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : memory.ToArray();

    private static byte[]? Ids(uint[]? ids)
    {
        if (ids is null) return null;
        var bytes = new byte[ids.Length * 4];
        for (int i = 0; i < ids.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), ids[i]);
        return bytes;
    }

    public void Dispose()
    {
        foreach (var statement in new[]
        {
            _begin, _commit, _rollback, _insertSession, _updateSession, _deleteSession, _setSubscription, _deleteSubscription,
            _clearSubscriptions, _insertMessage, _deleteMessage, _insertQueued, _deleteQueued, _clearQueued, _insertInflight,
            _advanceInflight, _deleteInflight, _clearInflight, _insertIncoming, _deleteIncoming, _clearIncoming, _insertWill,
            _deleteWill, _insertRetained, _deleteRetained, _setTotals, _setBan, _deleteBan,
        })
        {
            statement.Dispose();
        }
    }

    /// <summary>A stored message's references (rows that point at it) and, when this process stored it, the record it
    /// was stored from.</summary>
    private struct Held
    {
        public int References;
        public StoredMessage? Instance;
    }

    /// <summary>A statement prepared once (on its first run) and run again with new values.</summary>
    private sealed class Statement : IDisposable
    {
        private readonly SqliteCommand _command;

        public Statement(SqliteConnection connection, string sql, params string[] parameters)
        {
            _command = connection.CreateCommand();
            _command.CommandText = sql;
            foreach (string name in parameters) _command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        public void Bind(ReadOnlySpan<object?> values)
        {
            for (int i = 0; i < values.Length; i++)
            {
                _command.Parameters[i].Value = values[i] switch
                {
                    null => DBNull.Value,
                    bool b => b ? 1 : 0,
                    uint u => (long)u,
                    ushort u => (long)u,
                    var v => v,
                };
            }
        }

        public void Execute(params ReadOnlySpan<object?> values)
        {
            Bind(values);
            _command.ExecuteNonQuery();
        }

        public long Scalar(params ReadOnlySpan<object?> values)
        {
            Bind(values);
            return (long)_command.ExecuteScalar()!;
        }

        public SqliteDataReader Reader() => _command.ExecuteReader();

        public void Dispose() => _command.Dispose();
    }
}
