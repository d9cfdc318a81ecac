using System.Diagnostics;
using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.TestKit;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster.Tests;

/// <summary>
/// The cluster on a three-server NATS cluster with clustered JetStream (docs/cluster.md, "Three nodes behind a TCP
/// load balancer": every node names the three servers, the buckets have three replicas): one NATS server killed with
/// SIGKILL in the middle of a stream, what the buckets still hold with one server of three down, and the server
/// restarted. The nodes run in this process, the NATS servers are real.
/// </summary>
public class NatsClusterFailureTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>How long JetStream may take to elect new leaders for what a killed server led (nats-server 2.9's
    /// elections take seconds, more on a loaded machine).</summary>
    private static readonly TimeSpan Election = TimeSpan.FromSeconds(25);

    /// <summary>How far the stream's publisher may run ahead of its subscriber: node A acknowledges without waiting for
    /// NATS, so without a bound what it queued while it moved would reach node B at once, beyond what the subscriber's
    /// session queues (<c>max_queued_messages</c>, 1,000): those are dropped there, as on one broker.</summary>
    private const int Window = 500;

    private static Task<ReceivedMessage> NextAsync(MqttClient client) => TestCluster.NextAsync(client);

    /// <summary>The index (in <see cref="NatsCluster"/>) of the server <paramref name="node"/>'s NATS connection is on
    /// now; -1 while it has none.</summary>
    private static int ServerOf(TestCluster cluster, TestCluster.Node node) =>
        node.Cluster.IsConnected ? cluster.NatsCluster!.IndexOf(node.Cluster.Nats.ServerInfo?.Name) : -1;

    /// <summary>Waits until every node is connected to a server other than <paramref name="killed"/>, and checks it said
    /// so in its log.</summary>
    private static async Task EveryNodeMovedAsync(TestCluster cluster, int killed)
    {
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        while (cluster.Nodes.Any(n => ServerOf(cluster, n) is var s && (s < 0 || s == killed)))
        {
            Assert.True(DateTime.UtcNow < deadline, "a node did not move to another NATS server: "
                + string.Join("; ", cluster.Nodes.Select(n => $"{n.Name} on {ServerOf(cluster, n)}: {n.Log}")));
            await Task.Delay(20);
        }
        foreach (var node in cluster.Nodes)
        {
            // NATS.Net raises its "opened" event a moment after the connection's state says open: the line may follow.
            var server = cluster.NatsCluster!.Names[ServerOf(cluster, node)];
            bool Said() => node.Log.Lines.Any(l => l.EndsWith($"node {node.Name} connected to NATS server {server}", StringComparison.Ordinal));
            Assert.True(SpinWait.SpinUntil(Said, TestCluster.Patience), $"{node.Name} did not log its move to {server}:\n{node.Log}");
        }
    }

    /// <summary>Waits until JetStream has leaders again for everything (<see cref="NatsCluster.JetStreamReadyAsync"/>);
    /// the time it took, said in the test's output.</summary>
    private async Task<TimeSpan> JetStreamReadyAsync(TestCluster cluster, string what)
    {
        var started = Stopwatch.GetTimestamp();
        Assert.True(await cluster.NatsCluster!.JetStreamReadyAsync(Election), $"JetStream not ready within {Election.TotalSeconds} s {what}");
        var took = Stopwatch.GetElapsedTime(started);
        output.WriteLine($"JetStream ready {took.TotalSeconds:F1} s {what}");
        return took;
    }

    /// <summary>Consecutive numbers written as ranges: 1-3,7.</summary>
    private static string Ranges(List<int> numbers) =>
        string.Join(",", numbers.Select((n, i) => (n, i)).GroupBy(p => p.n - p.i)
            .Select(g => g.First().n == g.Last().n ? $"{g.First().n}" : $"{g.First().n}-{g.Last().n}"));

    /// <summary>How long a node's watch of a bucket may take to deliver again once a server is down: a stalled watch is
    /// seen within two checks (<see cref="ClusterNode.WatchCheck"/>), and each time its new consumer is placed on the dead
    /// server (nats-server 2.9 takes a while to count it out) its creation fails after JetStream's 5 s API timeout and
    /// the node tries again a second later.</summary>
    private static readonly TimeSpan WatchWait = TimeSpan.FromSeconds(30);

    /// <summary>Waits until <paramref name="node"/> has loaded the retained bucket; fails with its log when it has not
    /// within <see cref="WatchWait"/>.</summary>
    private async Task LoadedAsync(TestCluster.Node node)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await node.Cluster.RetainedLoaded.WaitAsync(WatchWait);
            output.WriteLine($"{node.Name} loaded the retained messages in {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s");
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{node.Name} did not load the retained messages:\n{node.Log}");
        }
    }

    /// <summary>A NATS connection of the test's own, on the servers still running, to read the buckets as they are.</summary>
    private static async Task<NatsConnection> InspectorAsync(TestCluster cluster)
    {
        var urls = cluster.NatsCluster!.Urls.Where((_, i) => cluster.NatsCluster.IsRunning(i));
        var nats = new NatsConnection(NatsOpts.Default with { Url = string.Join(",", urls), Name = "test inspector" });
        await nats.ConnectAsync();
        return nats;
    }

    /// <summary>The node that owns <paramref name="clientId"/> in the cluster's owners' bucket.</summary>
    private static async Task<string> OwnerAsync(NatsConnection nats, string clientId)
    {
        var owners = await new NatsKVContext(new NatsJSContext(nats)).GetStoreAsync("midge-test-clients");
        var entry = await owners.GetEntryAsync<byte[]>(ClusterNode.OwnerKey(clientId));
        return Encoding.UTF8.GetString(entry.Value!);
    }

    /// <summary>Polls the sessions bucket, as <paramref name="node"/> reads it, until it holds node n2's copy of
    /// <paramref name="clientId"/>'s session with the one subscription <paramref name="filter"/> (within
    /// <see cref="TestCluster.Patience"/>).</summary>
    private static async Task<bool> ReplicatedAsync(TestCluster.Node node, string clientId, string filter)
    {
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (await node.Cluster.ReplicatedSessionAsync(clientId) is ("n2", { } state) && state.Subscriptions is [{ } only] && only.Filter == filter) return true;
            await Task.Delay(50);
        }
        return false;
    }

    [Theory]
    [InlineData(false)] // the server of the publisher's node
    [InlineData(true)] // the server of the subscriber's node
    public async Task A_NATS_server_killed_mid_stream_its_node_moves_to_another_the_stream_resumes_in_order_and_the_buckets_keep_their_state(bool subscribersServer)
    {
        await using var cluster = await TestCluster.StartOnNatsClusterAsync(2);
        var (a, b) = (cluster[0], cluster[1]);

        // State in the buckets before the kill: a client id owned by node A, a persistent session on node B
        // (replicated), which is also the subscriber of the stream.
        await using var owned = await a.ConnectAsync("owned", cleanStart: false, sessionExpiry: 600);
        await using var keeper = await b.ConnectAsync("keeper", cleanStart: false, sessionExpiry: 600);
        await keeper.SubscribeAsync("stream/#", QoS.AtLeastOnce);
        await cluster.SettledAsync();
        Assert.True(await ReplicatedAsync(a, "keeper", "stream/#"), "keeper's session was not replicated");

        // The stream: QoS 1 from node A to the persistent subscriber on node B, one message at a time (each PUBACKed
        // before the next) and at most Window ahead of the subscriber, while the server of node A (or B) is killed.
        var received = new List<int>();
        using var window = new SemaphoreSlim(Window);
        using var stopReading = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var message = await keeper.ReadMessageAsync(stopReading.Token);
                    int index = int.Parse(message.Topic["stream/".Length..], CultureInfo.InvariantCulture);
                    int before;
                    lock (received)
                    {
                        before = received.Count == 0 ? 0 : received[^1];
                        received.Add(index);
                    }
                    if (index > before) window.Release(index - before); // the missing ones in between will not come

                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        int Received()
        {
            lock (received) return received.Count == 0 ? 0 : received[^1];
        }

        await using var pub = await a.ConnectAsync("pub");
        int killed = -1, receivedAtKill = 0, publishedAtKill = 0, resumedAt = 0, last = 0;
        bool subscriberMoved = false;
        var clock = Stopwatch.StartNew();
        TimeSpan killedAt = default, moved = default;
        for (int i = 1; last == 0 || i <= last; i++)
        {
            while (!await window.WaitAsync(TimeSpan.FromMilliseconds(100)))
            {
                // Window ahead: a message lost in the failover never gives its place back (the next one to arrive does),
                // so once every node has moved, the stream goes on.
                if (killed >= 0 && cluster.Nodes.All(n => ServerOf(cluster, n) is var s && s >= 0 && s != killed)) break;
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"message {i - Window} never arrived; last received {Received()}");
            }
            await pub.PublishAsync($"stream/{i}", "x"u8.ToArray(), QoS.AtLeastOnce);
            if (killed < 0 && Received() >= 100)
            {
                killed = ServerOf(cluster, subscribersServer ? b : a);
                bool publisherMoved = ServerOf(cluster, a) == killed;
                subscriberMoved = ServerOf(cluster, b) == killed;
                (receivedAtKill, publishedAtKill, killedAt) = (Received(), i, clock.Elapsed);
                await cluster.NatsCluster!.KillAsync(killed);
                output.WriteLine($"killed {cluster.NatsCluster.Names[killed]} after message {i}, message {receivedAtKill} received; "
                    + $"node A was on it: {publisherMoved}, node B: {subscriberMoved}");
            }
            else if (killed >= 0 && resumedAt == 0 && cluster.Nodes.All(n => ServerOf(cluster, n) is var s && s >= 0 && s != killed))
            {
                // Every message PUBACKed from now on goes to NATS on the new connections: 200 more, then stop.
                (resumedAt, moved, last) = (i, clock.Elapsed - killedAt, i + 200);
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the stream did not resume: node A on {ServerOf(cluster, a)}, node B on {ServerOf(cluster, b)}\n{a.Log}\n{b.Log}");
        }
        Assert.True(SpinWait.SpinUntil(() => Received() == last, TestCluster.Patience), $"the last message {last} never arrived; last received {Received()}");
        await stopReading.CancelAsync();
        await reading;
        await EveryNodeMovedAsync(cluster, killed);

        // In order, each once, and nothing missing: what the failover lost between the nodes (PUBACKed by node A, not
        // at node B: NATS had no subscription of node B's until it moved, or the dead server had it) was sent again.
        List<int> got;
        lock (received) got = [.. received];
        Assert.True(got.Zip(got.Skip(1)).All(p => p.First < p.Second), "out of order or twice: " + string.Join(",", got));
        var lost = Enumerable.Range(1, last).Except(got).ToList();
        output.WriteLine($"every node on another server {moved.TotalMilliseconds:F0} ms after the kill, from message {resumedAt}; "
            + $"{last} messages, {lost.Count} lost between nodes: [{Ranges(lost)}] (published at the kill: {publishedAtKill}); "
            + $"node A sent {a.Cluster.Counters.Sent}, dropped {a.Cluster.Counters.Dropped}; node B received {b.Cluster.Counters.Received}, "
            + $"dropped {b.Server.Broker.Stats.PublishDropped}");
        Assert.Equal(0, b.Server.Broker.Stats.PublishDropped); // the window keeps node B's queue for keeper under its bound
        output.WriteLine($"node A sent again {a.Cluster.Counters.Resent}, node B saw {b.Cluster.Counters.Duplicates} twice and skipped "
            + $"{b.Cluster.Counters.GapsSkipped} gaps; PUBACKs that did not wait for node B: {a.Cluster.Counters.ConfirmSlow}");
        Assert.Empty(lost);

        // With one server of three down, once JetStream has elected leaders for what the dead server led, the buckets
        // still hold what they held before the kill.
        await JetStreamReadyAsync(cluster, "after the kill");
        await using var nats = await InspectorAsync(cluster);
        Assert.Equal("n1", await OwnerAsync(nats, "owned"));
        Assert.True(await ReplicatedAsync(a, "keeper", "stream/#"), "keeper's replicated session is gone");
    }

    [Fact]
    public async Task With_the_server_holding_a_nodes_watch_of_the_retained_messages_killed_a_takeover_across_nodes_and_retained_messages_still_work()
    {
        await using var cluster = await TestCluster.StartOnNatsClusterAsync(2);
        var (a, b) = (cluster[0], cluster[1]);
        await using (var setter = await a.ConnectAsync("setter"))
        {
            await setter.PublishAsync("state/before", "kept"u8.ToArray(), QoS.AtLeastOnce, retain: true);
        }
        Assert.True(SpinWait.SpinUntil(() => b.Server.Broker.GetRetainedMessage("state/before") is not null, TestCluster.Patience));
        var owned = await a.ConnectAsync("owned", cleanStart: false, sessionExpiry: 600);
        await owned.SubscribeAsync("owned/#", QoS.AtLeastOnce);
        var ownedGone = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        owned.Disconnected += (_, e) => ownedGone.TrySetResult(e);

        // Each node watches the retained bucket through a consumer that one server holds: the server holding the most
        // of them goes, so at least one node's watch loses its consumer.
        var natsCluster = cluster.NatsCluster!;
        var hosts = await natsCluster.ConsumerHostsAsync("KV_midge-test-retained");
        Assert.Equal(cluster.Nodes.Count, hosts.Count);
        var host = hosts.GroupBy(h => h).MaxBy(g => g.Count())!.Key;
        int killed = natsCluster.IndexOf(host);
        output.WriteLine($"killed {host}, holding {hosts.Count(h => h == host)} of the retained bucket's {hosts.Count} watches; "
            + $"the owners' bucket's leader: {await natsCluster.StreamLeaderAsync("KV_midge-test-clients")}");
        await natsCluster.KillAsync(killed);
        await EveryNodeMovedAsync(cluster, killed);
        await JetStreamReadyAsync(cluster, "after the kill");

        // The client id moves across nodes (a takeover through the owners' bucket), with its session.
        await using var moving = await b.ConnectAsync("owned", cleanStart: false, sessionExpiry: 600);
        Assert.True(moving.ServerConnAck!.SessionPresent, $"{a.Name}:\n{a.Log}\n{b.Name}:\n{b.Log}");
        var gone = await ownedGone.Task.WaitAsync(TestCluster.Patience);
        Assert.Equal((ReasonCode.SessionTakenOver, true), (gone.ReasonCode, gone.ByServer));
        await owned.DisposeAsync();
        Assert.Equal(1, b.Cluster.Counters.Takeovers);
        await using (var nats = await InspectorAsync(cluster))
        {
            Assert.Equal("n2", await OwnerAsync(nats, "owned"));
        }
        await cluster.SettledAsync();
        await using (var pub = await a.ConnectAsync("pub"))
        {
            await pub.PublishAsync("owned/1", "to n2"u8.ToArray(), QoS.AtLeastOnce);
        }
        Assert.Equal("owned/1", (await NextAsync(moving)).Topic);

        // Retained messages: the one set before the kill is sent by a node that joins now, and one set now reaches every
        // node through the bucket (each node's watch of it survived the failover).
        await using (var setter = await b.ConnectAsync("setter2"))
        {
            await setter.PublishAsync("state/after", "new"u8.ToArray(), QoS.AtLeastOnce, retain: true);
        }
        var started = Stopwatch.GetTimestamp();
        var late = await cluster.AddNodeAsync("n3");
        await LoadedAsync(late);

        // A watch whose consumer went with the server is made again (WatchWait).
        foreach (var node in cluster.Nodes)
        {
            Assert.True(SpinWait.SpinUntil(() => node.Server.Broker.GetRetained("state/#").Count == 2, WatchWait), $"{node.Name}:\n{node.Log}");
        }
        output.WriteLine($"every node had the retained message set after the kill {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s after it was set");
        foreach (var node in cluster.Nodes) output.WriteLine($"{node.Name}'s log:\n{node.Log}");
        await using var sub = await late.ConnectAsync("sub");
        await sub.SubscribeAsync("state/before", QoS.AtLeastOnce);
        var retained = await NextAsync(sub);
        Assert.Equal(("state/before", "kept", true), (retained.Topic, Encoding.UTF8.GetString(retained.Payload.Span), retained.Retain));
    }

    [Fact]
    public async Task A_killed_NATS_server_restarted_catches_up_and_the_cluster_keeps_working_when_another_server_goes()
    {
        await using var cluster = await TestCluster.StartOnNatsClusterAsync(2);
        var (a, b) = (cluster[0], cluster[1]);
        var natsCluster = cluster.NatsCluster!;
        int first = ServerOf(cluster, a);
        await natsCluster.KillAsync(first);
        await EveryNodeMovedAsync(cluster, first);
        await JetStreamReadyAsync(cluster, $"after {natsCluster.Names[first]} was killed");

        // Changes while it is down: a retained message, a client id taken by node A.
        await using (var setter = await a.ConnectAsync("setter"))
        {
            await setter.PublishAsync("state/while-down", "1"u8.ToArray(), QoS.AtLeastOnce, retain: true);
        }
        Assert.True(SpinWait.SpinUntil(() => b.Server.Broker.GetRetainedMessage("state/while-down") is not null, WatchWait), $"{b.Name}:\n{b.Log}");
        var owned = await a.ConnectAsync("owned", cleanStart: false, sessionExpiry: 600);
        await owned.SubscribeAsync("owned/#", QoS.AtLeastOnce);

        // Back on the same ports and store: it catches up (its copy of every stream current again).
        await natsCluster.RestartAsync(first);
        await JetStreamReadyAsync(cluster, $"after {natsCluster.Names[first]} was restarted");
        var restarted = Stopwatch.GetTimestamp();
        foreach (var bucket in new[] { "KV_midge-test-retained", "KV_midge-test-clients" })
        {
            ulong?[] copies = [];
            while (Stopwatch.GetElapsedTime(restarted) < Election)
            {
                copies = await Task.WhenAll(Enumerable.Range(0, NatsCluster.Size).Select(i => natsCluster.LastSequenceAsync(i, bucket)));
                if (copies.All(c => c is > 0 && c == copies[0])) break;
                await Task.Delay(100);
            }
            Assert.True(copies.All(c => c is > 0 && c == copies[0]), $"{bucket}'s copies did not catch up: {string.Join(", ", copies)}");
        }
        output.WriteLine($"{natsCluster.Names[first]}'s copies caught up {Stopwatch.GetElapsedTime(restarted).TotalSeconds:F1} s after it was ready again");

        // Another server goes: JetStream's quorum is now the restarted server and the third one, so every write to the
        // buckets from here needs the restarted server.
        int second = Enumerable.Range(0, NatsCluster.Size).First(i => i != first && (i == ServerOf(cluster, a) || i == ServerOf(cluster, b)));
        await natsCluster.KillAsync(second);
        output.WriteLine($"killed {natsCluster.Names[first]}, restarted it, killed {natsCluster.Names[second]}");
        await EveryNodeMovedAsync(cluster, second);
        await JetStreamReadyAsync(cluster, $"after {natsCluster.Names[second]} was killed");

        // A takeover (a write to the owners' bucket), the retained message of the first outage from a new node, and
        // messages across nodes.
        var ownedGone = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        owned.Disconnected += (_, e) => ownedGone.TrySetResult(e);
        await using var moving = await b.ConnectAsync("owned", cleanStart: false, sessionExpiry: 600);
        Assert.True(moving.ServerConnAck!.SessionPresent);
        Assert.Equal(ReasonCode.SessionTakenOver, (await ownedGone.Task.WaitAsync(TestCluster.Patience)).ReasonCode);
        await owned.DisposeAsync();
        var late = await cluster.AddNodeAsync("n3");
        await LoadedAsync(late);
        Assert.NotNull(late.Server.Broker.GetRetainedMessage("state/while-down"));
        await cluster.SettledAsync();
        await using var pub = await late.ConnectAsync("pub");
        Assert.True(await TestCluster.PublishUntilReceivedAsync(pub, moving, "owned/after"), "no message crossed to node B");
    }
}
