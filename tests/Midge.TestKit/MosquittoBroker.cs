namespace Midge.TestKit;

/// <summary>
/// Debian's <c>mosquitto</c> broker on a free loopback port, to run the same scenario against Midge and against
/// Mosquitto, or to bridge one to the other. Stopped on dispose. Fails (does not skip) when mosquitto is missing:
/// run-tests.sh installs it.
/// </summary>
public sealed class MosquittoBroker : IAsyncDisposable
{
    public const string Executable = "/usr/sbin/mosquitto";

    private readonly PeerProcess _process;
    private readonly string _directory;

    private MosquittoBroker(PeerProcess process, string directory, int port, string configPath)
    {
        _process = process;
        _directory = directory;
        Port = port;
        ConfigPath = configPath;
    }

    public int Port { get; }

    public string ConfigPath { get; }

    /// <summary>What mosquitto has logged so far.</summary>
    public string Log => _process.Stderr + _process.Stdout;

    /// <summary>
    /// Starts mosquitto with a listener on 127.0.0.1 and <paramref name="extraLines"/> (with <c>{dir}</c> replaced
    /// by the broker's own temporary directory), and waits until it accepts connections.
    /// </summary>
    public static async Task<MosquittoBroker> StartAsync(params string[] extraLines)
    {
        if (!File.Exists(Executable)) throw new InvalidOperationException($"{Executable} is missing: install Debian's mosquitto (run-tests.sh does)");
        string dir = MidgeProcess.NewDirectory();
        int port = FreePort.Next();
        string conf = Path.Combine(dir, "mosquitto.conf");
        var lines = new[] { $"listener {port} 127.0.0.1", "persistence false" }
            .Concat(extraLines.Select(l => l.Replace("{dir}", dir, StringComparison.Ordinal)));
        await File.WriteAllTextAsync(conf, string.Join('\n', lines) + "\n");
        var process = await PeerProcess.StartServerAsync("mosquitto", Executable, ["-c", conf], dir, port);
        return new MosquittoBroker(process, dir, port, conf);
    }

    /// <summary>Sends a POSIX signal (SIGHUP re-reads the password and ACL files).</summary>
    public bool Signal(int signal) => _process.Signal(signal);

    public async ValueTask DisposeAsync() => await _process.StopServerAsync(_directory);
}
