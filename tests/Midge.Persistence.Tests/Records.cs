using System.Text;
using Microsoft.Data.Sqlite;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Persistence.Tests;

/// <summary>Records and raw reads shared by the store's tests.</summary>
internal static class Records
{
    public static StoredMessage Msg(string topic, string payload) => new(topic, Encoding.UTF8.GetBytes(payload), QoS.AtLeastOnce, Retain: false);

    public static StoredMessage Msg(string topic, int size) => new(topic, new byte[size], QoS.AtLeastOnce, Retain: false);

    public static SessionState Session(string clientId) => new(clientId) { ExpiryInterval = 3600 };

    public static QueuedMessage Queued(long sequence, StoredMessage message) => new(sequence, message, QoS.AtLeastOnce, false, null);

    public static string Text(QueuedMessage queued) => Encoding.UTF8.GetString(queued.Message.Payload.Span);

    /// <summary>A number read from the file by a connection of its own, as another process would read it: what
    /// is committed, nothing else.</summary>
    public static long Count(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadWrite;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>Waits up to 10 s for <paramref name="condition"/>.</summary>
    public static bool Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(10);
        }
        return true;
    }
}
