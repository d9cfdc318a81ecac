using System.Globalization;
using System.Text.RegularExpressions;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The per-packet lines of <c>-v</c> and <c>log_type debug</c>: the same clients (mosquitto_sub and mosquitto_pub at
/// QoS 0, 1 and 2, MQTT 3.1.1 and 5, a will, a retained message, UNSUBSCRIBE, PINGREQ) run against Midge and
/// against Debian's Mosquitto, and each client's lines must read the same in both logs, but for ports.
/// </summary>
public sealed partial class PacketLogTests
{
    private const string Mosquitto = "/usr/sbin/mosquitto";

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static readonly string[] Clients = ["sub", "p0", "p1", "p2", "s5", "p5", "ret", "ping"];

    /// <summary>A running broker as the scenario sees it.</summary>
    private sealed record Target(int Port, Func<string> Log, Func<string, Task<bool>> WaitForLog);

    [Fact]
    public async Task Verbose_flag_writes_each_packet_as_Mosquitto_does()
    {
        int midgePort = FreePort.Next();
        await using var midge = await MidgeProcess.StartWithArgumentsAsync(midgePort, "-v", "-p", midgePort.ToString(CultureInfo.InvariantCulture));
        var midgeLines = await RunScenarioAsync(new Target(midgePort, () => midge.Log, t => midge.WaitForLogAsync(t, Wait)));

        int mosquittoPort = FreePort.Next();
        using var mosquitto = await StartMosquittoAsync(mosquittoPort, "-v", "-p", mosquittoPort.ToString(CultureInfo.InvariantCulture));
        var mosquittoLines = await RunScenarioAsync(MosquittoTarget(mosquitto, mosquittoPort));

        AssertSameLines(mosquittoLines, midgeLines);
        // The issue's lines, literally (and proof that the comparison did not compare nothing).
        Assert.Contains("New client connected from 127.0.0.1:PORT as p1 (p2, c1, k60).", midgeLines["p1"]);
        Assert.Contains("Sending CONNACK to p1 (0, 0)", midgeLines["p1"]);
        Assert.Contains("Received PUBLISH from p1 (d0, q1, r0, m1, 't', ... (5 bytes))", midgeLines["p1"]);
        Assert.Contains("Sending PUBACK to p1 (m1, rc0)", midgeLines["p1"]);
        Assert.Contains("Received DISCONNECT from p1", midgeLines["p1"]);
        Assert.Equal(["Received SUBSCRIBE from sub", "\tt (QoS 2)", "sub 2 t", "Sending SUBACK to sub"], midgeLines["sub"][3..7]);
        Assert.Contains("Sending PUBLISH to sub (d0, q0, r0, m0, 't', ... (5 bytes))", midgeLines["sub"]);
        Assert.Contains("Sending PUBREL to sub (m2)", midgeLines["sub"]);
        Assert.Contains("Received PUBREL from p2 (Mid: 1)", midgeLines["p2"]);
        Assert.Contains("Sending PUBCOMP to p2 (m1)", midgeLines["p2"]);
        Assert.Contains("Sending UNSUBACK to s5", midgeLines["s5"]);
        Assert.Contains("Will message specified (3 bytes) (r1, q1).", midgeLines["ret"]);
        Assert.Equal(["Received PINGREQ from ping", "Sending PINGRESP to ping"], midgeLines["ping"][3..5]);
    }

    [Fact]
    public async Task Log_type_debug_in_the_configuration_writes_each_packet_as_Mosquitto_does()
    {
        string dir = MidgeProcess.NewDirectory();
        int midgePort = FreePort.Next();
        string midgeConf = WriteConfig(dir, "midge.conf", midgePort, "log_type debug");
        await using var midge = await MidgeProcess.StartWithArgumentsAsync(midgePort, "-c", midgeConf);
        var midgeLines = await RunScenarioAsync(new Target(midgePort, () => midge.Log, t => midge.WaitForLogAsync(t, Wait)));

        int mosquittoPort = FreePort.Next();
        string mosquittoConf = WriteConfig(dir, "mosquitto.conf", mosquittoPort, "log_type debug");
        using var mosquitto = await StartMosquittoAsync(mosquittoPort, "-c", mosquittoConf);
        var mosquittoLines = await RunScenarioAsync(MosquittoTarget(mosquitto, mosquittoPort));

        AssertSameLines(mosquittoLines, midgeLines);
        Assert.Contains("Received PUBLISH from p2 (d0, q2, r1, m1, 't', ... (5 bytes))", midgeLines["p2"]);
        Assert.Contains("Sending PUBREC to p2 (m1, rc0)", midgeLines["p2"]);
        // Only debug: no notice ("New client connected"), no subscribe lines ("sub 2 t").
        Assert.DoesNotContain("New client connected", midge.Log);
        Assert.DoesNotContain(midgeLines["sub"], l => l == "sub 2 t");
    }

    [Fact]
    public async Task Without_debug_no_packet_is_written_until_a_reload_asks_for_it()
    {
        string dir = MidgeProcess.NewDirectory();
        int port = FreePort.Next();
        string conf = WriteConfig(dir, "midge.conf", port, "log_type notice");
        await using var midge = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);
        using var client = await RawMqttClient.ConnectMqttAsync(port, "idle");
        await PingAsync(client);
        Assert.True(await midge.WaitForLogAsync("New client connected from 127.0.0.1:", Wait), midge.Log);

        WriteConfig(dir, "midge.conf", port, "log_type notice", "log_type debug");
        Assert.True(midge.Signal(Signals.SIGHUP));
        Assert.True(await midge.WaitForLogAsync("Reloaded configuration", Wait), midge.Log);
        await PingAsync(client); // the same connection: nothing per connection keeps the old setting

        Assert.True(await midge.WaitForLogAsync("Sending PINGRESP to idle", Wait), midge.Log);
        Assert.Equal(1, Regex.Count(midge.Log, "Received PINGREQ from idle"));
        Assert.DoesNotContain("Sending CONNACK", midge.Log);
    }

    /// <summary>
    /// The clients, one after another: each waits (on the broker's log) for the one before, so that the order of a
    /// client's lines does not depend on timing. Returns the broker's lines per client.
    /// </summary>
    private static async Task<Dictionary<string, List<string>>> RunScenarioAsync(Target broker)
    {
        int port = broker.Port;
        // MQTT 3.1.1: a QoS 2 subscriber, publishers at QoS 0, 1 and 2 (retained).
        using (var sub = await MosquittoClients.SubscribeAsync(port, "%t %p", "-i", "sub", "-t", "t", "-q", "2", "-C", "3"))
        {
            // Each waits for the subscriber's side of the one before, which would otherwise race the next one.
            await PublishAsync(port, "-i", "p0", "-t", "t", "-m", "hello", "-q", "0");
            Assert.True(await broker.WaitForLog("Sending PUBLISH to sub (d0, q0"), broker.Log());
            await PublishAsync(port, "-i", "p1", "-t", "t", "-m", "hello", "-q", "1");
            Assert.True(await broker.WaitForLog("Received PUBACK from sub"), broker.Log());
            await PublishAsync(port, "-i", "p2", "-t", "t", "-m", "hello", "-q", "2", "-r");
            var (result, messages) = await sub.WaitAsync();
            Assert.True(messages.Length == 3, result.ToString());
        }
        await WaitForEndAsync(broker, "sub");

        // MQTT 5: two filters, one unsubscribed again; a QoS 2 publisher.
        using (var s5 = await MosquittoClients.SubscribeAsync(port, "%t %p",
                   "-V", "mqttv5", "-i", "s5", "-t", "t5", "-t", "x/#", "-q", "1", "-U", "x/#", "-C", "1"))
        {
            Assert.True(await broker.WaitForLog("Sending UNSUBACK to s5"), broker.Log());
            await PublishAsync(port, "-V", "mqttv5", "-i", "p5", "-t", "t5", "-m", "hello", "-q", "2");
            var (result, messages) = await s5.WaitAsync();
            Assert.True(messages.Length == 1, result.ToString());
        }
        await WaitForEndAsync(broker, "s5");

        // A will, and the retained message from p2.
        using (var ret = await MosquittoClients.SubscribeAsync(port, "%t %p", "-i", "ret", "-t", "t", "-q", "1", "-C", "1",
                   "--will-topic", "w", "--will-payload", "bye", "--will-qos", "1", "--will-retain"))
        {
            var (result, messages) = await ret.WaitAsync();
            Assert.True(messages.Length == 1, result.ToString());
        }
        await WaitForEndAsync(broker, "ret");

        using (var ping = await RawMqttClient.ConnectMqttAsync(port, "ping"))
        {
            await PingAsync(ping);
            await ping.SendAsync([0xE0, 0x00]);
        }
        await WaitForEndAsync(broker, "ping");
        return LinesPerClient(broker.Log());
    }

    /// <summary>
    /// Waits for the last line a client's DISCONNECT writes: "Client c disconnected." where notices are logged
    /// (waiting for the DISCONNECT line alone raced it), else the DISCONNECT line itself.
    /// </summary>
    private static async Task WaitForEndAsync(Target broker, string client)
    {
        Assert.True(await broker.WaitForLog($"Received DISCONNECT from {client}"), broker.Log());
        if (broker.Log().Contains("New client connected", StringComparison.Ordinal))
        {
            Assert.True(await broker.WaitForLog($"Client {client} disconnected."), broker.Log());
        }
    }

    private static async Task PublishAsync(int port, params string[] arguments)
    {
        var r = await MosquittoClients.PublishAsync(port, arguments);
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    private static async Task PingAsync(RawMqttClient client)
    {
        await client.SendAsync([0xC0, 0x00]);
        var answer = await client.ReadAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(13, answer?.Type); // PINGRESP
    }

    /// <summary>
    /// Each client's lines in order, ports replaced by PORT. A client's own lines name it; the lines that name
    /// nobody go to the client they belong to: the will ("No will message specified.", "Will message specified
    /// ...", its topic) to the CONNACK that follows, a filter ("\tt (QoS 1)") to the SUBSCRIBE or UNSUBSCRIBE
    /// before it. Anything else (startup, "New connection from ...", which Midge does not write) is left out.
    /// </summary>
    private static Dictionary<string, List<string>> LinesPerClient(string log)
    {
        var lines = Clients.ToDictionary(c => c, _ => new List<string>());
        var will = new List<string>();
        bool willTopicNext = false;
        string? subscriber = null;
        foreach (string raw in log.Split('\n'))
        {
            string line = Timestamp().Replace(raw.TrimEnd('\r'), "", 1);
            line = Port().Replace(line, ":PORT as ");
            if (line.StartsWith("Will message specified", StringComparison.Ordinal) || line == "No will message specified.")
            {
                will.Add(line);
                willTopicNext = line.StartsWith("Will", StringComparison.Ordinal);
                continue;
            }
            if (line.StartsWith('\t'))
            {
                if (willTopicNext) will.Add(line);
                else if (subscriber is not null) lines[subscriber].Add(line);
                willTopicNext = false;
                continue;
            }
            willTopicNext = false;
            string? client = Named(line);
            if (client is null || !lines.TryGetValue(client, out var own)) continue;
            if (line.StartsWith("Sending CONNACK", StringComparison.Ordinal))
            {
                own.AddRange(will);
                will.Clear();
            }
            if (line.StartsWith("Received SUBSCRIBE", StringComparison.Ordinal) || line.StartsWith("Received UNSUBSCRIBE", StringComparison.Ordinal))
            {
                subscriber = client;
            }
            own.Add(line);
        }
        return lines;
    }

    /// <summary>The client a line names: "... from c", "... to c", "... as c (", "Client c ...", "c 1 t", "c t".</summary>
    private static string? Named(string line)
    {
        var m = PacketLine().Match(line);
        if (m.Success) return m.Groups[1].Value;
        m = ConnectedLine().Match(line);
        if (m.Success) return m.Groups[1].Value;
        m = ClientLine().Match(line);
        if (m.Success) return m.Groups[1].Value;
        string first = line.Split(' ')[0];
        return Clients.Contains(first) && line.Split(' ').Length is 2 or 3 ? first : null; // subscribe lines
    }

    private static void AssertSameLines(Dictionary<string, List<string>> mosquitto, Dictionary<string, List<string>> midge)
    {
        foreach (string client in Clients)
        {
            Assert.True(mosquitto[client].Count >= 4, $"{client}: Mosquitto wrote only\n{string.Join('\n', mosquitto[client])}");
            Assert.True(mosquitto[client].SequenceEqual(midge[client]),
                $"{client}:\n--- mosquitto ---\n{string.Join('\n', mosquitto[client])}\n--- midge ---\n{string.Join('\n', midge[client])}");
        }
    }

    private static string WriteConfig(string dir, string name, int port, params string[] lines)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllLines(path, [$"listener {port} 127.0.0.1", "allow_anonymous true", "log_dest stderr", .. lines]);
        return path;
    }

    private static async Task<PeerProcess> StartMosquittoAsync(int port, params string[] arguments)
    {
        var process = PeerProcess.Start(Mosquitto, arguments);
        for (int i = 0; i < 200 && !process.HasExited; i++)
        {
            if (await FreePort.AcceptsAsync(port)) return process;
            await Task.Delay(25);
        }
        var r = await process.WaitAsync(TimeSpan.Zero);
        process.Dispose();
        throw new InvalidOperationException($"mosquitto did not listen on {port}: {r}");
    }

    private static Target MosquittoTarget(PeerProcess mosquitto, int port) =>
        new(port, () => mosquitto.Stderr + mosquitto.Stdout, t => mosquitto.WaitForOutputAsync(t, Wait));

    [GeneratedRegex(@"^\d+: ")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@":\d+ as ")]
    private static partial Regex Port();

    [GeneratedRegex(@"^(?:Received|Sending) [A-Z]+ (?:from|to) (\S+)")]
    private static partial Regex PacketLine();

    [GeneratedRegex(@"^New client connected from \S+ as (\S+) \(")]
    private static partial Regex ConnectedLine();

    [GeneratedRegex(@"^Client (\S+) ")]
    private static partial Regex ClientLine();
}
