using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Midge.Persistence;

/// <summary>
/// A query stepped through with SQLite's own calls (SQLitePCLRaw, under Microsoft.Data.Sqlite): one native call per
/// column read, where <see cref="SqliteDataReader"/> makes three or four (it checks the row and the column's type on
/// every read). A restart reads millions of rows from a large store; this halves the time spent outside SQLite.
/// Errors are Microsoft.Data.Sqlite's <see cref="SqliteException"/>, as from the rest of the store. The caller holds
/// the connection (the store's database lock) while the reader is open.
/// </summary>
internal sealed class RowReader : IDisposable
{
    private readonly sqlite3 _database;
    private readonly sqlite3_stmt _statement;

    public RowReader(SqliteConnection connection, string sql)
    {
        _database = connection.Handle!;
        SqliteException.ThrowExceptionForRC(raw.sqlite3_prepare_v2(_database, sql, out _statement), _database);
    }

    /// <summary>Steps to the next row; false after the last.</summary>
    public bool Read()
    {
        int rc = raw.sqlite3_step(_statement);
        if (rc == raw.SQLITE_ROW) return true;
        if (rc == raw.SQLITE_DONE) return false;
        SqliteException.ThrowExceptionForRC(rc, _database);
        return false;
    }

    public long Int64(int column) => raw.sqlite3_column_int64(_statement, column);

    public int Int32(int column) => raw.sqlite3_column_int(_statement, column);

    public bool IsNull(int column) => raw.sqlite3_column_type(_statement, column) == raw.SQLITE_NULL;

    /// <summary>A TEXT column as a string (read as its bytes: its length is SQLite's, not up to a NUL).</summary>
    public string String(int column) => Encoding.UTF8.GetString(raw.sqlite3_column_blob(_statement, column));

    public string? NullableString(int column) => IsNull(column) ? null : String(column);

    public long? NullableInt64(int column) => IsNull(column) ? null : Int64(column);

    public byte[]? Blob(int column) => IsNull(column) ? null : raw.sqlite3_column_blob(_statement, column).ToArray();

    /// <summary>
    /// A message's payload (empty for NULL). Payloads up to <see cref="MaxShared"/> bytes are copied into shared blocks
    /// of <see cref="BlockSize"/> bytes rather than an array each: a restart reads millions of small payloads, and an
    /// array per payload was a large part of the objects the collector marked and moved while the broker started. A
    /// block lives as long as any message in it; what it holds never exceeds the payloads the read restored.
    /// </summary>
    public ReadOnlyMemory<byte> Payload(int column)
    {
        var bytes = raw.sqlite3_column_blob(_statement, column);
        if (bytes.IsEmpty) return ReadOnlyMemory<byte>.Empty;
        if (bytes.Length > MaxShared) return bytes.ToArray();
        if (_block is null || _block.Length - _used < bytes.Length)
        {
            _block = GC.AllocateUninitializedArray<byte>(BlockSize);
            _used = 0;
        }
        bytes.CopyTo(_block.AsSpan(_used));
        var payload = new ReadOnlyMemory<byte>(_block, _used, bytes.Length);
        _used += bytes.Length;
        return payload;
    }

    /// <summary>The size of the blocks <see cref="Payload"/> shares (below the large object heap's threshold).</summary>
    private const int BlockSize = 64 * 1024;

    /// <summary>The largest payload <see cref="Payload"/> puts in a shared block; larger ones get an array each.</summary>
    private const int MaxShared = 1024;

    private byte[]? _block;
    private int _used;

    public void Dispose() => _statement.Dispose();

    /// <summary>Runs <paramref name="sql"/> and hands each row to <paramref name="row"/>.</summary>
    public static void ForEach(SqliteConnection connection, string sql, Action<RowReader> row)
    {
        using var reader = new RowReader(connection, sql);
        while (reader.Read()) row(reader);
    }
}
