namespace Midge.Persistence;

/// <summary>
/// The persistence file cannot be used, or a write to it failed. The message names the file, says what is wrong and
/// what to do about it (<c>persistence file /var/lib/midge/midge.db: the disk is full; free space on it</c>), so that
/// it can be shown to an administrator as it is.
/// </summary>
public class StoreException : Exception
{
    public StoreException(string filePath, string problem, Exception? innerException = null)
        : base($"persistence file {filePath}: {problem}", innerException)
    {
        FilePath = filePath;
    }

    /// <summary>The persistence file, as a full path.</summary>
    public string FilePath { get; }
}

/// <summary>
/// The persistence file is a Mosquitto database (<c>mosquitto.db</c>), not a Midge store: it has to be converted
/// before Midge can use it (the caller does that and opens the store again).
/// </summary>
public sealed class MosquittoDatabaseException(string filePath)
    : StoreException(filePath, "it is a Mosquitto database (mosquitto.db), not a Midge store; convert it first, or move it away to start empty");
