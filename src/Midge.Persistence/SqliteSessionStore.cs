namespace Midge.Persistence;

/// <summary>Placeholder: the SQLite store (being written).</summary>
internal static class SqliteSessionStore
{
}
