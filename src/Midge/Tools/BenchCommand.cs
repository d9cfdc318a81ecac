using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Midge.Tools;

/// <summary>
/// <c>midge bench</c>: a load generator in the spirit of emqtt-bench. Connects clients over raw sockets, drives
/// one of the scenarios of <see cref="BenchScenario"/>, prints a line per second and a summary (text or JSON):
/// rates, end-to-end latency percentiles, connect rate, errors, and optionally the broker's CPU and memory.
/// </summary>
internal static class BenchCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string[] args)
    {
        BenchOptions o;
        try
        {
            o = BenchOptions.Parse(args);
        }
        catch (BenchOptionException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            Console.Error.WriteLine("Use 'midge bench --help' to see usage.");
            return 1;
        }
        if (o.Help)
        {
            Console.WriteLine(BenchOptions.Usage);
            return 0;
        }

        EndPoint server;
        try
        {
            var address = IPAddress.TryParse(o.Host, out var ip) ? ip
                : (await Dns.GetHostAddressesAsync(o.Host)).First(a => a.AddressFamily == AddressFamily.InterNetwork);
            server = new IPEndPoint(address, o.Port);
        }
        catch (Exception ex) when (ex is SocketException or InvalidOperationException)
        {
            Console.Error.WriteLine($"Error: cannot resolve '{o.Host}': {ex.Message}");
            return 1;
        }

        var bench = new Bench(o, server);
        var summary = o.Scenario == BenchScenario.Conn ? await bench.RunConnAsync() : await bench.RunMessagesAsync();
        if (o.SlowLog is { } slowLog)
        {
            try
            {
                bench.WriteSlowLog(slowLog);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"Error: cannot write '{slowLog}': {ex.Message}");
                return 1;
            }
        }
        if (o.Json) summary.WriteJson(Console.OpenStandardOutput());
        else summary.WriteText(Console.Out);
        return summary.Errors > 0 ? 2 : 0;
    }

    private sealed class Bench(BenchOptions o, EndPoint server)
    {
        private readonly BenchRun _run = new()
        {
            Slow = o.SlowLog is null ? null : new(),
            SlowTicks = (long)(o.SlowMicros * Stopwatch.Frequency / 1_000_000),
        };

        /// <summary>One line per slow message, in order of sending: send and arrival time in nanoseconds of the
        /// monotonic clock (Stopwatch's on Linux), and the latency in microseconds.</summary>
        public void WriteSlowLog(string path)
        {
            static long Nanoseconds(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));
            using var w = new StreamWriter(path);
            w.WriteLine("# sent_ns arrived_ns latency_us");
            foreach (var (sent, arrived) in _run.Slow!.OrderBy(m => m.Sent))
            {
                w.WriteLine(FormattableString.Invariant(
                    $"{Nanoseconds(sent)} {Nanoseconds(arrived)} {(arrived - sent) * 1_000_000.0 / Stopwatch.Frequency:F1}"));
            }
        }
        private readonly BenchBrokerProbe? _probe = o.BrokerPid > 0 ? new BenchBrokerProbe(o.BrokerPid) : null;
        private readonly List<BenchClient> _subscribers = [];
        private readonly List<BenchClient> _publishers = [];
        private readonly List<BenchClient> _idle = [];
        private readonly List<Task> _receiveLoops = [];
        private readonly BenchHistogram _connectLatency = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _connected;
        private int _connectFailed;

        private long TotalSent() => _publishers.Sum(p => Volatile.Read(ref p.Sent));
        private long TotalReceived() => _subscribers.Sum(s => Volatile.Read(ref s.Received));

        public async Task<BenchSummary> RunConnAsync()
        {
            var s = NewSummary();
            long? rss0 = _probe?.RssBytes();
            double? cpu0 = _probe?.CpuSeconds();
            using var reporter = StartReporter();
            var started = Stopwatch.GetTimestamp();
            await ConnectManyAsync(o.Count, o.Rate, "c", 512, async (i, c) =>
            {
                lock (_idle) _idle.Add(c);
                lock (_receiveLoops) _receiveLoops.Add(c.ReceiveLoopAsync());
                await Task.CompletedTask;
            }, sendBufferSize: 128 * 1024);
            s.ConnectSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            double? cpu1 = _probe?.CpuSeconds();
            if (o.SettleSeconds > 0) await Task.Delay(TimeSpan.FromSeconds(o.SettleSeconds));
            long? rss1 = _probe?.RssBytes();
            if (_probe is not null)
            {
                s.BrokerCpuSeconds = cpu1 - cpu0;
                s.BrokerRssStart = rss0;
                s.BrokerRss = rss1;
                s.BrokerPeakRss = _probe.PeakRssBytes();
            }
            await Task.Delay(TimeSpan.FromSeconds(o.DurationSeconds));
            await CloseAllAsync();
            return Finish(s);
        }

        public async Task<BenchSummary> RunMessagesAsync()
        {
            var s = NewSummary();
            using var reporter = StartReporter();
            var started = Stopwatch.GetTimestamp();
            await ConnectManyAsync(o.Subscribers, 0, "s", 64 * 1024, async (i, c) =>
            {
                await c.SubscribeAsync(BenchOptions.Template(o.SubscribeFilter, i), o.QoS, CancellationToken.None);
                lock (_subscribers) _subscribers.Add(c);
                lock (_receiveLoops) _receiveLoops.Add(c.ReceiveLoopAsync());
            });
            var publisherIndex = new Dictionary<BenchClient, int>();
            await ConnectManyAsync(o.Publishers, 0, "p", 4 * 1024, async (i, c) =>
            {
                lock (_publishers)
                {
                    _publishers.Add(c);
                    publisherIndex[c] = i;
                }
                lock (_receiveLoops) _receiveLoops.Add(c.ReceiveLoopAsync());
                await Task.CompletedTask;
            }, sendBufferSize: 128 * 1024);
            s.ConnectSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;

            using var stop = new CancellationTokenSource();
            double rate = o.PerPublisherRate;
            if (rate == 0 && o.FanFactor > 0)
            {
                _run.FanFactor = o.FanFactor;
                _run.OutstandingLimit = o.MaxOutstanding;
            }
            // Paced publishers are spread evenly over one interval (publisher i starts i/N of it late), as
            // clients that connect one after another are: together they offer a steady rate, not a burst
            // of N messages per timer tick that measures the generator's own queueing.
            long epoch = Stopwatch.GetTimestamp();
            int publisherCount = _publishers.Count;
            var publishing = _publishers
                .Select(p => Task.Run(() => p.PublishLoopAsync(o, BenchOptions.Template(o.PublishTopic, publisherIndex[p]), rate,
                    epoch, (double)publisherIndex[p] / publisherCount, stop.Token)))
                .ToArray();

            if (o.WarmupSeconds > 0) await Task.Delay(TimeSpan.FromSeconds(o.WarmupSeconds));
            long sent0 = TotalSent(), received0 = TotalReceived();
            double? cpu0 = _probe?.CpuSeconds();
            var window = Stopwatch.StartNew();
            _run.Measuring = true;

            await Task.Delay(TimeSpan.FromSeconds(o.DurationSeconds));
            stop.Cancel();
            s.WindowSeconds = window.Elapsed.TotalSeconds;
            long received1 = TotalReceived();
            double? cpu1 = _probe?.CpuSeconds();
            // A publisher blocked in a send (the broker is not reading) finishes that batch; count it as sent.
            await Task.WhenAny(Task.WhenAll(publishing), Task.Delay(TimeSpan.FromSeconds(2)));
            long sent1 = TotalSent();
            if (_probe is not null)
            {
                s.BrokerCpuSeconds = cpu1 - cpu0;
                s.BrokerRss = _probe.RssBytes();
                s.BrokerPeakRss = _probe.PeakRssBytes();
            }

            // Let what is on the way arrive (bounded), so received can be compared with sent x subscribers.
            long expected = (sent1 - sent0) * o.FanFactor;
            var drain = Stopwatch.StartNew();
            long last = TotalReceived(), lastChange = 0;
            while (drain.ElapsedMilliseconds < 2000 && o.HasPublishers && o.HasSubscribers)
            {
                long now = TotalReceived();
                if (now - received0 >= expected) break;
                if (now != last)
                {
                    last = now;
                    lastChange = drain.ElapsedMilliseconds;
                }
                else if (drain.ElapsedMilliseconds - lastChange > 300) break;
                await Task.Delay(20);
            }
            _run.Measuring = false;

            s.Sent = sent1 - sent0;
            s.ReceivedInWindow = received1 - received0;
            s.Received = TotalReceived() - received0;
            s.Expected = o.HasPublishers && o.HasSubscribers ? expected : null;
            var latency = new BenchHistogram();
            foreach (var sub in _subscribers)
            {
                if (sub.Latency is { } h) latency.Add(h);
            }
            s.Latency = latency;
            await CloseAllAsync();
            return Finish(s);
        }

        private BenchSummary NewSummary() => new()
        {
            Options = o,
            ClientIdBase = $"{o.ClientIdPrefix}-{Environment.ProcessId}",
        };

        private BenchSummary Finish(BenchSummary s)
        {
            s.Connected = _connected;
            s.ConnectFailed = _connectFailed;
            s.ConnectLatency = _connectLatency;
            s.Errors = Interlocked.Read(ref _run.Errors);
            s.FirstError = _run.FirstError;
            s.GeneratorPeakWorkingSet = Process.GetCurrentProcess().PeakWorkingSet64;
            return s;
        }

        private async Task CloseAllAsync()
        {
            _run.Closing = true;
            var all = _publishers.Concat(_subscribers).Concat(_idle).ToArray();
            await Task.WhenAll(all.Select(c => c.CloseAsync()));
            await Task.WhenAny(Task.WhenAll(_receiveLoops), Task.Delay(TimeSpan.FromSeconds(2)));
        }

        /// <summary>Connects <paramref name="count"/> clients with at most --concurrency handshakes at once and,
        /// when <paramref name="rate"/> is set, at most that many starts per second.</summary>
        private async Task ConnectManyAsync(int count, double rate, string role, int receiveBuffer, Func<int, BenchClient, Task> ready,
            int sendBufferSize = 0)
        {
            if (count == 0) return;
            int next = -1;
            var start = Stopwatch.GetTimestamp();
            string idBase = $"{o.ClientIdPrefix}-{Environment.ProcessId}-{role}";
            async Task Worker()
            {
                while (true)
                {
                    int i = Interlocked.Increment(ref next);
                    if (i >= count) return;
                    if (rate > 0)
                    {
                        double due = i / rate - Stopwatch.GetElapsedTime(start).TotalSeconds;
                        if (due > 0.001) await Task.Delay(TimeSpan.FromSeconds(due));
                    }
                    var source = o.SourceAddresses.Length > 0 ? o.SourceAddresses[i % o.SourceAddresses.Length] : null;
                    long t0 = Stopwatch.GetTimestamp();
                    try
                    {
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                        var endpoint = role == "s" && o.SubPort > 0 ? new IPEndPoint(((IPEndPoint)server).Address, o.SubPort) : server;
                        var c = await BenchClient.ConnectAsync(_run, o, endpoint, source, $"{idBase}{i}", receiveBuffer, sendBufferSize, timeout.Token);
                        long elapsed = Stopwatch.GetTimestamp() - t0;
                        lock (_connectLatency) _connectLatency.Record(elapsed);
                        await ready(i, c);
                        Interlocked.Increment(ref _connected);
                    }
                    catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or Protocol.MqttProtocolException)
                    {
                        Interlocked.Increment(ref _connectFailed);
                        _run.Error($"connect failed: {ex.Message}");
                    }
                }
            }
            await Task.WhenAll(Enumerable.Range(0, Math.Min(o.ConnectConcurrency, count)).Select(_ => Task.Run(Worker)));
        }

        /// <summary>Prints one line per second to stderr until disposed.</summary>
        private IDisposable StartReporter()
        {
            var cts = new CancellationTokenSource();
            if (o.Quiet) return new Canceller(cts);
            _ = Task.Run(async () =>
            {
                long lastSent = 0, lastReceived = 0;
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
                try
                {
                    while (await timer.WaitForNextTickAsync(cts.Token))
                    {
                        long sent, received, inflight = 0;
                        lock (_publishers) sent = TotalSent();
                        lock (_subscribers) received = TotalReceived();
                        if (o.QoS != Protocol.QoS.AtMostOnce)
                        {
                            lock (_publishers) inflight = _publishers.Sum(p => p.Inflight);
                        }
                        Console.Error.WriteLine(string.Create(Inv,
                            $"[{_clock.Elapsed.TotalSeconds,6:F1}s] conns={Volatile.Read(ref _connected)} sent/s={sent - lastSent} recv/s={received - lastReceived} inflight={inflight} errors={Interlocked.Read(ref _run.Errors)}{(_run.Measuring ? "" : " (warm-up)")}"));
                        lastSent = sent;
                        lastReceived = received;
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
            return new Canceller(cts);
        }
    }

    private sealed class Canceller(CancellationTokenSource cts) : IDisposable
    {
        public void Dispose()
        {
            cts.Cancel();
        }
    }
}
