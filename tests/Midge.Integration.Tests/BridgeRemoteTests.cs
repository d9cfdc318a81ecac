using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Midge as the remote end of a bridge from Debian's mosquitto 2.0.11, with its usual settings (notifications on,
/// try_private on, cleansession false). Each scenario runs twice at once, with Midge and with mosquitto as the
/// remote, and the two must deliver alike, and as written here: every message once on the other side, and on the
/// bridging side each of its own messages once (no echo) wherever the bridge says it is one (try_private, or MQTT
/// 5's No Local). With <c>try_private false</c> over 3.1.1 neither remote can tell a bridge from a client, and both
/// echo: that is counted too.
/// </summary>
public sealed class BridgeRemoteTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>The bridge's client id, which names its state topic: HOSTNAME.CONNECTION by default.</summary>
    private static readonly string BridgeId = System.Net.Dns.GetHostName() + ".edge";

    private static readonly string StateTopic = $"$SYS/broker/connection/{BridgeId}/state";

    /// <summary>A broker at the remote end: Midge, or mosquitto for comparison.</summary>
    private sealed class Remote(string name, int port, Func<string> log, IAsyncDisposable broker) : IAsyncDisposable
    {
        public string Name { get; } = name;
        public int Port { get; } = port;
        public string Log => log();

        public ValueTask DisposeAsync() => broker.DisposeAsync();

        public static async Task<Remote> StartAsync(bool midge)
        {
            if (midge)
            {
                var m = await MidgeProcess.StartAsync();
                return new Remote("midge", m.Port, () => m.Log, m);
            }
            var b = await MosquittoBroker.StartAsync("allow_anonymous true", "log_dest stderr", "log_type all");
            return new Remote("mosquitto", b.Port, () => b.Log, b);
        }
    }

    /// <summary>Debian's mosquitto with one bridge, <c>connection edge</c>, to <paramref name="remotePort"/>.</summary>
    private static Task<MosquittoBroker> StartBridgeAsync(int remotePort, params string[] bridgeLines) =>
        MosquittoBroker.StartAsync(
        [
            "allow_anonymous true",
            "log_dest stderr",
            "log_type all",
            "connection edge",
            $"address 127.0.0.1:{remotePort}",
            .. bridgeLines,
        ]);

    /// <summary>How many times each topic arrived, from a mosquitto_sub printing "%t %p".</summary>
    private static Dictionary<string, int> Counts(MosquittoClients.Subscriber subscriber) =>
        subscriber.Output.Split('\n')
            .Where(l => l.StartsWith(MosquittoClients.Marker, StringComparison.Ordinal))
            .Select(l => l[MosquittoClients.Marker.Length..].Split(' ')[0])
            .GroupBy(t => t, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    private static async Task PublishAsync(int port, string topic, bool retain = false)
    {
        var r = await MosquittoClients.PublishAsync(port, ["-t", topic, "-m", "m", "-q", "1", .. retain ? new[] { "-r" } : []]);
        Assert.Equal(0, r.ExitCode);
    }

    /// <summary>What one remote delivered: per topic, how many times on each side; which retained messages a late
    /// subscriber finds on each side; how many times the bridge connected.</summary>
    private sealed record Outcome(string Local, string Remote, string RetainedLocal, string RetainedRemote, int Connects)
    {
        public override string ToString() =>
            $"local: {Local}\nremote: {Remote}\nretained local: {RetainedLocal}\nretained remote: {RetainedRemote}\nconnects: {Connects}";
    }

    private static string Format(Dictionary<string, int> counts, IEnumerable<string> topics) =>
        string.Join(", ", topics.Select(t => $"{t}={counts.GetValueOrDefault(t)}"));

    /// <summary>
    /// Bridges mosquitto into a remote with <paramref name="bridgeLines"/>, publishes two messages and one retained
    /// message on each side (local topics under <paramref name="localPrefix"/>, remote ones under
    /// <paramref name="remotePrefix"/>), and counts what subscribers to everything on each side received.
    /// </summary>
    private static async Task<Outcome> RunAsync(bool midge, string localPrefix, string remotePrefix, bool remoteToLocal, string[] bridgeLines)
    {
        await using var remote = await Remote.StartAsync(midge);
        using var states = await MosquittoClients.SubscribeAsync(remote.Port, "%t %p", "-t", "$SYS/broker/connection/+/state", "-W", "60");
        using var remoteAll = await MosquittoClients.SubscribeAsync(remote.Port, "%t %p", "-t", "#", "-q", "1", "-W", "60");
        await using var edge = await StartBridgeAsync(remote.Port, bridgeLines);
        string Logs() => $"--- {remote.Name}\n{remote.Log}\n--- bridging mosquitto\n{edge.Log}";
        Assert.True(await states.WaitForMessageAsync($"{StateTopic} 1", Timeout), Logs());
        using var localAll = await MosquittoClients.SubscribeAsync(edge.Port, "%t %p", "-t", "#", "-q", "1", "-W", "60");

        // The bridge has subscribed on the remote when a probe published there comes through.
        if (remoteToLocal)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (!Counts(localAll).ContainsKey(localPrefix + "a/probe"))
            {
                Assert.True(DateTime.UtcNow < deadline, "the bridge never delivered a probe\n" + Logs());
                await PublishAsync(remote.Port, remotePrefix + "a/probe");
                await Task.Delay(200);
            }
        }

        string[] fromLocal = ["a/local1", "a/local2", "a/local-retained"];
        string[] fromRemote = ["a/remote1", "a/remote2", "a/remote-retained"];
        foreach (var t in fromLocal) await PublishAsync(edge.Port, localPrefix + t, retain: t.EndsWith("retained", StringComparison.Ordinal));
        foreach (var t in fromRemote) await PublishAsync(remote.Port, remotePrefix + t, retain: t.EndsWith("retained", StringComparison.Ordinal));

        // Everything published on a side reaches that side's subscriber; then give echoes and crossings time to land.
        var settle = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < settle &&
               !(fromLocal.All(t => Counts(localAll).ContainsKey(localPrefix + t)) && fromRemote.All(t => Counts(remoteAll).ContainsKey(remotePrefix + t))))
        {
            await Task.Delay(50);
        }
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        var localTopics = fromLocal.Concat(fromRemote).Select(t => localPrefix + t);
        var remoteTopics = fromLocal.Concat(fromRemote).Select(t => remotePrefix + t);
        async Task<string> RetainedAsync(int port, string prefix)
        {
            using var late = await MosquittoClients.SubscribeAsync(port, "%t", "-t", prefix + "a/+", "--retained-only", "-W", "2");
            var (_, messages) = await late.WaitAsync(TimeSpan.FromSeconds(5));
            return string.Join(", ", messages.Order(StringComparer.Ordinal));
        }
        int connects = remote.Log.Split('\n').Count(l => l.Contains("connected from 127.0.0.1:", StringComparison.Ordinal) && l.Contains($" as {BridgeId} (", StringComparison.Ordinal));
        Assert.DoesNotContain($"{StateTopic} 0", states.Output, StringComparison.Ordinal);
        return new Outcome(
            Format(Counts(localAll), localTopics),
            Format(Counts(remoteAll), remoteTopics),
            await RetainedAsync(edge.Port, localPrefix),
            await RetainedAsync(remote.Port, remotePrefix),
            connects);
    }

    /// <summary>Runs the scenario against Midge and mosquitto at once; asserts they agree and returns Midge's.</summary>
    private static async Task<Outcome> BothAsync(string localPrefix, string remotePrefix, bool remoteToLocal, params string[] bridgeLines)
    {
        var results = await Task.WhenAll(
            RunAsync(midge: true, localPrefix, remotePrefix, remoteToLocal, bridgeLines),
            RunAsync(midge: false, localPrefix, remotePrefix, remoteToLocal, bridgeLines));
        Assert.Equal(results[1].ToString(), results[0].ToString());
        return results[0];
    }

    private static string Once(string prefix) =>
        $"{prefix}a/local1=1, {prefix}a/local2=1, {prefix}a/local-retained=1, {prefix}a/remote1=1, {prefix}a/remote2=1, {prefix}a/remote-retained=1";

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv50")]
    public async Task TopicBoth_WithTryPrivate_EveryMessageOnceOnEachSide(string protocol)
    {
        var o = await BothAsync("", "", true, "topic # both 1", $"bridge_protocol_version {protocol}");
        Assert.Equal(Once(""), o.Local);
        Assert.Equal(Once(""), o.Remote);
        // Retained messages cross as retained both ways (the remote keeps RETAIN as published for the bridge).
        Assert.Equal("a/local-retained, a/remote-retained", o.RetainedLocal);
        Assert.Equal("a/local-retained, a/remote-retained", o.RetainedRemote);
        Assert.Equal(1, o.Connects);
    }

    [Fact]
    public async Task TopicBoth_WithoutTryPrivate_Over311_EchoesAsMosquittoDoes()
    {
        // Without the bridge bit, a 3.1.1 bridge is an ordinary client to the remote: its own messages come back to it
        // (the bridging side's subscribers get them twice), and RETAIN is 0 on what it is sent, as with mosquitto.
        var o = await BothAsync("", "", true, "topic # both 1", "try_private false");
        Assert.Equal("a/local1=2, a/local2=2, a/local-retained=2, a/remote1=1, a/remote2=1, a/remote-retained=1", o.Local);
        Assert.Equal(Once(""), o.Remote);
        Assert.Equal("a/local-retained", o.RetainedLocal);
        Assert.Equal("a/local-retained, a/remote-retained", o.RetainedRemote);
        Assert.Equal(1, o.Connects);
    }

    [Fact]
    public async Task TopicBoth_WithoutTryPrivate_OverMqtt5_NoLocalKeepsItOnce()
    {
        var o = await BothAsync("", "", true, "topic # both 1", "try_private false", "bridge_protocol_version mqttv50");
        Assert.Equal(Once(""), o.Local);
        Assert.Equal(Once(""), o.Remote);
        Assert.Equal(1, o.Connects);
    }

    [Fact]
    public async Task TopicOut_OnlyTheBridgingSidesMessagesCross()
    {
        var o = await BothAsync("", "", false, "topic a/# out 1");
        Assert.Equal("a/local1=1, a/local2=1, a/local-retained=1, a/remote1=0, a/remote2=0, a/remote-retained=0", o.Local);
        Assert.Equal(Once(""), o.Remote);
        Assert.Equal(1, o.Connects);
    }

    [Fact]
    public async Task TopicIn_OnlyTheRemotesMessagesCross()
    {
        var o = await BothAsync("", "", true, "topic a/# in 1");
        Assert.Equal(Once(""), o.Local);
        Assert.Equal("a/local1=0, a/local2=0, a/local-retained=0, a/remote1=1, a/remote2=1, a/remote-retained=1", o.Remote);
        Assert.Equal(1, o.Connects);
    }

    [Fact]
    public async Task TopicBoth_WithPrefixes_IsRemappedBothWays_Once()
    {
        var o = await BothAsync("edge/", "site/edge/", true, "topic # both 1 edge/ site/edge/");
        Assert.Equal(Once("edge/"), o.Local);
        Assert.Equal(Once("site/edge/"), o.Remote);
        Assert.Equal(1, o.Connects);
    }

    [Theory]
    [InlineData("mqttv311", "true")]
    [InlineData("mqttv311", "false")]
    [InlineData("mqttv50", "true")]
    public async Task TheBridgesState_Reads1_AndItsWillSets0WhenItDies(string protocol, string tryPrivate)
    {
        await using var midge = await MidgeProcess.StartAsync();
        using var states = await MosquittoClients.SubscribeAsync(midge.Port, "%t %p %r", "-t", "$SYS/broker/connection/+/state", "-W", "60");
        var edge = await StartBridgeAsync(midge.Port, "topic # both 1", $"bridge_protocol_version {protocol}", $"try_private {tryPrivate}");
        try
        {
            Assert.True(await states.WaitForMessageAsync($"{StateTopic} 1 0", Timeout), midge.Log + edge.Log);
            // Stays connected: no refusal, no second connection.
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.DoesNotContain("not authorised", midge.Log, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("refused", midge.Log, StringComparison.Ordinal);
            string line = tryPrivate == "true" && protocol == "mqttv311" ? "New bridge connected from 127.0.0.1:" : "New client connected from 127.0.0.1:";
            Assert.Single(midge.Log.Split('\n'), l => l.Contains(line, StringComparison.Ordinal) && l.Contains($" as {BridgeId} (", StringComparison.Ordinal));
            using (var late = await MosquittoClients.SubscribeAsync(midge.Port, "%p", "-t", StateTopic, "-C", "1"))
            {
                Assert.Equal(["1"], (await late.WaitAsync()).Messages); // retained
            }

            // Killed, it sends nothing more: Midge publishes its will.
            Assert.True(edge.Signal(Signals.SIGKILL));
            Assert.True(await states.WaitForMessageAsync($"{StateTopic} 0 0", Timeout), midge.Log);
            using var after = await MosquittoClients.SubscribeAsync(midge.Port, "%p", "-t", StateTopic, "-C", "1");
            Assert.Equal(["0"], (await after.WaitAsync()).Messages);
        }
        finally
        {
            await edge.DisposeAsync();
        }
    }
}
