namespace Midge.TestKit;

/// <summary>
/// Debian's <c>nats-server</c> with JetStream on a free loopback port and its own store directory, for the cluster's
/// tests. Stopped on dispose; <see cref="KillAsync"/> and <see cref="RestartAsync"/> for outage tests (same port, same
/// store). Fails (does not skip) when nats-server is missing: run-tests.sh installs it.
/// </summary>
public sealed class NatsServer : IAsyncDisposable
{
    public const string Executable = "/usr/sbin/nats-server";

    private readonly string _directory;
    private PeerProcess _process;

    private NatsServer(PeerProcess process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The URL nodes are configured with.</summary>
    public string Url => $"nats://127.0.0.1:{Port}";

    /// <summary>What nats-server has logged so far (of its current run).</summary>
    public string Log => _process.Stderr + _process.Stdout;

    public static async Task<NatsServer> StartAsync()
    {
        if (!File.Exists(Executable)) throw new InvalidOperationException($"{Executable} is missing: install Debian's nats-server (run-tests.sh does)");
        string dir = MidgeProcess.NewDirectory();
        int port = FreePort.Next();
        return new NatsServer(await LaunchAsync(dir, port), dir, port);
    }

    private static Task<PeerProcess> LaunchAsync(string dir, int port) =>
        PeerProcess.StartServerAsync("nats-server", Executable, ["-a", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-js", "-sd", Path.Combine(dir, "jetstream"), "-n", $"test-{port}"], dir, port);

    /// <summary>Kills the server (SIGKILL) and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        _process.Signal(Signals.SIGKILL);
        await _process.WaitAsync(TimeSpan.FromSeconds(5));
    }

    /// <summary>Starts it again on the same port with the same JetStream store.</summary>
    public async Task RestartAsync()
    {
        if (!_process.HasExited) await KillAsync();
        _process.Dispose();
        _process = await LaunchAsync(_directory, Port);
    }

    public async ValueTask DisposeAsync() => await _process.StopServerAsync(_directory);
}
