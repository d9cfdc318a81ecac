using System.Diagnostics;
using System.Text;

namespace Midge.TestKit;

/// <summary>What a finished (or timed-out and killed) peer process left behind.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr, bool TimedOut, TimeSpan Elapsed)
{
    /// <summary>Stdout split into lines, without empty trailing lines.</summary>
    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();

    public override string ToString() =>
        $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")} after {Elapsed.TotalMilliseconds:F0} ms\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// A peer process (mosquitto_pub, mosquitto_sub, python3, midge itself) with its output captured. Every wait
/// is bounded: a process that outlives its timeout is killed with its children.
/// </summary>
public sealed class PeerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TaskCompletionSource _stdoutDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _timedOut;

    private PeerProcess(string fileName, IEnumerable<string> arguments, string? workingDirectory)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["PYTHONUNBUFFERED"] = "1";
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data, _stdoutDone);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data, _stderrDone);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The interpreter that has paho-mqtt: $MIDGE_PYTHON, else Debian's /usr/bin/python3.</summary>
    public static string Python => Environment.GetEnvironmentVariable("MIDGE_PYTHON") is { Length: > 0 } p ? p : "/usr/bin/python3";

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Stdout
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    public StreamWriter StandardInput => _process.StandardInput;

    /// <summary>Starts a process; the caller waits for it with <see cref="WaitAsync"/>.</summary>
    public static PeerProcess Start(string fileName, IEnumerable<string> arguments, string? workingDirectory = null) =>
        new(fileName, arguments, workingDirectory);

    /// <summary>Runs a process to completion, killing it after <paramref name="timeout"/>.</summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        string? workingDirectory = null)
    {
        using var p = Start(fileName, arguments, workingDirectory);
        return await p.WaitAsync(timeout);
    }

    /// <summary>Waits until stdout or stderr contains <paramref name="text"/>; false on timeout or exit.</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = _clock.Elapsed + timeout;
        while (_clock.Elapsed < deadline)
        {
            if (Stdout.Contains(text, StringComparison.Ordinal) || Stderr.Contains(text, StringComparison.Ordinal)) return true;
            if (_process.HasExited)
            {
                await Task.WhenAny(Task.WhenAll(_stdoutDone.Task, _stderrDone.Task), Task.Delay(500));
                return Stdout.Contains(text, StringComparison.Ordinal) || Stderr.Contains(text, StringComparison.Ordinal);
            }
            await Task.Delay(20);
        }
        return false;
    }

    /// <summary>Waits for the process to exit; after <paramref name="timeout"/> kills it and reports TimedOut.</summary>
    public async Task<ProcessResult> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _timedOut = true;
            KillTree();
            using var after = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _process.WaitForExitAsync(after.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
        // The exit can be observed before the last lines of output were delivered.
        await Task.WhenAny(Task.WhenAll(_stdoutDone.Task, _stderrDone.Task), Task.Delay(2000));
        int code = _process.HasExited ? _process.ExitCode : -1;
        return new ProcessResult(code, Stdout, Stderr, _timedOut, _clock.Elapsed);
    }

    /// <summary>
    /// Starts a server (<paramref name="name"/> in errors) and waits until it accepts connections on 127.0.0.1:
    /// <paramref name="port"/>; throws, the process gone, when it exits first or does not listen within
    /// <see cref="MidgeProcess.StartTimeout"/>.
    /// </summary>
    public static async Task<PeerProcess> StartServerAsync(string name, string fileName, IEnumerable<string> arguments, string directory, int port)
    {
        var process = Start(fileName, arguments, directory);
        var deadline = DateTime.UtcNow + MidgeProcess.StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                var result = await process.WaitAsync(TimeSpan.FromSeconds(2));
                process.Dispose();
                throw new InvalidOperationException($"{name} exited before listening on {port}: {result}");
            }
            if (await FreePort.AcceptsAsync(port)) return process;
            await Task.Delay(50);
        }
        process.KillTree();
        process.Dispose();
        throw new TimeoutException($"{name} did not listen on {port}");
    }

    /// <summary>Stops a server started by <see cref="StartServerAsync"/> (SIGTERM, then SIGKILL after 5 s) and deletes
    /// its <paramref name="directory"/>.</summary>
    public async Task StopServerAsync(string directory)
    {
        Signal(Signals.SIGTERM);
        await WaitAsync(TimeSpan.FromSeconds(5));
        Dispose();
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Sends a POSIX signal to the process.</summary>
    public bool Signal(int signal) => !_process.HasExited && Signals.Send(_process.Id, signal);

    public void KillTree()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        KillTree();
        _process.Dispose();
    }

    private static void Append(StringBuilder sb, string? line, TaskCompletionSource done)
    {
        if (line is null)
        {
            done.TrySetResult();
            return;
        }
        lock (sb) sb.Append(line).Append('\n');
    }
}
