using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// <c>-d</c> however the broker was started: <c>dotnet midge.dll</c>, the apphost <c>midge</c> next to it (what
/// <c>dotnet run</c> starts), or the native executable (MIDGE_EXECUTABLE, which then replaces the apphost).
/// </summary>
public sealed class DaemonTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);

    private static (string Program, string[] Arguments) Launcher(string how) => how switch
    {
        "dll" => ("dotnet", [MidgeProcess.DllPath]),
        "apphost" => (MidgeProcess.Executable ?? Path.Combine(Path.GetDirectoryName(MidgeProcess.DllPath)!, "midge"), []),
        _ => throw new ArgumentOutOfRangeException(nameof(how)),
    };

    [Theory]
    [InlineData("dll")]
    [InlineData("apphost")]
    public async Task Daemon_mode_leaves_a_running_broker_with_its_pid_file(string how)
    {
        var (program, prefix) = Launcher(how);
        int port = FreePort.Next();
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "daemon.conf");
        string pidFile = Path.Combine(dir, "midge.pid");
        string log = Path.Combine(dir, "midge.log");
        File.WriteAllLines(conf, [.. MidgeProcess.BaseConfig(port), $"pid_file {pidFile}", $"log_dest file {log}"]);

        var r = await PeerProcess.RunAsync(program, [.. prefix, "-c", conf, "-d"], Short, dir);

        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(0, r.ExitCode);
        Assert.True(File.Exists(pidFile), $"no pid file: {r}");
        int pid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            Assert.True(Directory.Exists($"/proc/{pid}"), $"process {pid} is not running");
            Assert.True(await FreePort.AcceptsAsync(port));
            await RawMqttClient.AssertRoundTripAsync(port);
            // Detached: its own session, and its standard streams lead nowhere (no pipe of the starter's).
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            Assert.Equal(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), fields[3]); // session id
            Assert.Equal("/dev/null", new FileInfo($"/proc/{pid}/fd/2").LinkTarget);
            Assert.Contains("Opening ipv4 listen socket", File.ReadAllText(log));
        }
        finally
        {
            Signals.Send(pid, Signals.SIGTERM);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (Directory.Exists($"/proc/{pid}") && DateTime.UtcNow < deadline) await Task.Delay(50);
            if (Directory.Exists($"/proc/{pid}")) Signals.Send(pid, Signals.SIGKILL);
        }
        Assert.False(File.Exists(pidFile)); // removed by the broker as it stopped
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("apphost")]
    public async Task Daemon_mode_says_why_the_broker_did_not_start_and_exits_non_zero(string how)
    {
        var (program, prefix) = Launcher(how);
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        int port = ((System.Net.IPEndPoint)holder.LocalEndpoint).Port;
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "busy.conf");
        string pidFile = Path.Combine(dir, "midge.pid");
        File.WriteAllLines(conf, [.. MidgeProcess.BaseConfig(port), $"pid_file {pidFile}"]);

        var r = await PeerProcess.RunAsync(program, [.. prefix, "-c", conf, "-d"], Short, dir);

        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("address already in use", r.Stderr);
        Assert.Contains("did not start in the background", r.Stderr);
        Assert.False(File.Exists(pidFile));
    }
}
