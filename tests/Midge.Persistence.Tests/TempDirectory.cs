namespace Midge.Persistence.Tests;

/// <summary>A directory of its own for one test, deleted with everything in it when the test ends.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("midge-store-").FullName;
    }

    public string Path { get; }

    /// <summary>A file name in the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A mount still on it (a test that failed to unmount): leave it for the system's temp cleanup.
        }
    }
}
