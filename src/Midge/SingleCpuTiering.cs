using System.Collections;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Midge;

/// <summary>
/// On a process that may run on one CPU only (pinned with <c>taskset</c>, a one-CPU cgroup or container) the .NET
/// runtime waits ten times longer before it recompiles hot code at full optimisation: a second, restarted by every
/// method compiled for the first time. A broker under steady traffic keeps meeting new methods for a while, so
/// its hot path ran at the first tiers, and the recompilation thread competed with the socket thread, for many
/// seconds after start: p99 latency twice Mosquitto's in the bench's latency scenario (docs/benchmarks.md). With
/// the runtime's ordinary delay (0.1 s, as on any machine with more CPUs) that ends within the first second.
/// The setting is read only when the runtime starts, from the environment, so the broker restarts itself in
/// place (same process id, same arguments) with <c>DOTNET_TC_DelaySingleProcMultiplier=1</c>, once. An explicit
/// value of that variable is left alone; nothing happens with more than one CPU or off Linux. The same restart keeps
/// the recompilation thread alive between bursts of work (<see cref="WorkerTimeoutVariable"/>). `midge bench` does
/// the same, since bench/compare.sh pins the generator to one core.
/// </summary>
internal static class SingleCpuTiering
{
    internal const string Variable = "DOTNET_TC_DelaySingleProcMultiplier";

    /// <summary>
    /// How long the recompilation thread waits for more work before it ends (4 s by default; a later burst makes a
    /// new thread). Forever (0xFFFFFFFF, hexadecimal like every runtime setting) keeps the one thread that
    /// <see cref="TieringWorkerSlice"/> found and tuned; it sleeps, holding no CPU, while there is nothing to do.
    /// </summary>
    internal const string WorkerTimeoutVariable = "DOTNET_TC_BackgroundWorkerTimeoutMs";

    public static void RestartIfNeeded()
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessorCount != 1) return;
        if (!RuntimeFeature.IsDynamicCodeCompiled) return; // Native AOT: nothing is compiled at run time
        if (Environment.GetEnvironmentVariable(Variable) is not null) return;
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }
        // Each argument ends with a NUL; drop only the last one, so an empty last argument ("") survives.
        if (cmdline.Length == 0 || cmdline[^1] != 0) return;
        var argv = Encoding.UTF8.GetString(cmdline, 0, cmdline.Length - 1).Split('\0');
        if (argv[0].Length == 0) return;

        var envp = new List<string?>();
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables()) envp.Add($"{e.Key}={e.Value}");
        envp.Add(Variable + "=1");
        if (Environment.GetEnvironmentVariable(WorkerTimeoutVariable) is null) envp.Add(WorkerTimeoutVariable + "=FFFFFFFF");
        envp.Add(null);
        var args = new List<string?>(argv) { null };
        RemoveDiagnosticsSocket();
        Console.Out.Flush();
        Console.Error.Flush();
        // Returns only when the restart could not be made; the broker then simply goes on as it is.
        _ = Execve("/proc/self/exe", [.. args], [.. envp]);
    }

    /// <summary>
    /// The runtime listens for diagnostics tools (dotnet-counters, dotnet-trace, dotnet-dump) on
    /// <c>$TMPDIR/dotnet-diagnostic-PID-KEY-socket</c>, named after the process id and its start time, which the
    /// restart keeps. The file outlives the old runtime, and the new one cannot bind the same name while it
    /// exists: without this the restarted broker had no diagnostics listener and the tools were refused.
    /// </summary>
    private static void RemoveDiagnosticsSocket()
    {
        try
        {
            foreach (var path in Directory.EnumerateFiles(Path.GetTempPath(), $"dotnet-diagnostic-{Environment.ProcessId}-*-socket"))
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [DllImport("libc", EntryPoint = "execve", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int Execve(string path, string?[] argv, string?[] envp);
}
