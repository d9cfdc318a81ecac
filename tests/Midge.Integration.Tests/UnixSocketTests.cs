using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary><c>listener 0 PATH</c> (Mosquitto 2.0's Unix socket listener), driven by mosquitto_pub and mosquitto_sub
/// with <c>--unix</c>.</summary>
public sealed class UnixSocketTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("midge-unix-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Mosquitto_clients_exchange_messages_over_a_Unix_socket_and_the_file_goes_with_the_broker()
    {
        string path = Path.Combine(_dir, "midge.sock");
        var broker = await MidgeProcess.StartAsync($"listener 0 {path}");
        Assert.True(await broker.WaitForLogAsync($"Opening unix listen socket on path {path}.", TimeSpan.FromSeconds(15)), broker.Log);

        using (var sub = await PeerSubscribeAsync(path, "-t", "local/#", "-C", "1", "-q", "1"))
        {
            var pub = await PeerProcess.RunAsync("mosquitto_pub", ["--unix", path, "-t", "local/x", "-m", "over unix", "-q", "1"],
                TimeSpan.FromSeconds(10));
            Assert.Equal(0, pub.ExitCode);
            var (_, messages) = await sub.WaitAsync();
            Assert.Equal(["local/x over unix"], messages);
        }
        // The TCP listener of the same broker serves the same topics.
        using (var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%t %p", "-t", "local/#", "-C", "1"))
        {
            Assert.Equal(0, (await PeerProcess.RunAsync("mosquitto_pub", ["--unix", path, "-t", "local/y", "-m", "to tcp"], TimeSpan.FromSeconds(10))).ExitCode);
            Assert.Equal(["local/y to tcp"], (await sub.WaitAsync()).Messages);
        }
        await broker.DisposeAsync();
        Assert.False(File.Exists(path), "the socket file should be removed when the broker stops");
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_and_one_in_use_is_an_error()
    {
        string path = Path.Combine(_dir, "stale.sock");
        // A socket file nobody listens on, as a crash leaves it (.NET's Socket would delete its file on close).
        var bind = await PeerProcess.RunAsync(PeerProcess.Python, ["-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{path}')"],
            TimeSpan.FromSeconds(10));
        Assert.True(File.Exists(path), bind.ToString());
        await using var broker = await MidgeProcess.StartAsync($"listener 0 {path}");
        Assert.True(await broker.WaitForLogAsync("Opening unix listen socket", TimeSpan.FromSeconds(15)), broker.Log);
        // The line is written as the socket opens; the first client may come a moment before it accepts.
        var first = await PeerProcess.RunAsync("mosquitto_pub", ["--unix", path, "-t", "t", "-m", "m"], TimeSpan.FromSeconds(10));
        for (int i = 0; i < 50 && first.ExitCode != 0; i++)
        {
            await Task.Delay(100);
            first = await PeerProcess.RunAsync("mosquitto_pub", ["--unix", path, "-t", "t", "-m", "m"], TimeSpan.FromSeconds(10));
        }
        Assert.True(first.ExitCode == 0, first + broker.Log);

        // A second broker on the same path: refused, naming the line, while the first keeps serving.
        string conf = Path.Combine(_dir, "second.conf");
        File.WriteAllLines(conf, [$"listener {FreePort.Next()} 127.0.0.1", $"listener 0 {path}", "allow_anonymous true"]);
        var second = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(30), "-c", conf);
        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains($"second.conf:2: Unix socket {path} is in use by another process", second.Stderr + second.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, (await PeerProcess.RunAsync("mosquitto_pub", ["--unix", path, "-t", "t", "-m", "m"], TimeSpan.FromSeconds(10))).ExitCode);
    }

    /// <summary>mosquitto_sub over the socket, once it has its SUBACK. The broker logs the listener as the socket opens,
    /// a moment before it accepts: a subscriber refused then (it exits at once) is started again, up to 50 times.</summary>
    private static async Task<MosquittoClients.Subscriber> PeerSubscribeAsync(string path, params string[] arguments)
    {
        for (int attempt = 0; ; attempt++)
        {
            var process = PeerProcess.Start("stdbuf", ["-oL", "mosquitto_sub", "--unix", path, "-d", "-W", "10", "-F", MosquittoClients.Marker + "%t %p", .. arguments]);
            if (await process.WaitForOutputAsync("received SUBACK", TimeSpan.FromSeconds(5))) return new MosquittoClients.Subscriber(process);
            bool refused = process.HasExited;
            process.Dispose();
            Assert.True(refused && attempt < 50, "mosquitto_sub got no SUBACK");
            await Task.Delay(100);
        }
    }
}
