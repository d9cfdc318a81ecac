using System.Diagnostics;

namespace Midge.Persistence.Tests;

/// <summary>
/// A small tmpfs mounted on a directory of its own, for tests of a full disk or a read-only file system: mounting
/// needs root (as CI runs the tests). Unmounted, and the directory deleted, on <see cref="Dispose"/>.
/// </summary>
public sealed class Tmpfs : IDisposable
{
    private readonly TempDirectory _directory = new();

    /// <param name="options">The mount options, e.g. <c>size=512k</c> or <c>ro,size=64k</c>.</param>
    public Tmpfs(string options)
    {
        Run("mount", $"-t tmpfs -o {options} tmpfs {_directory.Path}",
            "mounting a tmpfs failed: these tests need root (CAP_SYS_ADMIN), as in CI");
    }

    public string Path => _directory.Path;

    public string File(string name) => _directory.File(name);

    /// <summary>Fills the file system with <paramref name="name"/> until no byte more fits.</summary>
    public void Fill(string name)
    {
        using var filler = new FileStream(File(name), FileMode.Create, FileAccess.Write, FileShare.None, 1);
        var block = new byte[4096];
        try
        {
            while (true) filler.Write(block);
        }
        catch (IOException)
        {
            // Full. Smaller writes take what is left of a partly used page.
        }
        try
        {
            while (true) filler.Write(block.AsSpan(0, 1));
        }
        catch (IOException)
        {
        }
    }

    public void Dispose()
    {
        try
        {
            Run("umount", Path, "unmounting a tmpfs failed");
        }
        finally
        {
            _directory.Dispose();
        }
    }

    private static void Run(string command, string arguments, string failure)
    {
        using var process = Process.Start(new ProcessStartInfo(command, arguments) { RedirectStandardError = true })!;
        string error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(10_000) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{failure} ({command} {arguments}: {error.Trim()})");
        }
    }
}
