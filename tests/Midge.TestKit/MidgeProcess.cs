using System.Diagnostics;

namespace Midge.TestKit;

/// <summary>
/// The built broker (<c>dotnet midge.dll</c>) as a child process on a free loopback port, with a temporary
/// mosquitto.conf and its log captured. Disposing sends SIGTERM, waits, then kills.
/// </summary>
public sealed class MidgeProcess : IAsyncDisposable
{
    /// <summary>How long a broker gets to accept connections after it was started.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);

    private readonly PeerProcess _process;
    private readonly string _directory;

    private MidgeProcess(PeerProcess process, string directory, int port, string? configPath, TimeSpan startedIn)
    {
        _process = process;
        _directory = directory;
        Port = port;
        ConfigPath = configPath;
        StartedIn = startedIn;
    }

    public int Port { get; }

    public int ProcessId => _process.Id;

    /// <summary>The mosquitto.conf the broker was started with (null when started without -c).</summary>
    public string? ConfigPath { get; }

    /// <summary>Time from process start until the port accepted a TCP connection.</summary>
    public TimeSpan StartedIn { get; }

    /// <summary>Everything the broker printed so far (its log goes to stderr by default).</summary>
    public string Log => _process.Stderr + _process.Stdout;

    public bool HasExited => _process.HasExited;

    /// <summary>midge.dll: next to the test assembly (ProjectReference), else src/Midge's build output.</summary>
    public static string DllPath { get; } = FindDll();

    /// <summary>
    /// A native executable to test instead of <c>dotnet midge.dll</c>: a Native AOT publish
    /// (<c>MIDGE_EXECUTABLE=/path/to/midge</c>), so that the same tests run against it. Null: midge.dll.
    /// </summary>
    public static string? Executable { get; } = Environment.GetEnvironmentVariable("MIDGE_EXECUTABLE") is { Length: > 0 } e
        ? Path.GetFullPath(e)
        : null;

    /// <summary>The program that runs midge: the native executable, else <c>dotnet</c>.</summary>
    public static string Program => Executable ?? "dotnet";

    /// <summary>The program's arguments for midge's <paramref name="arguments"/> (midge.dll first under dotnet).</summary>
    public static string[] Arguments(params string[] arguments) => Executable is null ? [DllPath, .. arguments] : arguments;

    /// <summary>The lines every test configuration starts with.</summary>
    public static string[] BaseConfig(int port) =>
    [
        $"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "log_dest stderr",
        "log_type all",
    ];

    /// <summary>Starts a broker on a free port with the base configuration plus <paramref name="extraLines"/>.</summary>
    public static Task<MidgeProcess> StartAsync(params string[] extraLines) => StartInAsync(NewDirectory(), extraLines);

    /// <summary>As <see cref="StartAsync"/>, with <paramref name="dir"/> as the working directory (and the
    /// configuration file's place); it is deleted when the broker is disposed.</summary>
    public static Task<MidgeProcess> StartInAsync(string dir, params string[] extraLines)
    {
        int port = FreePort.Next();
        string conf = Path.Combine(dir, "mosquitto.conf");
        File.WriteAllLines(conf, [.. BaseConfig(port), .. extraLines]);
        return LaunchAsync(dir, port, conf, ["-c", conf]);
    }

    /// <summary>Starts a broker with raw command-line arguments, waiting for <paramref name="port"/> to accept.</summary>
    public static Task<MidgeProcess> StartWithArgumentsAsync(int port, params string[] arguments) =>
        LaunchAsync(NewDirectory(), port, null, arguments);

    /// <summary>Runs midge to completion (e.g. <c>--test-config</c>), bounded by <paramref name="timeout"/>.</summary>
    public static Task<ProcessResult> RunAsync(TimeSpan timeout, params string[] arguments) =>
        PeerProcess.RunAsync(Program, Arguments(arguments), timeout);

    /// <summary>Rewrites the configuration file (base configuration plus <paramref name="extraLines"/>).</summary>
    public void RewriteConfig(params string[] extraLines)
    {
        if (ConfigPath is null) throw new InvalidOperationException("broker was started without a configuration file");
        File.WriteAllLines(ConfigPath, [.. BaseConfig(Port), .. extraLines]);
    }

    /// <summary>Sends a POSIX signal (SIGHUP, SIGTERM) to the broker.</summary>
    public bool Signal(int signal) => _process.Signal(signal);

    /// <summary>Waits until the broker's log contains <paramref name="text"/>.</summary>
    public Task<bool> WaitForLogAsync(string text, TimeSpan timeout) => _process.WaitForOutputAsync(text, timeout);

    /// <summary>SIGTERM, then waits up to <paramref name="timeout"/> (killing it after that).</summary>
    public async Task<ProcessResult> StopAsync(TimeSpan timeout)
    {
        _process.Signal(Signals.SIGTERM);
        return await _process.WaitAsync(timeout);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) await StopAsync(TimeSpan.FromSeconds(5));
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A fresh temporary directory for configuration files and other test artefacts.</summary>
    public static string NewDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "midge-it-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static async Task<MidgeProcess> LaunchAsync(string dir, int port, string? conf, string[] arguments)
    {
        var clock = Stopwatch.StartNew();
        var process = PeerProcess.Start(Program, Arguments(arguments), dir);
        while (clock.Elapsed < StartTimeout)
        {
            if (process.HasExited)
            {
                var result = await process.WaitAsync(TimeSpan.FromSeconds(2));
                process.Dispose();
                throw new InvalidOperationException($"midge exited before listening on {port}: {result}");
            }
            if (await FreePort.AcceptsAsync(port)) return new MidgeProcess(process, dir, port, conf, clock.Elapsed);
            await Task.Delay(25);
        }
        var timedOut = await process.WaitAsync(TimeSpan.Zero);
        process.Dispose();
        throw new TimeoutException($"midge did not accept connections on {port} within {StartTimeout}: {timedOut}");
    }

    private static string FindDll()
    {
        string local = Path.Combine(AppContext.BaseDirectory, "midge.dll");
        if (File.Exists(local) && File.Exists(Path.Combine(AppContext.BaseDirectory, "midge.runtimeconfig.json"))) return local;
        string configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Midge.slnx"))) continue;
            string built = Path.Combine(dir.FullName, "src", "Midge", "bin", configuration, "net10.0", "midge.dll");
            if (File.Exists(built)) return built;
        }
        throw new FileNotFoundException("midge.dll not found next to the tests nor under src/Midge/bin; build src/Midge first");
    }
}
