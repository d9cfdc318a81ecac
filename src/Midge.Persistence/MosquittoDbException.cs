namespace Midge.Persistence;

/// <summary>A Mosquitto persistence file (<c>mosquitto.db</c>) that cannot be read: the message names the file, the
/// byte offset where reading stopped and what was wrong there.</summary>
public sealed class MosquittoDbException : Exception
{
    public MosquittoDbException(string path, long offset, string problem)
        : base($"{path}: at byte {offset}: {problem}")
    {
        Path = path;
        Offset = offset;
        Problem = problem;
    }

    public MosquittoDbException(string path, long offset, string problem, Exception inner)
        : base($"{path}: at byte {offset}: {problem}", inner)
    {
        Path = path;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The file that was read.</summary>
    public string Path { get; }

    /// <summary>Where in the file the problem is (from the file's start).</summary>
    public long Offset { get; }

    /// <summary>What was wrong, without the file and offset.</summary>
    public string Problem { get; }
}
