using System.Diagnostics;
using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Logging never holds up the broker: a stdout/stderr pipe that nobody reads stalls no client and not SIGTERM, and a
/// line is never longer than Mosquitto's 999 bytes.
/// </summary>
public sealed class SlowLogTests
{
    /// <summary>A topic filter near the 65,535-byte limit of an MQTT string: each SUBSCRIBE logs a 65 KB line.</summary>
    private static readonly string HugeFilter = "a/" + new string('x', 65_000);

    /// <summary>
    /// The broker with its stdout and stderr both pipes that this process holds open and does not read (until
    /// <see cref="Unread.StartReading"/>): once the pipes' 64 KiB are full, every write to them blocks.
    /// </summary>
    private sealed class Unread : IDisposable
    {
        private readonly StringBuilder _stdout = new();
        private readonly StringBuilder _stderr = new();

        public Unread()
        {
            Port = FreePort.Next();
            string dir = MidgeProcess.NewDirectory();
            string conf = Path.Combine(dir, "mosquitto.conf");
            File.WriteAllLines(conf, [.. MidgeProcess.BaseConfig(Port), "log_dest stdout"]); // stderr and stdout
            var start = new ProcessStartInfo(MidgeProcess.Program)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = dir,
            };
            foreach (var a in MidgeProcess.Arguments("-c", conf)) start.ArgumentList.Add(a);
            Process = Process.Start(start)!;
        }

        public int Port { get; }

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_stdout) lock (_stderr) return _stderr + "\n" + _stdout;
            }
        }

        public async Task WaitListeningAsync()
        {
            var deadline = DateTime.UtcNow + MidgeProcess.StartTimeout;
            while (!await FreePort.AcceptsAsync(Port))
            {
                Assert.False(Process.HasExited, "midge exited before listening");
                Assert.True(DateTime.UtcNow < deadline, "midge did not listen in time");
                await Task.Delay(25);
            }
        }

        public void StartReading()
        {
            _ = Drain(Process.StandardOutput, _stdout);
            _ = Drain(Process.StandardError, _stderr);
        }

        private static async Task Drain(StreamReader reader, StringBuilder into)
        {
            var buffer = new char[65536];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
            {
                lock (into) into.Append(buffer, 0, n);
            }
        }

        public void Dispose()
        {
            try
            {
                if (!Process.HasExited) Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            Process.Dispose();
        }
    }

    /// <summary>Twenty SUBSCRIBEs with a 65 KB filter (each logs a 65 KB line twice over) and 100 connects.</summary>
    private static async Task MakeNoiseAsync(int port)
    {
        using var noisy = await RawMqttClient.ConnectMqttAsync(port, "noisy");
        for (ushort i = 1; i <= 20; i++)
        {
            await noisy.SendAsync(RawMqttClient.Subscribe(i, HugeFilter));
            var suback = await noisy.ReadAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(9, suback?.Type);
        }
        for (int i = 0; i < 100; i++)
        {
            using var churn = await RawMqttClient.ConnectMqttAsync(port, $"churn-{i}");
        }
    }

    [Fact]
    public async Task A_log_pipe_nobody_reads_stalls_no_client_and_sigterm_still_stops_the_broker()
    {
        using var broker = new Unread();
        await broker.WaitListeningAsync();

        // Before: the first 65 KB line filled the pipe and blocked the thread writing it, holding the console's
        // lock, and with it every client and the SIGTERM handler (which logs "stopping").
        await MakeNoiseAsync(broker.Port).WaitAsync(TimeSpan.FromSeconds(30));
        await RawMqttClient.AssertRoundTripAsync(broker.Port).WaitAsync(TimeSpan.FromSeconds(10));

        var clock = Stopwatch.StartNew();
        Assert.True(Signals.Send(broker.Process.Id, Signals.SIGTERM));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await broker.Process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
        Assert.True(broker.Process.HasExited, "SIGTERM did not stop a broker whose log pipe is full");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stopped after {clock.Elapsed}");
        Assert.Equal(0, broker.Process.ExitCode);
    }

    [Fact]
    public async Task Lines_dropped_while_the_pipe_was_full_are_counted_once_it_drains()
    {
        using var broker = new Unread();
        await broker.WaitListeningAsync();
        await MakeNoiseAsync(broker.Port).WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 2500; i++)
        {
            // Enough short lines to overflow the queue behind the blocked writer, whatever its size.
            using var churn = await RawMqttClient.ConnectMqttAsync(broker.Port, $"more-{i}");
            if (i % 500 == 499) await RawMqttClient.AssertRoundTripAsync(broker.Port);
        }

        broker.StartReading();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        string Dropped() => string.Join("\n", broker.Output.Split('\n').Where(l => l.Contains("dropped", StringComparison.Ordinal)));
        while (DateTime.UtcNow < deadline && !(Dropped().Contains("(stderr", StringComparison.Ordinal) && Dropped().Contains("(stdout", StringComparison.Ordinal)))
        {
            await Task.Delay(50);
        }
        string dropped = Dropped();
        Assert.Matches(@"\d+: \d+ log lines dropped \(stderr was not keeping up\)", dropped);
        Assert.Matches(@"\d+: \d+ log lines dropped \(stdout was not keeping up\)", dropped);

        // Logging goes on once the destination keeps up again.
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline && !broker.Output.Contains("as hs-", StringComparison.Ordinal))
        {
            await Task.Delay(50);
        }
        Assert.Contains("as hs-", broker.Output);
        Assert.DoesNotContain(broker.Output.Split('\n'), l => Encoding.UTF8.GetByteCount(l) > 999);
    }

    [Fact]
    public async Task A_log_line_is_cut_at_999_bytes_as_Mosquitto_does()
    {
        string dir = MidgeProcess.NewDirectory();
        string file = Path.Combine(MidgeProcess.NewDirectory(), "midge.log"); // outlives the broker's directory
        // A filter of two-byte characters, so that the cut must not split one.
        string filter = "b/" + new string('é', 2000);
        await using (var broker = await MidgeProcess.StartInAsync(dir, $"log_dest file {file}"))
        {
            using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "long-filter");
            await client.SendAsync(RawMqttClient.Subscribe(1, filter));
            Assert.Equal(9, (await client.ReadAsync(TimeSpan.FromSeconds(5)))?.Type);
            await RawMqttClient.AssertRoundTripAsync(broker.Port);
        }

        byte[] bytes = File.ReadAllBytes(file);
        string text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); // no character split
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.True(Encoding.UTF8.GetByteCount(l) <= 999, $"{Encoding.UTF8.GetByteCount(l)} bytes: {l[..Math.Min(80, l.Length)]}"));
        string cut = Assert.Single(lines, l => l.Contains(": long-filter 0 b/é", StringComparison.Ordinal));
        Assert.InRange(Encoding.UTF8.GetByteCount(cut), 998, 999); // 999, or 998 where a 'é' did not fit
        Assert.EndsWith("ééé", cut);
        Assert.Contains(lines, l => l.Contains("as hs-", StringComparison.Ordinal)); // lines after it are whole
    }
}
