using System.Net.Sockets;
using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// DESIGN decision 4 end to end: a subscriber that stops reading is bounded by its queue limits and counted when
/// it drops; it never stalls the publisher or a healthy subscriber of the same topic.
/// </summary>
public sealed class SlowSubscriberTests
{
    [Fact]
    public async Task StalledSubscriber_IsBounded_CountsDrops_AndNobodyElseWaits()
    {
        await using var broker = await MidgeProcess.StartAsync("max_queued_messages 100", "sys_interval 1");
        const int Messages = 100_000;
        var payload = new byte[512];

        // The stalled subscriber: subscribes, then never reads again (its socket buffers fill up).
        using var stalled = await RawMqttClient.ConnectMqttAsync(broker.Port, "stalled");
        await stalled.SendAsync(RawMqttClient.Subscribe(1, "flood", 0));
        Assert.Equal(9, (await stalled.ReadAsync(TimeSpan.FromSeconds(5)))?.Type);

        // The healthy subscriber counts every PUBLISH it receives.
        using var healthy = new TcpClient();
        await healthy.ConnectAsync("127.0.0.1", broker.Port);
        var hs = healthy.GetStream();
        await hs.WriteAsync(RawMqttClient.Connect("healthy"));
        await hs.WriteAsync(RawMqttClient.Subscribe(1, "flood", 0));
        long received = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var counting = Task.Run(async () =>
        {
            var buf = new byte[1 << 16];
            int state = 0, need = 0, mult = 1, len = 0;
            while (Interlocked.Read(ref received) < Messages)
            {
                int n = await hs.ReadAsync(buf, stop.Token);
                if (n == 0) break;
                for (int k = 0; k < n;)
                {
                    if (state == 0) { if (buf[k] >> 4 == 3) Interlocked.Increment(ref received); state = 1; len = 0; mult = 1; k++; }
                    else if (state == 1) { len += (buf[k] & 127) * mult; mult *= 128; if ((buf[k] & 128) == 0) state = (need = len) == 0 ? 0 : 2; k++; }
                    else { int take = Math.Min(need, n - k); need -= take; k += take; if (need == 0) state = 0; }
                }
            }
        });

        // The publisher floods QoS 0 and must never be held back by the stalled reader.
        using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, "publisher");
        var one = RawMqttClient.Publish("flood", payload);
        var batch = new byte[one.Length * 500];
        for (int i = 0; i < 500; i++) one.CopyTo(batch, i * one.Length);
        // The publisher keeps at most 10,000 messages (5 MB) ahead of the healthy subscriber, well inside its 16 MiB
        // writer bound, so a test reader starved of CPU on a loaded machine is not a drop; the stalled subscriber
        // gets all 52 MB and must drop. Before: an unpaced flood made the healthy one drop too under CI load.
        const int Window = 20;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < Messages / 500; i++)
        {
            while (Interlocked.Read(ref received) < (long)(i - Window) * 500 && !counting.IsCompleted && sw.Elapsed < TimeSpan.FromSeconds(60))
                await Task.Delay(1);
            await publisher.SendAsync(batch);
        }
        var publishTime = sw.Elapsed;

        await counting.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(Messages, Interlocked.Read(ref received)); // the healthy subscriber lost nothing
        Assert.True(publishTime < TimeSpan.FromSeconds(30), $"publishing took {publishTime}");

        // The broker says it dropped for the stalled one, and still serves everyone else.
        long dropped = 0;
        for (var deadline = DateTime.UtcNow.AddSeconds(10); dropped == 0 && DateTime.UtcNow < deadline; await Task.Delay(200))
        {
            using var sys = await RawMqttClient.ConnectMqttAsync(broker.Port, "sys-" + Guid.NewGuid().ToString("N")[..6]);
            await sys.SendAsync(RawMqttClient.Subscribe(1, "$SYS/broker/publish/messages/dropped", 0));
            await sys.ReadAsync(TimeSpan.FromSeconds(5)); // SUBACK
            var retained = await sys.ReadAsync(TimeSpan.FromSeconds(5));
            if (retained?.Type == 3)
            {
                var text = Encoding.ASCII.GetString(retained.Body);
                dropped = long.Parse(text[(text.IndexOf("dropped", StringComparison.Ordinal) + 7)..]);
            }
        }
        Assert.True(dropped > 0, "expected drops for the stalled subscriber to be counted");
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
    }

    /// <summary>The broker's resident memory in bytes (VmRSS).</summary>
    private static long ResidentBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        throw new InvalidOperationException("no VmRSS");
    }

    [Fact]
    public async Task StalledSubscriber_LargeMessages_AreBoundedByMaxQueuedBytes()
    {
        // Before: the writer's backlog was capped at 65,536 packets whatever their size, so 64 KB messages for a
        // subscriber that stopped reading grew the broker by gigabytes, past max_queued_bytes.
        await using var broker = await MidgeProcess.StartAsync("max_queued_bytes 10000000");
        using var stalled = await RawMqttClient.ConnectMqttAsync(broker.Port, "stalled");
        await stalled.SendAsync(RawMqttClient.Subscribe(1, "big", 0));
        Assert.Equal(9, (await stalled.ReadAsync(TimeSpan.FromSeconds(5)))?.Type);
        await RawMqttClient.AssertRoundTripAsync(broker.Port); // warm: the figures below are the flood's
        long before = ResidentBytes(broker.ProcessId);

        using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, "publisher");
        var one = RawMqttClient.Publish("big", new byte[64 * 1024]);
        for (int i = 0; i < 8000; i++) await publisher.SendAsync(one); // 512 MB for the stalled subscriber
        await RawMqttClient.AssertRoundTripAsync(broker.Port); // everything sent has been handled
        long grown = ResidentBytes(broker.ProcessId) - before;

        // 10 MB in the writer, 10 MB in the queue, the sockets' buffers and the collector's slack (garbage not yet
        // collected: 30-130 MB in runs here); unbounded, the 512 MB would all be held.
        Assert.True(grown < 200L * 1024 * 1024, $"the broker grew by {grown / (1024 * 1024)} MB");
        Assert.True(await broker.WaitForLogAsync("Outgoing messages are being dropped for client stalled.", TimeSpan.FromSeconds(5)), broker.Log);

        // The stalled client goes: what was held for it is given back to the system, not kept by the process.
        long peak = ResidentBytes(broker.ProcessId);
        stalled.Dispose();
        long now = peak;
        for (var deadline = DateTime.UtcNow.AddSeconds(15); DateTime.UtcNow < deadline; await Task.Delay(250))
        {
            now = ResidentBytes(broker.ProcessId);
            if (now - before < (peak - before) / 2) break;
        }
        Assert.True(now - before < (peak - before) / 2,
            $"resident memory {before / (1024 * 1024)} MB before the flood, {peak / (1024 * 1024)} MB at its end, {now / (1024 * 1024)} MB after the client left");
    }
}
