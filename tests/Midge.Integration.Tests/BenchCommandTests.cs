using System.Text.Json;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary><c>midge bench</c> runs a short scenario against a real broker and reports sane numbers.</summary>
public sealed class BenchCommandTests
{
    [Fact]
    public async Task Fanout_to_5_subscribers_reports_consistent_counts_and_ordered_latencies()
    {
        await using var broker = await MidgeProcess.StartAsync();

        using var json = await RunBenchAsync("fanout", "-p", broker.Port.ToString(),
            "-c", "5", "--rate", "2000", "--duration", "2", "--warmup", "0", "--json", "--quiet",
            "--broker-pid", broker.ProcessId.ToString());
        var root = json.RootElement;
        Assert.Equal("fanout", root.GetProperty("scenario").GetString());
        Assert.Equal(6, root.GetProperty("connected").GetInt32());
        Assert.Equal(0, root.GetProperty("errors").GetInt64());

        long sent = root.GetProperty("sent").GetInt64();
        long received = root.GetProperty("received").GetInt64();
        Assert.True(sent > 1000, $"sent {sent}");
        Assert.True(received > 0);
        double ratio = (double)received / (sent * 5);
        Assert.True(ratio is > 0.95 and < 1.05, $"received {received} for {sent} sent to 5 subscribers");

        AssertOrderedLatencies(root, moreThan: 0);

        var b = root.GetProperty("broker");
        Assert.True(b.GetProperty("cpu_seconds").GetDouble() >= 0);
        Assert.True(b.GetProperty("rss_bytes").GetInt64() > 0);
    }

    [Fact]
    public async Task Kernel_receive_time_ends_latency_at_the_socket_and_says_so()
    {
        await using var broker = await MidgeProcess.StartAsync();

        using var json = await RunBenchAsync("p2p", "-p", broker.Port.ToString(),
            "-c", "5", "--rate", "1000", "--duration", "2", "--warmup", "0", "--json", "--quiet", "--rx-time", "kernel");
        var root = json.RootElement;
        Assert.Equal("kernel", root.GetProperty("rx_time").GetString());
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        long sent = root.GetProperty("sent").GetInt64();
        long received = root.GetProperty("received").GetInt64();
        Assert.True(sent > 500 && received >= sent * 95 / 100, $"sent {sent}, received {received}");

        // The kernel's clock is converted to the generator's: a wrong conversion shows as latencies below zero
        // or of seconds.
        double max = AssertOrderedLatencies(root, moreThan: 500);
        Assert.True(max < 1_000_000, $"max {max} us");
    }

