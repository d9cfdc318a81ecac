using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;

namespace Midge.Persistence;

/// <summary>
/// The durable <see cref="ISessionStore"/>: sessions, retained messages and totals in one SQLite file (WAL mode),
/// tables in <see cref="StoreSchema"/>. The recording methods append the change to the pending batch under a short
/// lock and return; one writer thread takes the whole pending batch, applies it in one transaction and commits
/// (group commit), while the changes recorded meanwhile form the next batch. <see cref="FlushAsync"/> waits for the
/// batch that holds everything recorded before it.
/// <para><b>Modes</b> (<see cref="SqliteStoreOptions"/>): durable, each batch written at once and synced
/// (<c>synchronous=FULL</c>); or snapshot, Mosquitto's behaviour, a batch written only every
/// <see cref="SqliteStoreOptions.AutosaveInterval"/> (or after <see cref="SqliteStoreOptions.AutosaveOnChanges"/>
/// changes) and on <see cref="Dispose"/>, with <c>synchronous=NORMAL</c>. A flush means durable in both; in snapshot
/// mode it waits for the next save.</para>
/// <para><b>Failures.</b> <see cref="Open"/> throws a <see cref="StoreException"/> that names the file, says what is
/// wrong and what to do (<see cref="MosquittoDatabaseException"/> for a Mosquitto database). A batch that fails
/// (a full disk, an I/O error) is rolled back, the error logged once, the flushes waiting on it fail with a
/// <see cref="StoreException"/>, and it is written again, with the changes recorded since, at most once a second,
/// until it succeeds (logged too). No change is lost or reordered meanwhile, up to
/// <see cref="SqliteStoreOptions.MaxPendingChanges"/>: reaching it while failing stops the store taking changes
/// (see there).</para>
/// </summary>
public sealed class SqliteSessionStore : ISessionStore, IDisposable
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly SqliteConnection _connection;
    private readonly StoreTables _tables;
    private readonly SqliteStoreOptions _options;
    private readonly ILogger _logger;
    private readonly Thread _writer;
    /// <summary>Guards the batches and the writer's state; the writer waits on it.</summary>
    private readonly object _gate = new();

    /// <summary>Open groups hold it shared; the writer takes it exclusively to cut a batch, so no batch ends inside a
    /// group (<see cref="BeginGroup"/>). Only a group's thread (holding no other lock of the store) and the writer (before
    /// <see cref="_gate"/>) take it, so it cannot deadlock with recording, which never takes it.</summary>
    private readonly ReaderWriterLockSlim _groups = new(LockRecursionPolicy.SupportsRecursion);
    /// <summary>Held by whoever uses the connection: the writer for a batch, a load, <see cref="Dispose"/>.</summary>
    private readonly object _database = new();

    private Batch _pending = new(), _spare = new();
    private Batch? _writing;
    private bool _writerWaiting, _failing, _closing;
    /// <summary>Set when the store takes no more changes (bound reached while failing, or closed with changes it
    /// could not write): every later flush fails with it.</summary>
    private StoreException? _refusal;
    private long _retryAt, _autosaveAt;
    private long _commitCount, _changesWritten;

    private SqliteSessionStore(string path, SqliteStoreOptions options, SqliteConnection connection, StoreTables tables, ILogger? logger)
    {
        Path = path;
        _options = options;
        _connection = connection;
        _tables = tables;
        _logger = logger ?? NullLogger.Instance;
        _autosaveAt = Environment.TickCount64 + (long)options.AutosaveInterval.TotalMilliseconds;
        _writer = new Thread(RunWriter) { IsBackground = true, Name = "Midge store writer" };
        _writer.Start();
    }

    /// <summary>Opens the store in the file at <paramref name="path"/>, made when there is none.</summary>
    /// <exception cref="StoreException">The file cannot be used: its directory is missing or not writable, it is
    /// damaged, not a SQLite database, another application's, or of a newer format (the message says which and what
    /// to do).</exception>
    /// <exception cref="MosquittoDatabaseException">It is a Mosquitto database, to be converted first.</exception>
    public static SqliteSessionStore Open(string path, SqliteStoreOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        string full = System.IO.Path.GetFullPath(path);
        var connection = StoreFile.Open(full, options.Mode);
        // The messages' reference counts are counted by the first batch, not here: the start does not wait for them.
        return new SqliteSessionStore(full, options, connection, new StoreTables(connection), logger);
    }

    /// <summary>The persistence file, as a full path.</summary>
    public string Path { get; }

    /// <summary>How many batches were committed since the store was opened.</summary>
    public long CommitCount => Interlocked.Read(ref _commitCount);

    /// <summary>How many changes those batches held.</summary>
    public long ChangesWritten => Interlocked.Read(ref _changesWritten);

    /// <summary>How many of the changes written cancelled out within their batch and were skipped
    /// (<see cref="BatchCoalescer"/>).</summary>
    public long ChangesCoalesced => _tables.ChangesCoalesced;

    public IReadOnlyList<SessionState> LoadAll() => Load(_ => _tables.LoadSessions());

    public IReadOnlyList<StoredMessage> LoadRetained() => Load(_ => _tables.LoadRetained());

    public StoredTotals? LoadTotals() => Load(StoreLoader.LoadTotals);

    public void SessionSaved(SessionState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Record(new Change(ChangeKind.SessionSaved, state.ClientId, state));
    }

    public void SessionRemoved(string clientId) => Record(new Change(ChangeKind.SessionRemoved, clientId));

    public void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt) =>
        Record(new Change(ChangeKind.SessionUpdated, clientId, null, expiryInterval, disconnectedAt?.UtcTicks ?? Change.NoTime));

    public void SubscriptionSet(string clientId, Subscription subscription) =>
        Record(new Change(ChangeKind.SubscriptionSet, clientId, subscription));

    public void SubscriptionRemoved(string clientId, string filter) => Record(new Change(ChangeKind.SubscriptionRemoved, clientId, filter));

    public void MessageQueued(string clientId, QueuedMessage message) => Record(new Change(ChangeKind.MessageQueued, clientId, message));

    public void MessageDequeued(string clientId, long sequence) => Record(new Change(ChangeKind.MessageDequeued, clientId, null, sequence));

    public void InflightAdded(string clientId, InflightMessage message) => Record(new Change(ChangeKind.InflightAdded, clientId, message));

    public void InflightAdvanced(string clientId, ushort packetId, InflightState state) =>
        Record(new Change(ChangeKind.InflightAdvanced, clientId, null, packetId, (long)state));

    public void InflightCompleted(string clientId, ushort packetId) => Record(new Change(ChangeKind.InflightCompleted, clientId, null, packetId));

    public void IncomingQoS2Added(string clientId, ushort packetId) => Record(new Change(ChangeKind.IncomingQoS2Added, clientId, null, packetId));

    public void IncomingQoS2Removed(string clientId, ushort packetId) =>
        Record(new Change(ChangeKind.IncomingQoS2Removed, clientId, null, packetId));

    public void WillChanged(string clientId, StoredWill? will) => Record(new Change(ChangeKind.WillChanged, clientId, will));

    public void RetainedSet(StoredMessage message) => Record(new Change(ChangeKind.RetainedSet, message.Topic, message));

    public void RetainedRemoved(string topic) => Record(new Change(ChangeKind.RetainedRemoved, topic));

    public void TotalsSaved(StoredTotals totals) => Record(new Change(ChangeKind.TotalsSaved, "", totals));

    public IReadOnlyList<Ban> LoadBans() => Load(StoreLoader.LoadBans);

    public void BanSet(Ban ban)
    {
        ArgumentNullException.ThrowIfNull(ban);
        Record(new Change(ChangeKind.BanSet, ban.Who, ban, (long)ban.As));
    }

    public void BanRemoved(BanKind kind, string who) => Record(new Change(ChangeKind.BanRemoved, who, null, (long)kind));

    public void BeginGroup() => _groups.EnterReadLock();

    public void EndGroup() => _groups.ExitReadLock();

    /// <summary>Completes when every change recorded before the call is committed: at once when none is pending or
    /// being written; otherwise with the batch that holds the last of them, failing with a
    /// <see cref="StoreException"/> when that batch fails (it is retried; a later flush waits for the retry). In
    /// snapshot mode that is the next save, which may be long (or only <see cref="Dispose"/>). Fails at once once
    /// the store takes no more changes (<see cref="SqliteStoreOptions.MaxPendingChanges"/>).</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Task task;
        lock (_gate)
        {
            if (_refusal is not null) return ValueTask.FromException(_refusal);
            var batch = _pending.Changes.Count > 0 ? _pending : _writing;
            if (batch is null) return ValueTask.CompletedTask;
            task = (batch.Done ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        return new ValueTask(cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task);
    }

    /// <summary>Writes everything pending, checkpoints the WAL into the database file, closes it and stops the
    /// writer. Does not throw when the disk fails: what could not be written is logged as lost. Changes recorded
    /// afterwards are ignored.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_closing) return;
            _closing = true;
            Monitor.PulseAll(_gate);
        }
        _writer.Join();
        lock (_database)
        {
            try
            {
                StoreFile.Execute(_connection, "PRAGMA wal_checkpoint(TRUNCATE)");
            }
            catch (SqliteException e)
            {
                StoreLog.CloseFailed(_logger, Path, e.Message);
            }
            finally
            {
                _tables.Dispose();
                _connection.Dispose();
            }
        }
    }

    private T Load<T>(Func<SqliteConnection, T> load)
    {
        lock (_database)
        {
            try
            {
                return load(_connection);
            }
            catch (SqliteException e)
            {
                throw StoreFile.Explain(Path, e);
            }
            catch (Exception e) when (e is FormatException or InvalidCastException or KeyNotFoundException or IndexOutOfRangeException
                or ArgumentOutOfRangeException)
            {
                throw new StoreException(Path, $"it holds rows this Midge cannot read ({e.Message}); move it away, or put back a good copy", e);
            }
        }
    }

    /// <summary>Appends a change to the pending batch, waking the writer when it is due; nothing else.</summary>
    private void Record(in Change change)
    {
        int stoppedAt = 0;
        lock (_gate)
        {
            if (_refusal is not null || _closing) return;
            var changes = _pending.Changes;
            if (_failing && changes.Count >= _options.MaxPendingChanges)
            {
                stoppedAt = changes.Count;
                _refusal = new StoreException(Path, $"{stoppedAt} changes could not be written and the store took no more; "
                    + "restart the broker once the disk works again");
            }
            else
            {
                changes.Add(change);
                // The first change wakes a writer that waited for one (it then waits for its autosave time, if any).
                if (_writerWaiting && (changes.Count == 1 || IsDue(changes.Count)))
                {
                    _writerWaiting = false;
                    Monitor.Pulse(_gate);
                }
            }
        }
        if (stoppedAt > 0) StoreLog.Stopped(_logger, Path, stoppedAt);
    }

    /// <summary>Whether <paramref name="count"/> pending changes are to be written without waiting for a timer.</summary>
    private bool IsDue(int count) =>
        _options.Mode == StoreMode.Durable || count >= _options.MaxPendingChanges
        || (_options.AutosaveOnChanges > 0 && count >= _options.AutosaveOnChanges);

    private void RunWriter()
    {
        while (TakeBatch() is { } batch)
        {
            var error = Write(batch.Changes);
            if (Finish(batch, error) && _closing) return;
        }
    }

    /// <summary>Waits until the pending batch is to be written and makes it the one being written; null when the
    /// store is closing and nothing is pending.</summary>
    private Batch? TakeBatch()
    {
        // Waiting for the batch to be due happens outside the group lock; cutting it, inside (no group open).
        lock (_gate)
        {
            int wait;
            while ((wait = Delay()) != 0)
            {
                if (_closing && _pending.Changes.Count == 0) return null;
                _writerWaiting = true;
                Monitor.Wait(_gate, wait);
                _writerWaiting = false;
            }
        }
        _groups.EnterWriteLock();
        try
        {
            return CutBatch();
        }
        finally
        {
            _groups.ExitWriteLock();
        }
    }

    /// <summary>Makes the pending batch the one being written (or, when it became empty meanwhile at closing, ends).</summary>
    private Batch? CutBatch()
    {
        lock (_gate)
        {
            // Due when the wait ended, and still: pending changes only grow, and time only passes.
            if (_pending.Changes.Count == 0) return null;
            var batch = _pending;
            (_pending, _spare) = (_spare, batch);
            _writing = batch;
            return batch;
        }
    }

    /// <summary>How long to wait (ms) before writing the pending batch: 0 for now, <see cref="Timeout.Infinite"/>
    /// until woken.</summary>
    private int Delay()
    {
        int count = _pending.Changes.Count;
        if (count == 0) return Timeout.Infinite;
        if (_closing) return 0;
        long now = Environment.TickCount64;
        if (_failing) return Remaining(_retryAt, now);
        if (IsDue(count)) return 0;
        return _options.AutosaveOnChanges > 0 || _options.AutosaveInterval <= TimeSpan.Zero ? Timeout.Infinite : Remaining(_autosaveAt, now);
    }

    private static int Remaining(long at, long now) => (int)Math.Clamp(at - now, 0, int.MaxValue);

    private Exception? Write(List<Change> changes)
    {
        try
        {
            lock (_database) _tables.Write(changes);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    /// <summary>Ends the write of <paramref name="batch"/>: counts it and completes its flushes, or puts its changes
    /// back in front of the pending ones and fails its flushes (and, when closing, those of the pending batch: no
    /// flush can succeed any more). Returns whether it failed.</summary>
    private bool Finish(Batch batch, Exception? error)
    {
        int count = batch.Changes.Count, unwritten = 0;
        var failure = error is null ? null : Failure(error);
        bool wasFailing;
        TaskCompletionSource? done, lost = null;
        lock (_gate)
        {
            _writing = null;
            done = batch.Done;
            batch.Done = null;
            wasFailing = _failing;
            _failing = failure is not null;
            long now = Environment.TickCount64;
            _autosaveAt = now + (long)_options.AutosaveInterval.TotalMilliseconds;
            if (failure is null)
            {
                _commitCount++;
                _changesWritten += count;
            }
            else
            {
                _retryAt = now + (long)RetryDelay.TotalMilliseconds;
                batch.Changes.AddRange(_pending.Changes);
                (_pending.Changes, batch.Changes) = (batch.Changes, _pending.Changes);
                unwritten = _pending.Changes.Count;
                if (_closing)
                {
                    _refusal = failure;
                    (lost, _pending.Done) = (_pending.Done, null);
                }
            }
            batch.Changes.Clear();
        }
        if (failure is null)
        {
            if (wasFailing) StoreLog.Recovered(_logger, Path, count);
            done?.SetResult();
            return false;
        }
        Report(failure, count, unwritten, wasFailing);
        done?.SetException(failure);
        lost?.SetException(failure);
        return true;
    }

    private void Report(StoreException failure, int count, int unwritten, bool wasFailing)
    {
        string problem = failure.InnerException?.Message ?? failure.Message;
        if (_closing) StoreLog.LostOnClose(_logger, Path, unwritten, problem);
        else if (wasFailing) StoreLog.WriteFailedAgain(_logger, Path, count, problem);
        else StoreLog.WriteFailed(_logger, Path, count, problem);
    }

    private StoreException Failure(Exception error) => error switch
    {
        SqliteException e => StoreFile.Explain(Path, e),
        _ => new StoreException(Path, $"writing to it failed ({error.Message}); check the file and the broker's log", error),
    };

    /// <summary>Changes waiting to be written together, and the task of the flushes that wait for them (made when
    /// the first flush asks).</summary>
    private sealed class Batch
    {
        public List<Change> Changes = [];
        public TaskCompletionSource? Done;
    }
}
