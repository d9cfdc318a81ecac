using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Midge's bridges (docs/bridges.md) against real peers: Debian's mosquitto as the remote, Midge on both sides, TLS
/// with certificates, the remote restarted in the middle of a stream, a remote that refuses the credentials, and the
/// two- and three-server set-ups of docs/bridges.md.
/// </summary>
public class BridgeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static async Task PublishAsync(int port, string topic, string payload, int qos)
    {
        var sent = await MosquittoClients.PublishAsync(port, "-t", topic, "-m", payload, "-q", qos.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(0, sent.ExitCode);
    }

    private static string[] BridgeLines(int remotePort, string version, params string[] topics) =>
    [
        "connection up",
        $"address 127.0.0.1:{remotePort}",
        $"bridge_protocol_version {version}",
        "restart_timeout 1",
        .. topics.Select(t => "topic " + t),
    ];

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv50")]
    [InlineData("mqttv31")]
    public async Task ToMosquitto_OutInBoth_WithPrefixes_QoS1And2(string version)
    {
        await using var remote = await MosquittoBroker.StartAsync("allow_anonymous true");
        await using var midge = await MidgeProcess.StartAsync(BridgeLines(remote.Port, version,
            "out/# out 1", "in/# in 1", "# both 2 loc/ rem/"));
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Timeout), midge.Log);
        await using var remoteSub = await Collector.StartAsync(remote.Port, QoS.ExactlyOnce, "out/#", "rem/#", "in/#");
        await using var localSub = await Collector.StartAsync(midge.Port, QoS.ExactlyOnce, "in/#", "loc/#", "out/#");
        await Task.Delay(500); // the bridge's remote subscriptions

        await PublishAsync(midge.Port, "out/a", "m1", 1);
        await PublishAsync(remote.Port, "in/b", "m2", 1);
        await PublishAsync(midge.Port, "loc/x", "m3", 2);
        await PublishAsync(remote.Port, "rem/y", "m4", 2);

        Assert.True(await remoteSub.WaitForAsync(m => m.Contains("out/a m1") && m.Contains("rem/x m3") && m.Contains("rem/y m4"), Timeout),
            string.Join('\n', remoteSub.Messages) + midge.Log + remote.Log);
        Assert.True(await localSub.WaitForAsync(m => m.Contains("in/b m2") && m.Contains("loc/y m4") && m.Contains("loc/x m3"), Timeout),
            string.Join('\n', localSub.Messages) + midge.Log);
        await Task.Delay(1000); // any echo or loop would show by now
        // Each subscriber got each message exactly once: a 'both' bridge makes no loop, 'in' topics do not go back out.
        Assert.All(new[] { "out/a m1", "rem/x m3", "rem/y m4", "in/b m2" }, m => Assert.Equal(1, remoteSub.Count(m)));
        Assert.All(new[] { "in/b m2", "loc/y m4", "loc/x m3", "out/a m1" }, m => Assert.Equal(1, localSub.Count(m)));
    }

    [Fact]
    public async Task Notifications_StateOnBothSides_AndZeroWhenTheRemoteGoes()
    {
        var remote = await MosquittoBroker.StartAsync("allow_anonymous true");
        await using var midge = await MidgeProcess.StartAsync(BridgeLines(remote.Port, "mqttv311", "x/# out 0"));
        string topic = $"$SYS/broker/connection/{System.Net.Dns.GetHostName()}.up/state";
        await using var local = await Collector.StartAsync(midge.Port, QoS.AtLeastOnce, "$SYS/broker/connection/#");
        Assert.True(await local.WaitForAsync($"{topic} 1", Timeout), midge.Log);
        await using (var onRemote = await Collector.StartAsync(remote.Port, QoS.AtLeastOnce, "$SYS/broker/connection/#"))
        {
            Assert.True(await onRemote.WaitForAsync($"{topic} 1", Timeout), remote.Log);
        }
        await remote.DisposeAsync();
        Assert.True(await local.WaitForAsync(m => m.Length > 0 && m[^1] == $"{topic} 0", Timeout), string.Join('\n', local.Messages) + midge.Log);
    }

    [Fact]
    public async Task RefusedCredentials_BackOff_StateStaysZero()
    {
        string dir = MidgeProcess.NewDirectory();
        var passwd = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(10), "passwd", "-b", "-c", Path.Combine(dir, "pw"), "alice", "secret");
        Assert.Equal(0, passwd.ExitCode);
        await using var remote = await MosquittoBroker.StartAsync("allow_anonymous false", $"password_file {Path.Combine(dir, "pw")}");
        await using var midge = await MidgeProcess.StartAsync([.. BridgeLines(remote.Port, "mqttv311", "x/# out 1"),
            "remote_username alice", "remote_password wrong", "restart_timeout 1 2"]);
        Assert.True(await midge.WaitForLogAsync("refused the connection", Timeout), midge.Log + remote.Log);
        await Task.Delay(3000);
        int refusals = midge.Log.Split("refused the connection").Length - 1;
        // Backed off: at 1-2 s between attempts, a few refusals in 3 s, not a busy loop.
        Assert.InRange(refusals, 1, 5);
        Assert.Contains("next attempt in", midge.Log, StringComparison.Ordinal);
        await using var local = await Collector.StartAsync(midge.Port, QoS.AtLeastOnce, "$SYS/broker/connection/#");
        Assert.True(await local.WaitForAsync(m => m.Any(x => x.EndsWith("/state 0", StringComparison.Ordinal)), Timeout));
        Assert.DoesNotContain(local.Messages, m => m.EndsWith("/state 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Tls_ToMosquitto_WithCertificates()
    {
        using var pki = new TestPki();
        var ca = pki.CreateCa("ca");
        pki.CreateServer(ca, "server");
        pki.CreateClient(ca, "client", "CN=bridge");
        int tlsPort = FreePort.Next();
        await using var remote = await MosquittoBroker.StartAsync("allow_anonymous true", $"listener {tlsPort} 127.0.0.1",
            $"cafile {pki.PathOf("ca.pem")}", $"certfile {pki.PathOf("server.pem")}", $"keyfile {pki.PathOf("server.key")}", "require_certificate true");
        await using var midge = await MidgeProcess.StartAsync(
            "connection up", $"address 127.0.0.1:{tlsPort}", "restart_timeout 1", "topic secure/# both 1",
            $"bridge_cafile {pki.PathOf("ca.pem")}", $"bridge_certfile {pki.PathOf("client.pem")}", $"bridge_keyfile {pki.PathOf("client.key")}");
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Timeout), midge.Log + remote.Log);
        await using var remoteSub = await Collector.StartAsync(remote.Port, QoS.AtLeastOnce, "secure/#");
        await PublishAsync(midge.Port, "secure/a", "over-tls", 1);
        Assert.True(await remoteSub.WaitForAsync("secure/a over-tls", Timeout), midge.Log + remote.Log);
    }

    [Fact]
    public async Task MidgeToMidge_Both_Mqtt5_NoLoops()
    {
        await using var remote = await MidgeProcess.StartAsync();
        await using var midge = await MidgeProcess.StartAsync(BridgeLines(remote.Port, "mqttv50", "shared/# both 2"));
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Timeout), midge.Log);
        await using var a = await Collector.StartAsync(midge.Port, QoS.ExactlyOnce, "shared/#");
        await using var b = await Collector.StartAsync(remote.Port, QoS.ExactlyOnce, "shared/#");
        await Task.Delay(500);
        await PublishAsync(midge.Port, "shared/1", "from-local", 2);
        await PublishAsync(remote.Port, "shared/2", "from-remote", 1);
        foreach (var c in new[] { a, b })
        {
            Assert.True(await c.WaitForAsync(m => m.Contains("shared/1 from-local") && m.Contains("shared/2 from-remote"), Timeout), midge.Log + remote.Log);
        }
        await Task.Delay(1000);
        foreach (var c in new[] { a, b })
        {
            Assert.Equal(1, c.Count("shared/1 from-local"));
            Assert.Equal(1, c.Count("shared/2 from-remote"));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task RemoteRestartedMidStream_NothingLost_QoS2Once(int qos)
    {
        await using var remote = new RestartableMosquitto();
        await remote.StartAsync();
        await using var midge = await MidgeProcess.StartAsync(BridgeLines(remote.Port, "mqttv311", $"stream/# out {qos}"));
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Timeout), midge.Log);
        // A persistent subscriber on the remote: its session and queue survive the restart (persistence true).
        var subOptions = new MqttClientOptions { Host = "127.0.0.1", Port = remote.Port, ClientId = "stream-sub", CleanStart = false, Reconnect = new ReconnectPolicy { Enabled = true, InitialDelay = TimeSpan.FromMilliseconds(200), MaxDelay = TimeSpan.FromSeconds(1) } };
        await using var sub = new MqttClient(subOptions);
        await sub.ConnectAsync();
        await sub.SubscribeAsync("stream/#", (QoS)qos);
        var got = new ConcurrentQueue<string>();
        var reader = Task.Run(async () =>
        {
            while (true)
            {
                try
                {
                    await foreach (var m in sub.Messages) got.Enqueue(Encoding.UTF8.GetString(m.Payload.Span));
                    return;
                }
                catch (Exception e) when (e is InvalidOperationException or System.Threading.Channels.ChannelClosedException)
                {
                    return;
                }
            }
        });
        var publisher = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = midge.Port, ClientId = "stream-pub" });
        await publisher.ConnectAsync();
        const int Count = 200;
        for (int i = 0; i < Count; i++)
        {
            await publisher.PublishAsync("stream/n", Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), (QoS)qos);
            if (i == Count / 2)
            {
                await remote.StopAsync();
                await Task.Delay(500);
                await remote.StartAsync();
            }
            await Task.Delay(5);
        }
        await publisher.DisposeAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && got.Distinct().Count() < Count) await Task.Delay(100);
        var received = got.ToArray();
        var missing = Enumerable.Range(0, Count).Select(i => i.ToString(CultureInfo.InvariantCulture)).Except(received).ToList();
        Assert.True(missing.Count == 0, $"missing {missing.Count}: {string.Join(',', missing.Take(20))}\n{midge.Log}");
        if (qos == 2)
        {
            await Task.Delay(1000);
            var dups = got.GroupBy(x => x).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.True(dups.Count == 0, $"duplicates: {string.Join(',', dups)}");
        }
    }

    /// <summary>A configuration block of docs/bridges.md, verbatim but for the listener lines (the test's own) and
    /// the addresses (HOST.example:1883 becomes 127.0.0.1 and the port of that test broker).</summary>
    private static string[] FromDocs(string heading, int index, Dictionary<string, int> ports)
    {
        string docs = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "bridges.md"));
        string section = docs[docs.IndexOf("## " + heading, StringComparison.Ordinal)..];
        var blocks = section.Split("```").Where((_, i) => i % 2 == 1).ToList();
        return blocks[index].Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("listener", StringComparison.Ordinal) && !l.StartsWith("allow_anonymous", StringComparison.Ordinal))
            .Select(l => ports.Aggregate(l, (line, p) => line.Replace($"{p.Key}.example:1883", $"127.0.0.1:{p.Value}", StringComparison.Ordinal)))
            .Append("restart_timeout 1")
            .ToArray();
    }

    private static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Midge.slnx"))) dir = Path.GetDirectoryName(dir)!;
        return dir;
    }

    [Fact]
    public async Task TwoServers_AsInTheDocs()
    {
        await using var central = await MidgeProcess.StartAsync();
        var lines = FromDocs("Two servers", 0, new() { ["central"] = central.Port });
        Assert.Contains("topic sensors/# out 1", lines);
        await using var edge = await MidgeProcess.StartAsync(lines.Where(l => !l.StartsWith('#')).ToArray());
        Assert.True(await edge.WaitForLogAsync("Bridge central connected", Timeout), edge.Log);
        await using var onCentral = await Collector.StartAsync(central.Port, QoS.AtLeastOnce, "sensors/#", "commands/#");
        await using var onEdge = await Collector.StartAsync(edge.Port, QoS.AtLeastOnce, "sensors/#", "commands/#");
        await Task.Delay(500);
        await PublishAsync(edge.Port, "sensors/t1", "21.5", 1);
        await PublishAsync(central.Port, "commands/t1", "off", 1);
        Assert.True(await onCentral.WaitForAsync(m => m.Contains("sensors/t1 21.5") && m.Contains("commands/t1 off"), Timeout), edge.Log);
        Assert.True(await onEdge.WaitForAsync(m => m.Contains("sensors/t1 21.5") && m.Contains("commands/t1 off"), Timeout), edge.Log);
        await Task.Delay(1000);
        Assert.All(new[] { onCentral, onEdge }, c => Assert.Equal(2, c.Messages.Count));
    }

    [Fact]
    public async Task ThreeServers_AsInTheDocs_EverySubscriberGetsEachMessageOnce()
    {
        await using var a = await MidgeProcess.StartAsync();
        await using var b = await MidgeProcess.StartAsync();
        var lines = FromDocs("Three servers", 0, new() { ["a"] = a.Port, ["b"] = b.Port });
        Assert.Contains("connection to-b", lines);
        await using var master = await MidgeProcess.StartAsync(lines.Where(l => !l.StartsWith('#')).ToArray());
        Assert.True(await master.WaitForLogAsync("Bridge to-a connected", Timeout), master.Log);
        Assert.True(await master.WaitForLogAsync("Bridge to-b connected", Timeout), master.Log);
        var servers = new[] { ("master", master.Port), ("a", a.Port), ("b", b.Port) };
        var collectors = new List<Collector>();
        foreach (var (_, port) in servers) collectors.Add(await Collector.StartAsync(port, QoS.AtLeastOnce, "cluster/#"));
        try
        {
            await Task.Delay(500);
            foreach (var (name, port) in servers) await PublishAsync(port, "cluster/" + name, "hello", 1);
            var expected = servers.Select(s => $"cluster/{s.Item1} hello").ToArray();
            foreach (var c in collectors)
            {
                Assert.True(await c.WaitForAsync(m => expected.All(m.Contains), Timeout), string.Join('\n', c.Messages) + master.Log);
            }
            await Task.Delay(1500); // a loop would bring more copies by now
            foreach (var c in collectors)
            {
                Assert.All(expected, e => Assert.Equal(1, c.Count(e)));
                Assert.Equal(3, c.Messages.Count);
            }
        }
        finally
        {
            foreach (var c in collectors) await c.DisposeAsync();
        }
    }
}
