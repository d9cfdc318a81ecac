using Microsoft.Data.Sqlite;
using Midge.Core.Protection;
using Midge.Core.Sessions.Store;
using static Midge.Persistence.Tests.Records;

namespace Midge.Persistence.Tests;

/// <summary>A file the store cannot use is refused when it opens, with a message that names the file and says what
/// to do; a file that is not its own is left as it was.</summary>
public sealed class OpenFailureTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    private string StorePath => _directory.File("store.db");

    private StoreException Refused(string path)
    {
        // Damage inside the tables shows when they are read, as the broker does right after opening.
        var e = Assert.ThrowsAny<StoreException>(() =>
        {
            using var store = SqliteSessionStore.Open(path, new SqliteStoreOptions());
            store.LoadAll();
            store.LoadRetained();
        });
        Assert.StartsWith($"persistence file {path}: ", e.Message);
        Assert.Equal(path, e.FilePath);
        return e;
    }

    [Fact]
    public void MissingDirectory()
    {
        string path = _directory.File("no/such/dir/store.db");
        var e = Refused(path);
        Assert.Contains("does not exist", e.Message);
        Assert.Contains("create it", e.Message);
    }

    [Fact]
    public void RandomBytes_AreNotADatabase()
    {
        var bytes = new byte[8192];
        new Random(42).NextBytes(bytes);
        File.WriteAllBytes(StorePath, bytes);
        var e = Refused(StorePath);
        Assert.Contains("not a SQLite database", e.Message);
        Assert.Contains("move it away", e.Message);
        Assert.Equal(bytes, File.ReadAllBytes(StorePath));
    }

    [Fact]
    public void MosquittoDatabase_IsRecognised()
    {
        File.WriteAllBytes(StorePath, [0x00, 0xB5, 0x00, .. "mosquitto db"u8, 0, 0, 0, 6]);
        var e = Assert.Throws<MosquittoDatabaseException>(() => SqliteSessionStore.Open(StorePath, new SqliteStoreOptions()));
        Assert.Equal(StorePath, e.FilePath);
        Assert.Contains("Mosquitto database", e.Message);
    }

    [Fact]
    public void TruncatedStore_IsDamaged()
    {
        string whole = _directory.File("whole.db");
        using (var store = SqliteSessionStore.Open(whole, new SqliteStoreOptions()))
        {
            for (int i = 0; i < 500; i++)
            {
                store.SessionSaved(Session("client-" + i));
                store.MessageQueued("client-" + i, Queued(1, Msg("t/" + i, 200)));
            }
        }
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(StorePath, bytes[..(bytes.Length / 2)]);
        var e = Refused(StorePath);
        Assert.Contains("damaged", e.Message);
    }

    [Fact]
    public void AnotherApplicationsDatabase_IsLeftAlone()
    {
        Raw(StorePath, "PRAGMA application_id = 1234; CREATE TABLE theirs (x)");
        var before = File.ReadAllBytes(StorePath);
        var e = Refused(StorePath);
        Assert.Contains("another application", e.Message);
        Assert.Equal(before, File.ReadAllBytes(StorePath));
    }

    [Fact]
    public void SqliteDatabase_WithoutAnApplicationId_ButTables_IsAnotherApplications()
    {
        Raw(StorePath, "CREATE TABLE theirs (x)");
        Assert.Contains("another application", Refused(StorePath).Message);
    }

    [Fact]
    public void NewerFormat_AsksForANewerMidge()
    {
        SqliteSessionStore.Open(StorePath, new SqliteStoreOptions()).Dispose();
        Raw(StorePath, "PRAGMA user_version = 99");
        var e = Refused(StorePath);
        Assert.Contains("written by a newer Midge", e.Message);
        Assert.Contains("upgrade Midge or move the file away", e.Message);
    }

    [Fact]
    public void EmptyFile_BecomesANewStore()
    {
        File.WriteAllBytes(StorePath, []);
        using var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        Assert.Empty(store.LoadAll());
        Assert.Equal(0x4D646765, Count(StorePath, "PRAGMA application_id"));
        Assert.Equal(2, Count(StorePath, "PRAGMA user_version"));
        Assert.Equal("wal", Text(StorePath, "PRAGMA journal_mode"));
    }

    [Fact]
    public async Task FormatOne_GetsTheBansTable_AndKeepsItsSessions()
    {
        using (var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions()))
        {
            store.SessionSaved(new SessionState("old") { ExpiryInterval = 60 });
            await store.FlushAsync();
        }
        Raw(StorePath, "DROP TABLE bans; PRAGMA user_version = 1"); // as a Midge before bans were stored left it
        using (var store = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions()))
        {
            Assert.Equal(["old"], store.LoadAll().Select(s => s.ClientId));
            Assert.Empty(store.LoadBans());
            store.BanSet(new Ban(BanKind.Username, "mallory", "http_api", "spam", DateTimeOffset.UnixEpoch, null));
            await store.FlushAsync();
        }
        Assert.Equal(2, Count(StorePath, "PRAGMA user_version"));
        using var reopened = SqliteSessionStore.Open(StorePath, new SqliteStoreOptions());
        Assert.Equal("mallory", Assert.Single(reopened.LoadBans()).Who);
    }

    [Fact]
    public void ReadOnlyFileSystem()
    {
        using var tmpfs = new Tmpfs("ro,size=64k");
        string path = tmpfs.File("store.db");
        var e = Refused(path);
        Assert.Contains("read-only", e.Message);
    }

    private static void Raw(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static string Text(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (string)command.ExecuteScalar()!;
    }

    public void Dispose() => _directory.Dispose();
}
