using System.Globalization;
using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// <c>persistence true</c> with the real executable: what was acknowledged survives <c>kill -9</c> (queued messages,
/// retained messages, messages in flight, exactly once for QoS 2), snapshot mode loses what changed since its last
/// save, a store that cannot be used stops the start with a message naming the file, and Mosquitto's own
/// <c>mosquitto.db</c> is taken over.
/// </summary>
public sealed class PersistenceTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _data = MidgeProcess.NewDirectory();

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string[] Persistence(params string[] more) => ["persistence true", $"persistence_location {_data}/", .. more];

    private Task<MidgeProcess> StartAsync(params string[] more) => MidgeProcess.StartAsync(Persistence(more));

    /// <summary>kill -9: nothing is flushed or closed on the way out.</summary>
    private static async Task KillAsync(MidgeProcess broker)
    {
        Assert.True(broker.Signal(Signals.SIGKILL));
        var deadline = DateTime.UtcNow + Wait;
        while (!broker.HasExited && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.True(broker.HasExited);
    }

    private static string Port(MidgeProcess broker) => broker.Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>mosquitto_pub -l: one message per line of <paramref name="lines"/>, each acknowledged before it exits.</summary>
    private static async Task PublishLinesAsync(MidgeProcess broker, IEnumerable<string> lines, params string[] arguments)
    {
        string input = Path.Combine(MidgeProcess.NewDirectory(), "lines");
        await File.WriteAllLinesAsync(input, lines);
        string command = $"mosquitto_pub -h 127.0.0.1 -p {Port(broker)} -l {string.Join(' ', arguments)} < {input}";
        var result = await PeerProcess.RunAsync("sh", ["-c", command], Wait);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private static async Task CreateSessionAsync(MidgeProcess broker, string clientId, string filter, params string[] more)
    {
        using var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%t %p", ["-c", "-i", clientId, "-q", "1", "-t", filter, "-E", .. more]);
        await sub.WaitAsync(Wait);
    }

    [Fact]
    public async Task Acknowledged_queued_and_retained_messages_survive_kill_9()
    {
        var broker = await StartAsync();
        await using (broker)
        {
            await CreateSessionAsync(broker, "keeper", "t/#");
            var numbers = Enumerable.Range(1, 1000).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
            await PublishLinesAsync(broker, numbers, "-q", "1", "-t", "t/n");
            var retained = await MosquittoClients.PublishAsync(broker.Port, "-q", "1", "-r", "-t", "r/state", "-m", "on");
            Assert.True(retained.ExitCode == 0, retained.ToString());
            await KillAsync(broker);
        }

        await using var restarted = await StartAsync();
        using var sub = await MosquittoClients.SubscribeAsync(restarted.Port, "%p", "-c", "-i", "keeper", "-q", "1", "-t", "t/#", "-C", "1000");
        var (result, messages) = await sub.WaitAsync(Wait);
        Assert.True(messages.Length == 1000, $"{messages.Length} of 1000 arrived; {result}\n{restarted.Log}");
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => i.ToString(CultureInfo.InvariantCulture)), messages);

        var (_, kept) = await (await MosquittoClients.SubscribeAsync(restarted.Port, "%t %p %r", "-t", "r/#", "-C", "1")).WaitAsync(Wait);
        Assert.Equal(["r/state on 1"], kept);
    }

    [Fact]
    public async Task Inflight_is_resent_with_DUP_and_QoS_2_stays_exactly_once_across_kill_9()
    {
        var broker = await StartAsync();
        await using (broker)
        {
            // A persistent subscriber that receives a QoS 1 message and never acknowledges it.
            using (var sub = await ConnectAsync(broker.Port, "slow", cleanSession: false))
            {
                await sub.SendAsync(RawMqttClient.Subscribe(1, "t", qos: 1));
                Assert.Equal(9, (await sub.ReadAsync(Wait))!.Type); // SUBACK
                using var pub = await ConnectAsync(broker.Port, "pub", cleanSession: false);
                await pub.SendAsync(Publish("t", "first", qos: 1, packetId: 1));
                Assert.Equal(4, (await pub.ReadAsync(Wait))!.Type); // PUBACK: on disk
                var delivered = (await sub.ReadAsync(Wait))!;
                Assert.Equal(0x32, delivered.Header); // QoS 1, DUP clear

                // A QoS 2 message from a persistent publisher: PUBREC, and the broker dies before PUBREL.
                await pub.SendAsync(Publish("q2", "once", qos: 2, packetId: 7));
                Assert.Equal(5, (await pub.ReadAsync(Wait))!.Type); // PUBREC
                await KillAsync(broker);
            }
        }

        await using var restarted = await StartAsync();
        using var watcher = await MosquittoClients.SubscribeAsync(restarted.Port, "%t %p", "-t", "q2", "-q", "2");
        using var again = await ConnectAsync(restarted.Port, "slow", cleanSession: false, sessionPresent: true);
        var resent = (await again.ReadAsync(Wait))!;
        Assert.Equal(0x3A, resent.Header); // QoS 1 with DUP
        Assert.EndsWith("first", Encoding.UTF8.GetString(resent.Body));

        using var pubAgain = await ConnectAsync(restarted.Port, "pub", cleanSession: false, sessionPresent: true);
        var dup = Publish("q2", "once", qos: 2, packetId: 7);
        dup[0] |= 0x08;
        await pubAgain.SendAsync(dup);
        Assert.Equal(5, (await pubAgain.ReadAsync(Wait))!.Type); // PUBREC: known, not routed again
        await pubAgain.SendAsync([0x62, 0x02, 0x00, 0x07]); // PUBREL
        Assert.Equal(7, (await pubAgain.ReadAsync(Wait))!.Type); // PUBCOMP
        await Task.Delay(300);
        Assert.DoesNotContain(MosquittoClients.Marker, watcher.Output);
    }

    [Fact]
    public async Task A_ban_made_through_the_HTTP_API_outlives_a_restart_and_its_lifting_too()
    {
        File.WriteAllLines(Path.Combine(_data, "keys"), ["admin:secret"]);
        async Task<(MidgeProcess Broker, HttpClient Http)> StartWithApiAsync()
        {
            int httpPort = FreePort.Next();
            var broker = await StartAsync($"listener {httpPort} 127.0.0.1", "protocol http", $"api_key_file {_data}/keys");
            await HttpApiTests.WaitForHttpAsync(httpPort);
            var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = Wait };
            http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String("admin:secret"u8));
            return (broker, http);
        }

        var (broker, http) = await StartWithApiAsync();
        await using (broker)
        {
            using (http)
            {
                var ban = await http.PostAsync("/api/v5/banned",
                    new StringContent("""{"as":"clientid","who":"banned-one","reason":"spam"}""", Encoding.UTF8, "application/json"));
                Assert.Equal(System.Net.HttpStatusCode.OK, ban.StatusCode);
            }
            await broker.StopAsync(Wait);
        }

        (broker, http) = await StartWithApiAsync();
        await using (broker)
        {
            using (http)
            {
                Assert.Contains("\"who\":\"banned-one\"", await http.GetStringAsync("/api/v5/banned"), StringComparison.Ordinal);
                var refused = await MosquittoClients.PublishAsync(broker.Port, "-V", "5", "-i", "banned-one", "-t", "t", "-m", "x");
                Assert.NotEqual(0, refused.ExitCode);
                Assert.True(await broker.WaitForLogAsync("banned (clientid 'banned-one', by http_api)", Wait), broker.Log);
                Assert.Equal(System.Net.HttpStatusCode.NoContent, (await http.DeleteAsync("/api/v5/banned/clientid/banned-one")).StatusCode);
            }
            await broker.StopAsync(Wait);
        }

        (broker, http) = await StartWithApiAsync();
        await using (broker)
        {
            using (http)
            {
                Assert.DoesNotContain("banned-one", await http.GetStringAsync("/api/v5/banned"), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Snapshot_mode_keeps_what_a_clean_stop_saved_and_loses_what_came_after_the_last_save()
    {
        var broker = await StartAsync("persistence_mode snapshot", "autosave_interval 0");
        await using (broker)
        {
            await CreateSessionAsync(broker, "keeper", "t/#");
            await PublishLinesAsync(broker, ["saved"], "-q", "1", "-t", "t/a");
            var stopped = await broker.StopAsync(Wait); // a clean stop saves
            Assert.True(stopped.ExitCode == 0, stopped.ToString());
        }
        var second = await StartAsync("persistence_mode snapshot", "autosave_interval 0");
        await using (second)
        {
            await PublishLinesAsync(second, ["lost"], "-q", "1", "-t", "t/b");
            await KillAsync(second); // nothing saved since the start
        }
        await using var third = await StartAsync("persistence_mode snapshot", "autosave_interval 0");
        using var sub = await MosquittoClients.SubscribeAsync(third.Port, "%p", "-c", "-i", "keeper", "-q", "1", "-t", "t/#", "-W", "3");
        var (_, messages) = await sub.WaitAsync(Wait);
        Assert.Equal(["saved"], messages);
    }

    [Fact]
    public async Task A_store_that_cannot_be_used_stops_the_start_naming_the_file()
    {
        // Not a database.
        string file = Path.Combine(_data, "mosquitto.db");
        await File.WriteAllTextAsync(file, "this is not a database, and not Mosquitto's either\n");
        var result = await MidgeProcess.RunAsync(Wait, "-c", WriteConfig(Persistence()));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(file, result.Stderr + result.Stdout);

        // A directory that does not exist.
        string missing = Path.Combine(_data, "no", "such", "dir");
        result = await MidgeProcess.RunAsync(Wait, "-c", WriteConfig("persistence true", $"persistence_location {missing}/"));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(Path.Combine(missing, "mosquitto.db"), result.Stderr + result.Stdout);
    }

    /// <summary>Debian's stock /etc/mosquitto/mosquitto.conf, its paths moved into the test's directory.</summary>
    private string DebianStockConfig(int port, out string pidFile, out string logFile, out string store)
    {
        string root = Path.Combine(_data, "debian");
        string Dir(string path) => Path.Combine(root, path.TrimStart('/'));
        foreach (var dir in new[] { "/run/mosquitto", "/var/lib/mosquitto", "/var/log/mosquitto", "/etc/mosquitto/conf.d" })
        {
            Directory.CreateDirectory(Dir(dir));
        }
        string stock = File.ReadAllText("/etc/mosquitto/mosquitto.conf");
        Assert.Contains("persistence true", stock);
        foreach (var dir in new[] { "/run/mosquitto", "/var/lib/mosquitto", "/var/log/mosquitto", "/etc/mosquitto/conf.d" })
        {
            stock = stock.Replace(dir, Dir(dir), StringComparison.Ordinal);
        }
        string conf = Path.Combine(Dir("/etc/mosquitto"), "mosquitto.conf");
        File.WriteAllText(conf, stock);
        File.WriteAllLines(Path.Combine(Dir("/etc/mosquitto/conf.d"), "local.conf"), [$"listener {port} 127.0.0.1", "allow_anonymous true"]);
        pidFile = Path.Combine(Dir("/run/mosquitto"), "mosquitto.pid");
        logFile = Path.Combine(Dir("/var/log/mosquitto"), "mosquitto.log");
        store = Path.Combine(Dir("/var/lib/mosquitto"), "mosquitto.db");
        return conf;
    }

    [Fact]
    public async Task Debians_stock_configuration_starts_and_keeps_its_retained_messages()
    {
        int port = FreePort.Next();
        string conf = DebianStockConfig(port, out string pidFile, out string logFile, out string store);
        var broker = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);
        await using (broker)
        {
            // The pid file is written once the listeners are up: a moment after the port accepts.
            for (int i = 0; i < 100 && !File.Exists(pidFile); i++) await Task.Delay(50);
            Assert.Equal(broker.ProcessId.ToString(CultureInfo.InvariantCulture), File.ReadAllText(pidFile).Trim());
            var r = await MosquittoClients.PublishAsync(port, "-q", "1", "-r", "-t", "stock/kept", "-m", "yes");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.True(File.Exists(store));
            await KillAsync(broker);
        }
        Assert.Contains("Opening ipv4 listen socket on port", File.ReadAllText(logFile));

        await using var restarted = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);
        var sub = await PeerProcess.RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture),
            "-t", "stock/#", "-C", "1", "-W", "5", "-F", "%t %p %r"], Wait);
        Assert.Equal(["stock/kept yes 1"], sub.Lines);
    }

    [Fact]
    public async Task Debians_stock_configuration_names_the_path_it_cannot_use()
    {
        int port = FreePort.Next();
        string conf = DebianStockConfig(port, out _, out _, out string store);
        Directory.Delete(Path.GetDirectoryName(store)!);
        var result = await MidgeProcess.RunAsync(Wait, "-c", conf);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(Path.GetDirectoryName(store)!, result.Stderr + result.Stdout);
    }

    [Fact]
    public async Task A_second_broker_on_the_same_store_is_refused()
    {
        await using var first = await StartAsync();
        var second = await MidgeProcess.RunAsync(Wait, "-c", WriteConfig(Persistence()));
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("another broker has it open", second.Stderr + second.Stdout);
        Assert.Contains(Path.Combine(_data, "mosquitto.db"), second.Stderr + second.Stdout);
        await RawMqttClient.AssertRoundTripAsync(first.Port); // the first goes on
    }

    [Fact]
    public async Task Mosquittos_database_is_taken_over()
    {
        // The real Mosquitto saves a persistent session with queued messages, and a retained message.
        int port = FreePort.Next();
        string conf = Path.Combine(_data, "mosquitto-broker.conf");
        // As root, Mosquitto would switch to the mosquitto user, which cannot write the test's directory.
        await File.WriteAllLinesAsync(conf, [$"listener {port} 127.0.0.1", "allow_anonymous true", $"user {Environment.UserName}", .. Persistence()]);
        using (var mosquitto = PeerProcess.Start("/usr/sbin/mosquitto", ["-c", conf]))
        {
            Assert.True(await WaitForPortAsync(port), mosquitto.Stderr);
            using (var s = await MosquittoClients.SubscribeAsync(port, "%p", "-c", "-i", "moved", "-q", "1", "-t", "m/#", "-E"))
            {
                await s.WaitAsync(Wait);
            }
            foreach (var m in new[] { "one", "two" })
            {
                var r = await MosquittoClients.PublishAsync(port, "-q", "1", "-t", "m/x", "-m", m);
                Assert.True(r.ExitCode == 0, r.ToString());
            }
            var retained = await MosquittoClients.PublishAsync(port, "-r", "-t", "m/retained", "-m", "kept");
            Assert.True(retained.ExitCode == 0, retained.ToString());
            Assert.True(mosquitto.Signal(Signals.SIGTERM));
            var exited = await mosquitto.WaitAsync(Wait);
            Assert.False(exited.TimedOut);
        }
        string db = Path.Combine(_data, "mosquitto.db");
        byte[] mosquittoFile = await File.ReadAllBytesAsync(db);

        var midge = await StartAsync();
        await using (midge)
        {
            Assert.True(await midge.WaitForLogAsync("Took over Mosquitto's database", Wait), midge.Log);
            using var sub = await MosquittoClients.SubscribeAsync(midge.Port, "%t %p", "-c", "-i", "moved", "-q", "1", "-t", "m/#", "-C", "3");
            var (result, messages) = await sub.WaitAsync(Wait);
            Assert.True(messages.Length == 3, result + midge.Log);
            Assert.Equal(["m/x one", "m/x two"], messages.Where(m => m.StartsWith("m/x", StringComparison.Ordinal)));
            Assert.Contains("m/retained kept", messages);
        }
        Assert.Equal(mosquittoFile, await File.ReadAllBytesAsync(db)); // Mosquitto's file is left as it was
        Assert.True(File.Exists(db + ".midge"));

        // The next start uses Midge's store: nothing is imported twice (the queued messages were delivered).
        await using var again = await StartAsync();
        var rest = await PeerProcess.RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", Port(again), "-c", "-i", "moved", "-q", "1",
            "-t", "m/x", "-W", "2", "-F", "%t %p"], Wait);
        Assert.Empty(rest.Lines);
        Assert.DoesNotContain("Took over", again.Log);
    }

    private string WriteConfig(params string[] lines)
    {
        string path = Path.Combine(MidgeProcess.NewDirectory(), "midge.conf");
        File.WriteAllLines(path, [.. MidgeProcess.BaseConfig(FreePort.Next()), .. lines]);
        return path;
    }

    private static async Task<bool> WaitForPortAsync(int port)
    {
        for (int i = 0; i < 200; i++)
        {
            if (await FreePort.AcceptsAsync(port)) return true;
            await Task.Delay(25);
        }
        return false;
    }

    private static async Task<RawMqttClient> ConnectAsync(int port, string clientId, bool cleanSession, bool sessionPresent = false)
    {
        var client = await RawMqttClient.ConnectTcpAsync(port);
        await client.SendAsync(RawMqttClient.Connect(clientId, connectFlags: cleanSession ? (byte)0x02 : (byte)0x00));
        var connack = (await client.ReadAsync(Wait))!;
        Assert.Equal(2, connack.Type);
        Assert.Equal((sessionPresent ? 1 : 0, 0), (connack.Body[0], connack.Body[1]));
        return client;
    }

    private static byte[] Publish(string topic, string payload, int qos, ushort packetId)
    {
        var body = new List<byte>();
        var t = Encoding.UTF8.GetBytes(topic);
        body.Add((byte)(t.Length >> 8));
        body.Add((byte)t.Length);
        body.AddRange(t);
        body.Add((byte)(packetId >> 8));
        body.Add((byte)packetId);
        body.AddRange(Encoding.UTF8.GetBytes(payload));
        return RawMqttClient.Frame((byte)(0x30 | (qos << 1)), body);
    }
}
