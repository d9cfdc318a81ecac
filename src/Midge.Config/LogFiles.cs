using System.Runtime.InteropServices;

namespace Midge.Config;

/// <summary>
/// Whether the <c>log_dest file</c> can be opened, asked before the broker starts (and by <c>--test-config</c>)
/// without creating or changing anything, and the one-line message when it cannot.
/// </summary>
/// <remarks>
/// Mosquitto 2.0 takes the rest of the line as the path, quotes included (<c>log_dest file "/tmp/x.log"</c> is a
/// file in a directory named <c>"</c>), and so does Midge; the message then says that the quotes are part of the
/// path. What only the real open can tell (sysfs, a full disk, root on a file it may not create) is reported by the
/// broker when it opens the file, in the same words.
/// </remarks>
public static partial class LogFiles
{
    /// <summary>Throws <see cref="ConfigException"/> (with the <c>log_dest file</c> line) when the configured log
    /// file certainly cannot be opened for writing.</summary>
    public static void Check(BrokerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var dest in config.LogDestinations)
        {
            if (dest.Kind != LogDestinationKind.File || dest.Path is not { } path) continue;
            if (Problem(path) is { } reason)
            {
                throw new ConfigException(config.LogFileSource ?? new ConfigSource("command line", 0), CannotOpen(path, reason));
            }
        }
    }

    /// <summary>Why <paramref name="path"/> cannot be opened for appending, or null when nothing says it cannot.</summary>
    public static string? Problem(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return e.Message;
        }
        if (Directory.Exists(full)) return "it is a directory";
        string? dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
        {
            return File.Exists(dir) ? $"{dir} is not a directory" : $"directory {dir} does not exist";
        }
        if (OperatingSystem.IsWindows()) return null;
        // access(2) asks what open(2) would answer for this user, without opening: the file when it is there,
        // else the directory it would be created in.
        bool exists = File.Exists(full);
        string target = exists ? full : dir ?? full;
        if (Access(target, exists ? W_OK : W_OK | X_OK) != 0)
        {
            string error = Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
            return exists ? Lower(error) : $"directory {target}: {Lower(error)}";
        }
        return null;
    }

    /// <summary>The message for a log file that cannot be opened, Mosquitto's words plus the reason.</summary>
    public static string CannotOpen(string path, string reason)
    {
        ArgumentNullException.ThrowIfNull(path);
        string hint = path.Length > 1 && path[0] is '"' or '\''
            ? " (the quotes are part of the path, as in Mosquitto: write the path without them)"
            : "";
        return $"Unable to open log file {path} for writing: {reason}{hint}.";
    }

    /// <summary>The reason in <see cref="CannotOpen"/> for what opening the file threw.</summary>
    public static string Reason(string path, Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error switch
        {
            DirectoryNotFoundException => $"directory {Path.GetDirectoryName(Path.GetFullPath(path))} does not exist",
            UnauthorizedAccessException => "permission denied",
            PathTooLongException => "the path is too long",
            _ => error.Message.TrimEnd('.'),
        };
    }

    private static string Lower(string message) =>
        message.Length > 1 && char.IsUpper(message[0]) && char.IsLower(message[1])
            ? char.ToLowerInvariant(message[0]) + message[1..]
            : message;

    private const int W_OK = 2;
    private const int X_OK = 1;

    [LibraryImport("libc", EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Access(string path, int mode);
}
