using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Midge.Config;
using Midge.Core;

namespace Midge.Persistence;

/// <summary>
/// The store that <c>persistence true</c> asks for: <see cref="SqliteSessionStore"/> in the file that
/// <c>persistence_location</c> and <c>persistence_file</c> name, written as <c>persistence_mode</c>,
/// <c>autosave_interval</c> and <c>autosave_on_changes</c> say. A Mosquitto database found there (Mosquitto's default
/// file name is Midge's) is taken over on the first start and left untouched: its sessions and retained messages are
/// imported into Midge's store beside it, <c>mosquitto.db.midge</c>, which is the store from then on.
/// </summary>
public sealed class PersistentStore : IDisposable
{
    /// <summary>The suffix of Midge's store beside a Mosquitto database it took over.</summary>
    public const string TakeOverSuffix = ".midge";

    private IReadOnlyList<IncomingMessage> _takenOverIncoming;
    private readonly FileStream _lock;

    private PersistentStore(SqliteSessionStore store, IReadOnlyList<IncomingMessage> takenOverIncoming, FileStream fileLock)
    {
        Store = store;
        _takenOverIncoming = takenOverIncoming;
        _lock = fileLock;
    }

    /// <summary>The store, for the broker (<see cref="Broker(BrokerConfig, ILoggerFactory?, TimeProvider?, Core.Sessions.Store.ISessionStore?)"/>).</summary>
    public SqliteSessionStore Store { get; }

    /// <summary>Opens (or creates) the persistence file of <paramref name="config"/>. Throws
    /// <see cref="StoreException"/>, naming the file and what to do, when it cannot be used.</summary>
    public static PersistentStore Open(BrokerConfig config, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var logger = (loggers ?? NullLoggerFactory.Instance).CreateLogger("Midge.Persistence");
        string path = Path.GetFullPath(config.PersistencePath);
        var options = Options(config);
        var fileLock = Lock(path);
        try
        {
            string takenOver = path + TakeOverSuffix;
            if (File.Exists(takenOver)) return new PersistentStore(SqliteSessionStore.Open(takenOver, options, logger), [], fileLock);
            try
            {
                return new PersistentStore(SqliteSessionStore.Open(path, options, logger), [], fileLock);
            }
            catch (MosquittoDatabaseException)
            {
                var incoming = TakeOver(path, takenOver, logger);
                return new PersistentStore(SqliteSessionStore.Open(takenOver, options, logger), incoming, fileLock);
            }
        }
        catch
        {
            fileLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Takes <c>path.lock</c> for as long as the store is open: two brokers writing one store would each undo the
    /// other's changes, so the second is refused (an advisory lock, released by the kernel when the process dies,
    /// kill -9 included).
    /// </summary>
    private static FileStream Lock(string path)
    {
        string lockPath = path + ".lock";
        try
        {
            return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (DirectoryNotFoundException)
        {
            throw new StoreException(path, $"the directory {Path.GetDirectoryName(path)} does not exist; create it or set persistence_location");
        }
        catch (IOException ex)
        {
            throw new StoreException(path, $"another broker has it open ({lockPath} is locked: {ex.Message}); stop that broker, or give this one its own persistence_location", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new StoreException(path, $"{lockPath} cannot be written ({ex.Message}); give the broker's user write access to {Path.GetDirectoryName(path)}", ex);
        }
    }

    /// <summary>The store's options from the configuration.</summary>
    public static SqliteStoreOptions Options(BrokerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        bool snapshot = config.PersistenceMode == PersistenceMode.Snapshot;
        return new SqliteStoreOptions
        {
            Mode = snapshot ? StoreMode.Snapshot : StoreMode.Durable,
            AutosaveInterval = config.AutosaveOnChanges ? TimeSpan.Zero : TimeSpan.FromSeconds(config.AutosaveInterval),
            AutosaveOnChanges = config.AutosaveOnChanges ? config.AutosaveInterval : 0,
        };
    }

    /// <summary>
    /// Routes the client QoS 2 messages that Mosquitto had received and not yet routed when it stopped (it routes at
    /// PUBREL): once, right after the broker restored the converted sessions and before any client connects.
    /// </summary>
    public void RouteTakenOver(Broker broker)
    {
        ArgumentNullException.ThrowIfNull(broker);
        foreach (var m in _takenOverIncoming) broker.RouteTakenOverQoS2(m.ClientId, m.PacketId, m.Message);
        _takenOverIncoming = [];
    }

    /// <summary>Writes what is pending, closes the file and lets go of its lock.</summary>
    public void Dispose()
    {
        Store.Dispose();
        _lock.Dispose();
    }

    /// <summary>
    /// Imports Mosquitto's database at <paramref name="path"/> into a new Midge store at <paramref name="store"/>, and
    /// leaves Mosquitto's file as it is: the store is written complete under a temporary name first and then takes its
    /// name, so a failure on the way leaves no half store that a later start would take for a finished import.
    /// </summary>
    private static IReadOnlyList<IncomingMessage> TakeOver(string path, string store, ILogger logger)
    {
        MosquittoDbContents contents;
        try
        {
            contents = MosquittoDb.Read(path, DateTimeOffset.UtcNow);
        }
        catch (MosquittoDbException ex)
        {
            throw new StoreException(path, $"it is a Mosquitto database that cannot be read ({ex.Problem} at byte {ex.Offset}); " +
                "move it away to start without its sessions and retained messages", ex);
        }
        foreach (var warning in contents.Warnings) TakeOverLog.TakeOverWarning(logger, path, warning);

        string converting = store + ".converting";
        DeleteStore(converting);
        using (var target = SqliteSessionStore.Open(converting, new SqliteStoreOptions(), logger))
        {
            foreach (var session in contents.Sessions) target.SessionSaved(session);
            foreach (var retained in contents.Retained) target.RetainedSet(retained);
            target.FlushAsync().AsTask().GetAwaiter().GetResult();
        }
        try
        {
            File.Move(converting, store);
            DeleteStore(converting); // a -wal or -shm left behind, if any
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StoreException(store, $"the store imported from Mosquitto's {path} could not take its name ({ex.Message})", ex);
        }
        TakeOverLog.TookOver(logger, path, contents.Version, contents.Sessions.Count, contents.Retained.Count, contents.IncomingQoS2.Count, store);
        return contents.IncomingQoS2;
    }

    private static void DeleteStore(string path)
    {
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            if (File.Exists(file)) File.Delete(file);
        }
    }
}

/// <summary>What a takeover of Mosquitto's database logs (event ids 6101 on).</summary>
internal static partial class TakeOverLog
{
    [LoggerMessage(6101, LogLevel.Warning, "Taking over Mosquitto's database {Path}: {Warning}")]
    public static partial void TakeOverWarning(ILogger logger, string path, string warning);

    [LoggerMessage(6102, LogLevel.Information, "Took over Mosquitto's database {Path} (format {Version}): {Sessions} sessions, " +
        "{Retained} retained messages, {Incoming} QoS 2 messages awaiting PUBREL, into {Store}; Mosquitto's file is left as it was.")]
    public static partial void TookOver(ILogger logger, string path, int version, int sessions, int retained, int incoming, string store);
}