    // With a threshold of 0 every measured message is slow: the log has one line per latency in the summary,
    // each with its send and arrival time and their difference, in order of sending.
    [Fact]
    public async Task The_slow_log_lists_each_message_over_the_threshold_with_its_times()
    {
        await using var broker = await MidgeProcess.StartAsync();
        string log = Path.Combine(MidgeProcess.NewDirectory(), "slow.txt");

        using var json = await RunBenchAsync("p2p", "-p", broker.Port.ToString(), "-c", "3", "--rate", "600",
            "--duration", "1", "--warmup", "0", "--json", "--quiet", "--slow-log", log, "--slow-us", "0");
        long count = json.RootElement.GetProperty("latency_us").GetProperty("count").GetInt64();
        var lines = File.ReadAllLines(log);
        Assert.Equal("# sent_ns arrived_ns latency_us", lines[0]);
        Assert.True(count > 300, $"count {count}");
        Assert.Equal(count, lines.Length - 1);
        long previous = 0;
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(' ');
            long sent = long.Parse(f[0]), arrived = long.Parse(f[1]);
            double micros = double.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(sent >= previous, line);
            Assert.True(arrived > sent && Math.Abs((arrived - sent) / 1000.0 - micros) < 0.2, line);
            previous = sent;
        }
    }

    // Over WebSocket every packet goes in its own masked frame; QoS 1 acknowledgements and the broker's batched
    // messages (several packets in one frame, or one split over frames) come back through the same framing.
    [Fact]
    public async Task Point_to_point_QoS_1_over_WebSocket_delivers_every_message()
    {
        int ws = FreePort.Next();
        await using var broker = await BenchCommandTests.StartWebSocketBrokerAsync(ws);

        using var json = await RunBenchAsync("p2p", "-p", ws.ToString(), "--ws", "-q", "1", "-s", "300",
            "-c", "4", "--rate", "2000", "--duration", "2", "--warmup", "0", "--json", "--quiet");
        var root = json.RootElement;
        Assert.Equal("websockets", root.GetProperty("transport").GetString());
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        long sent = root.GetProperty("sent").GetInt64();
        Assert.True(sent > 1000, $"sent {sent}");
        Assert.Equal(sent, root.GetProperty("received").GetInt64());
        AssertOrderedLatencies(root, moreThan: 1000);
    }

    [Fact]
    public async Task A_WebSocket_path_must_start_with_a_slash()
    {
        var r = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), "bench", "p2p", "--ws-path", "mqtt");

        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("option '--ws-path' needs a path starting with '/', not 'mqtt'", r.Stdout + r.Stderr);
    }

    [Fact]
    public async Task An_unknown_receive_time_is_refused_with_its_name()
    {
        var r = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), "bench", "p2p", "--rx-time", "wall");

        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("'--rx-time' needs user or kernel, not 'wall'", r.Stdout + r.Stderr);
    }

    /// <summary>Runs <c>midge bench</c>, which must exit 0 in time, and parses its JSON summary.</summary>
    /// <summary>A broker with a <c>protocol websockets</c> listener on <paramref name="port"/>, once it accepts.</summary>
    internal static async Task<MidgeProcess> StartWebSocketBrokerAsync(int port)
    {
        var broker = await MidgeProcess.StartAsync($"listener {port} 127.0.0.1", "protocol websockets", "log_type error");
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!await FreePort.AcceptsAsync(port))
            {
                Assert.True(DateTime.UtcNow < deadline, $"port {port} does not accept");
                await Task.Delay(20);
            }
            return broker;
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
    }

    internal static async Task<JsonDocument> RunBenchAsync(params string[] args)
    {
        var r = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), ["bench", .. args]);
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(0, r.ExitCode);
        return JsonDocument.Parse(r.Stdout);
    }

    /// <summary>More than <paramref name="moreThan"/> latencies, with 0 &lt; p50 &lt;= p99 &lt;= max; returns max.</summary>
    private static double AssertOrderedLatencies(JsonElement root, long moreThan)
    {
        var latency = root.GetProperty("latency_us");
        Assert.True(latency.GetProperty("count").GetInt64() > moreThan);
        double p50 = latency.GetProperty("p50").GetDouble();
        double p99 = latency.GetProperty("p99").GetDouble();
        double max = latency.GetProperty("max").GetDouble();
        Assert.True(p50 > 0 && p50 <= p99 && p99 <= max, $"p50 {p50} p99 {p99} max {max}");
        return max;
    }
}

/// <summary>A flood that takes both cores for seconds: run alone, so that it neither slows the other test classes nor is
/// slowed by them.</summary>
[Collection(nameof(Timing))]
public sealed class WebSocketFloodTests
{
    // A hundred WebSocket publishers flooding one WebSocket subscriber: the deliveries used to wait behind the
    // publishers' reads in the thread pool, and the subscriber got a few hundred messages of a million while the rest
    // was dropped. The generator pauses its publishers while 20,000 deliveries are on the way (it stops waiting for
    // them after 100 ms without one, so a busy machine may still lose some to the subscriber's queue limit): most of
    // what is sent must arrive.
    [Fact]
    public async Task Fan_in_flood_over_WebSocket_reaches_the_subscriber()
    {
        int ws = FreePort.Next();
        await using var broker = await BenchCommandTests.StartWebSocketBrokerAsync(ws);

        using var json = await BenchCommandTests.RunBenchAsync("fanin", "-p", ws.ToString(), "--ws", "-c", "100", "-s", "64",
            "--duration", "3", "--warmup", "0", "--json", "--quiet");
        var root = json.RootElement;
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        long sent = root.GetProperty("sent").GetInt64();
        Assert.True(sent > 10_000, $"sent {sent}");
        long received = root.GetProperty("received").GetInt64();
        Assert.True(received * 2 > sent, $"received {received} of {sent}");
    }
}
