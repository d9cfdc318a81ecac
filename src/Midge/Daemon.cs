using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Midge;

/// <summary>
/// <c>-d</c>: the broker runs as a detached copy of this process, started the way this one was (the native or apphost
/// executable, or <c>dotnet midge.dll</c>). The starter waits until the copy serves (it has bound its listeners and
/// written its pid file) and exits 0, silently as Mosquitto does; when the copy fails, the starter prints what it said
/// and exits non-zero. The copy gets a session of its own and, once serving, points stdin, stdout and stderr at
/// /dev/null (log to a file or syslog to see its log).
/// </summary>
internal static partial class Daemon
{
    /// <summary>Set in the copy's environment: it is the daemon, not a starter.</summary>
    internal const string ChildVariable = "MIDGE_DAEMON_CHILD";

    /// <summary>How long the starter waits for the copy to serve before it stops it and fails.</summary>
    internal static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    public static bool IsChild => Environment.GetEnvironmentVariable(ChildVariable) is not null;

    /// <summary>What the copy writes to its stdout once it serves; nothing else ends the starter's wait with 0.</summary>
    private static string ReadyLine(int pid) => $"midge: serving in the background as process {pid}";

    /// <summary>
    /// The program and arguments that start this program again with <paramref name="args"/>. From
    /// <paramref name="commandLine"/> (/proc/self/cmdline) when it ends with <paramref name="args"/>: everything
    /// the program was started with, a host's own options included. Otherwise the executable, plus the entry
    /// assembly when the executable is the <c>dotnet</c> host (<see cref="Environment.GetCommandLineArgs"/> names
    /// midge.dll first under the apphost too, where it must not be passed on).
    /// </summary>
    internal static (string FileName, List<string> Arguments) ChildCommand(string processPath,
        IReadOnlyList<string>? commandLine, string? entryAssembly, IReadOnlyList<string> args)
    {
        if (commandLine is not null && commandLine.Count > args.Count
            && commandLine.Skip(commandLine.Count - args.Count).SequenceEqual(args, StringComparer.Ordinal))
        {
            return (processPath, [.. commandLine.Skip(1)]);
        }
        var arguments = new List<string>();
        if (IsDotnetHost(processPath) && entryAssembly is not null
            && entryAssembly.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            arguments.Add(entryAssembly);
        }
        arguments.AddRange(args);
        return (processPath, arguments);
    }

    private static bool IsDotnetHost(string processPath) =>
        string.Equals(Path.GetFileNameWithoutExtension(processPath), "dotnet", StringComparison.OrdinalIgnoreCase);

    /// <summary>This process's arguments as the kernel has them, or null off Linux.</summary>
    private static List<string>? ReadCommandLine()
    {
        try
        {
            byte[] raw = File.ReadAllBytes("/proc/self/cmdline");
            if (raw.Length == 0 || raw[^1] != 0) return null;
            return [.. Encoding.UTF8.GetString(raw, 0, raw.Length - 1).Split('\0')];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The starter: runs the copy and waits until it serves or fails. Returns the exit code.</summary>
    public static async Task<int> StartAsync(IReadOnlyList<string> args)
    {
        if (Environment.ProcessPath is not { } processPath)
        {
            Console.Error.WriteLine("Error: cannot run in the background: the path of this program is unknown.");
            return 1;
        }
        var (fileName, arguments) = ChildCommand(processPath, ReadCommandLine(), Environment.GetCommandLineArgs().FirstOrDefault(), args);
        var start = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.Environment[ChildVariable] = "1";
        Process child;
        try
        {
            child = Process.Start(start) ?? throw new InvalidOperationException("no process was started");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Console.Error.WriteLine($"Error: could not start midge in the background ({fileName}): {e.Message}");
            return 1;
        }
        using (child)
        {
            child.StandardInput.Close();
            var output = new StringBuilder();
            var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            string readyLine = ReadyLine(child.Id);
            var streamsEnded = Task.WhenAll(
                Task.Run(() => Collect(child.StandardOutput, output, readyLine, ready)),
                Task.Run(() => Collect(child.StandardError, output, null, null)));
            var first = await Task.WhenAny(ready.Task, streamsEnded, Task.Delay(StartTimeout));
            if (ready.Task.IsCompleted) return 0;

            string said;
            lock (output) said = output.ToString();
            Console.Error.Write(said);
            if (first != streamsEnded)
            {
                Console.Error.WriteLine($"Error: midge did not start in the background within {StartTimeout.TotalSeconds:F0} s; stopping it.");
                try
                {
                    child.Kill();
                }
                catch (InvalidOperationException)
                {
                }
                return 1;
            }
            // Both streams ended without the ready line: the copy has exited.
            bool exited = child.WaitForExit(TimeSpan.FromSeconds(5));
            Console.Error.WriteLine(exited
                ? $"Error: midge did not start in the background (exit code {child.ExitCode})."
                : "Error: midge did not start in the background.");
            return exited && child.ExitCode != 0 ? child.ExitCode : 1;
        }
    }

    private static void Collect(StreamReader reader, StringBuilder output, string? readyLine, TaskCompletionSource? ready)
    {
        try
        {
            while (reader.ReadLine() is { } line)
            {
                // The line is one write(2), so never split, but a large write of the copy's stdout log may have
                // been cut around it and put text before it.
                if (readyLine is not null && line.EndsWith(readyLine, StringComparison.Ordinal))
                {
                    ready!.TrySetResult();
                    return;
                }
                lock (output) output.Append(line).Append('\n');
            }
        }
        catch (IOException)
        {
        }
    }

    /// <summary>In the copy, first: a session of its own, so that nothing aimed at the starter's terminal or
    /// process group (a hang-up, Ctrl-C) reaches it.</summary>
    public static void BeginChild()
    {
        if (!OperatingSystem.IsWindows()) _ = SetSid();
    }

    /// <summary>In the copy, once it serves: tells the starter, then points stdin, stdout and stderr at /dev/null
    /// (the starter's pipes close with it).</summary>
    public static void Detach()
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            using var stdout = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
            stdout.Write(Encoding.UTF8.GetBytes(ReadyLine(Environment.ProcessId) + "\n"));
        }
        catch (IOException)
        {
            // The starter is gone; there is nobody to tell.
        }
        int devNull = Open("/dev/null", O_RDWR);
        if (devNull < 0) return;
        for (int fd = 0; fd <= 2; fd++) _ = Dup2(devNull, fd);
        if (devNull > 2) _ = Close(devNull);
    }

    private const int O_RDWR = 2;

    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    private static partial int SetSid();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    private static partial int Dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
