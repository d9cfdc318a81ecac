using Microsoft.Data.Sqlite;
using static SQLitePCL.raw;

namespace Midge.Persistence;

/// <summary>
/// Opens the persistence file and makes sure it is a Midge store this code can use, or says in a
/// <see cref="StoreException"/> what is wrong and what to do: a missing or read-only directory, a file that is not a
/// SQLite database or is damaged, a Mosquitto database, another application's database, a newer format.
/// </summary>
internal static class StoreFile
{
    /// <summary>How Mosquitto's persistence file starts: 00 B5 00, then "mosquitto db".</summary>
    private static readonly byte[] MosquittoMagic = [0x00, 0xB5, 0x00, .. "mosquitto db"u8];

    private static ReadOnlySpan<byte> SqliteMagic => "SQLite format 3\0"u8;

    private const string MoveAway = "move it away to start with an empty store, or put back a good copy";

    /// <summary>An open connection to a Midge store at <paramref name="path"/> (a full path), made when there was
    /// none, in WAL mode and writable. Damage shows when the tables are read (<see cref="SqliteSessionStore.LoadAll"/>).</summary>
    public static SqliteConnection Open(string path, StoreMode mode)
    {
        string directory = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            throw new StoreException(path, $"the directory {directory} does not exist; create it, or set persistence_location to one that does");
        }
        CheckHeader(path);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        try
        {
            connection.Open();
            Prepare(connection, path, mode);
            return connection;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw Explain(path, e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>A <see cref="StoreException"/> saying what <paramref name="e"/> means for the file.</summary>
    public static StoreException Explain(string path, SqliteException e) => new(path, e.SqliteErrorCode switch
    {
        SQLITE_NOTADB or SQLITE_CORRUPT => $"it is damaged or not a SQLite database (SQLite: {e.Message}); {MoveAway}",
        SQLITE_FULL => $"the disk is full (SQLite: {e.Message}); free space on it",
        SQLITE_BUSY or SQLITE_LOCKED => $"another process is using it (SQLite: {e.Message}); stop it, or use another file",
        SQLITE_CANTOPEN or SQLITE_READONLY or SQLITE_PERM or SQLITE_AUTH => NotWritable(path, e.Message),
        SQLITE_IOERR => $"an I/O error (SQLite: {e.Message}); check the disk",
        _ => $"SQLite error {e.SqliteErrorCode} ({e.Message}); check the file and its directory",
    }, e);

    /// <summary>Refuses, before SQLite reads it, a file that is plainly not a SQLite database: a Mosquitto database,
    /// or anything else. An empty file becomes a new store.</summary>
    private static void CheckHeader(string path)
    {
        Span<byte> header = stackalloc byte[SqliteMagic.Length];
        int read;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            read = file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        }
        catch (FileNotFoundException)
        {
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StoreException(path, $"it cannot be read ({e.Message}); give the broker's user access to it", e);
        }
        header = header[..read];
        if (header.StartsWith(MosquittoMagic)) throw new MosquittoDatabaseException(path);
        if (read > 0 && !header.SequenceEqual(SqliteMagic))
        {
            throw new StoreException(path, $"it is not a SQLite database (nor a Mosquitto one); {MoveAway}");
        }
    }

    /// <summary>Checks what the file is, makes the tables of a new store, and sets the connection up.</summary>
    private static void Prepare(SqliteConnection connection, string path, StoreMode mode)
    {
        long applicationId = Scalar(connection, "PRAGMA application_id");
        long version = Scalar(connection, "PRAGMA user_version");
        bool empty = Scalar(connection, "SELECT count(*) FROM sqlite_schema") == 0;
        if (applicationId != StoreSchema.ApplicationId && !(applicationId == 0 && empty))
        {
            throw new StoreException(path,
                $"it is a SQLite database of another application (application_id 0x{applicationId:X8}, not Midge's 0x{StoreSchema.ApplicationId:X8}); move it away, or use another file");
        }
        if (version > StoreSchema.FormatVersion)
        {
            throw new StoreException(path,
                $"it was written by a newer Midge (format {version}; this one reads format {StoreSchema.FormatVersion}); upgrade Midge or move the file away");
        }
        if (Text(connection, "PRAGMA journal_mode = WAL") != "wal")
        {
            throw new StoreException(path, NotWritable(path, "journal_mode WAL refused"));
        }
        Execute(connection, mode == StoreMode.Durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        // No full check here (PRAGMA quick_check reads the whole file: seconds for a large store, before the broker
        // serves): loading reads every table the broker needs, and a damaged page there fails the load as "damaged".
        // A write, in a new store the whole schema: a read-only file or file system shows here, not on the first batch.
        Execute(connection, "BEGIN IMMEDIATE");
        // An older format gets what it lacks (format 1: the bans table).
        Execute(connection, empty ? StoreSchema.Create : $"{StoreSchema.Bans} PRAGMA user_version = {StoreSchema.FormatVersion}");
        Execute(connection, "COMMIT");
    }

    /// <summary>Why SQLite could not open or write the file, from a file made next to it.</summary>
    private static string NotWritable(string path, string sqliteMessage)
    {
        string directory = System.IO.Path.GetDirectoryName(path)!;
        string probe = path + ".probe";
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (IOException io) when (io.HResult == ReadOnlyFileSystem)
        {
            return $"the file system of {directory} is read-only; mount it read-write, or set persistence_location to a writable directory";
        }
        catch (Exception io) when (io is IOException or UnauthorizedAccessException)
        {
            return $"the directory {directory} is not writable ({io.Message}); give the broker's user write access to it, or set persistence_location elsewhere";
        }
        return $"SQLite cannot open or write it (SQLite: {sqliteMessage}); give the broker's user read and write access to it";
    }

    /// <summary>EROFS, the errno .NET gives as the HResult of an <see cref="IOException"/> on Unix.</summary>
    private const int ReadOnlyFileSystem = 30;

    private static long Scalar(SqliteConnection connection, string sql) => Convert.ToInt64(Run(connection, sql), System.Globalization.CultureInfo.InvariantCulture);

    private static string Text(SqliteConnection connection, string sql) => Convert.ToString(Run(connection, sql), System.Globalization.CultureInfo.InvariantCulture) ?? "";

    private static object? Run(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
