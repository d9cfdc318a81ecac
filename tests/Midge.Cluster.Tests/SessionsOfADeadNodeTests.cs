using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.TestKit;

namespace Midge.Cluster.Tests;

/// <summary>Persistent sessions survive a node's death (SIGKILL: a real `midge` process): each node replicates its
/// persistent sessions to the cluster's sessions bucket, and the node a client reconnects to resumes the session there
/// (a real nats-server with JetStream, the other nodes in process).</summary>
public class SessionsOfADeadNodeTests
{
    private static async Task<ReceivedMessage> NextAsync(MqttClient client) => await TestCluster.NextAsync(client);

    private static MqttClientOptions Options(int port, string clientId) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        ClientId = clientId,
        ProtocolVersion = ProtocolVersion.V500,
        CleanStart = false,
        SessionExpiryInterval = 600,
    };

    /// <summary>Polls the bucket, as <paramref name="node"/> reads it, until <paramref name="done"/> holds of the
    /// replicated session (within <see cref="TestCluster.Patience"/>).</summary>
    private static async Task<bool> ReplicatedAsync(TestCluster.Node node, string clientId, Func<string, Core.Sessions.Store.SessionState?, bool> done)
    {
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (await node.Cluster.ReplicatedSessionAsync(clientId) is { } r && done(r.Node, r.State)) return true;
            await Task.Delay(50);
        }
        return false;
    }

    [Fact]
    public async Task A_persistent_subscriber_of_a_node_killed_with_SIGKILL_resumes_its_session_on_another_node_with_every_acknowledged_message()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var doomed = await cluster.StartProcessNodeAsync("doomed");

        // A persistent session on the doomed node, subscribed with a subscription identifier.
        var keeper = new MqttClient(Options(doomed.Port, "keeper"));
        await keeper.ConnectAsync();
        Assert.False(keeper.ServerConnAck!.SessionPresent);
        await keeper.SubscribeAsync([new TopicSubscription("jobs/#", QoS.AtLeastOnce)], new MqttProperties { SubscriptionIdentifiers = [7] });
        await using (var probe = await cluster[0].ConnectAsync("probe"))
        {
            Assert.True(await TestCluster.PublishUntilReceivedAsync(probe, keeper, "jobs/probe"), "the doomed node's subscription never reached NATS");
        }
        await keeper.DisconnectAsync();
        await keeper.DisposeAsync();

        // Published on node 1 while the subscriber is away: PUBACKed by node 1, queued in the session on the doomed node.
        await using (var pub = await cluster[0].ConnectAsync("pub"))
        {
            for (int i = 1; i <= 3; i++) await pub.PublishAsync($"jobs/{i}", Encoding.UTF8.GetBytes($"job {i}"), QoS.AtLeastOnce);
        }
        // Published on node 1 for a session on the doomed node: the PUBACK waited until the doomed node had written it
        // to the bucket; and on the doomed node itself: its PUBACK waits until the bucket has the message. So the node
        // may die the moment the publishers have their PUBACKs.
        await using (var pub = new MqttClient(Options(doomed.Port, "pub-on-doomed") with { CleanStart = true, SessionExpiryInterval = null }))
        {
            await pub.ConnectAsync();
            for (int i = 4; i <= 5; i++) await pub.PublishAsync($"jobs/{i}", Encoding.UTF8.GetBytes($"job {i}"), QoS.AtLeastOnce);
            doomed.Signal(Signals.SIGKILL);
        }
        Assert.True(SpinWait.SpinUntil(() => doomed.HasExited, TestCluster.Patience));

        // The subscriber comes back on node 2: its session, with every acknowledged message, in order.
        await using var back = new MqttClient(Options(cluster[1].Port, "keeper"));
        await back.ConnectAsync();
        Assert.True(back.ServerConnAck!.SessionPresent);
        for (int i = 1; i <= 5; i++)
        {
            var message = await NextAsync(back);
            while (message.Topic == "jobs/probe") message = await NextAsync(back); // a probe that came after the first
            Assert.Equal(($"jobs/{i}", $"job {i}"), (message.Topic, Encoding.UTF8.GetString(message.Payload.Span)));
            Assert.Equal([7u], message.Properties?.SubscriptionIdentifiers);
        }

        // Its subscription lives on node 2 now: a new message reaches it.
        await cluster.SettledAsync();
        await using (var pub = await cluster[0].ConnectAsync("pub2"))
        {
            await pub.PublishAsync("jobs/6", "job 6"u8.ToArray(), QoS.AtLeastOnce);
        }
        var sixth = await NextAsync(back);
        while (sixth.Topic == "jobs/probe") sixth = await NextAsync(back);
        Assert.Equal("jobs/6", sixth.Topic);
        Assert.Equal([7u], sixth.Properties?.SubscriptionIdentifiers);
        Assert.True(await ReplicatedAsync(cluster[0], "keeper", (node, s) => node == "n2" && s?.Subscriptions.Count == 1));
    }

    [Fact]
    public async Task An_MQTT_3_1_1_session_gets_the_QoS_2_messages_its_dead_node_acknowledged_exactly_once()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var doomed = await cluster.StartProcessNodeAsync("doomed");
        var v3 = Options(doomed.Port, "keeper3") with { ProtocolVersion = ProtocolVersion.V311, SessionExpiryInterval = null };
        await using (var keeper = new MqttClient(v3))
        {
            await keeper.ConnectAsync();
            await keeper.SubscribeAsync("q2/#", QoS.ExactlyOnce);
            await keeper.DisconnectAsync();
        }

        // PUBCOMPed by the doomed node, which dies at once.
        await using (var pub = new MqttClient(v3 with { ClientId = "pub3", CleanStart = true }))
        {
            await pub.ConnectAsync();
            for (int i = 1; i <= 3; i++) await pub.PublishAsync($"q2/{i}", Encoding.UTF8.GetBytes($"m {i}"), QoS.ExactlyOnce);
            doomed.Signal(Signals.SIGKILL);
        }
        Assert.True(SpinWait.SpinUntil(() => doomed.HasExited, TestCluster.Patience));

        await using var back = new MqttClient(v3 with { Port = cluster[0].Port });
        await back.ConnectAsync();
        Assert.True(back.ServerConnAck!.SessionPresent);
        for (int i = 1; i <= 3; i++)
        {
            var message = await NextAsync(back);
            Assert.Equal(($"q2/{i}", QoS.ExactlyOnce), (message.Topic, message.QoS));
        }
        using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await back.ReadMessageAsync(quiet.Token));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // in front of the node's own file
    public async Task The_PUBACK_of_a_message_queued_for_a_persistent_session_of_its_node_waits_until_the_bucket_has_it(bool persistence)
    {
        var dir = Directory.CreateTempSubdirectory("midge-replica-");
        var cluster = await TestCluster.StartAsync(1, persistence ? $"persistence true\npersistence_location {dir.FullName}/" : "");
        try
        {
            await using (var keeper = await cluster[0].ConnectAsync("held", cleanStart: false, sessionExpiry: 600))
            {
                await keeper.SubscribeAsync("held/#", QoS.AtLeastOnce);
                await keeper.DisconnectAsync();
            }
            await using var pub = await cluster[0].ConnectAsync("held-pub");
            for (int i = 1; i <= 20; i++)
            {
                await pub.PublishAsync($"held/{i}", "x"u8.ToArray(), QoS.AtLeastOnce);
                // Read at once, no polling: the PUBACK came only once the bucket had the message.
                var replicated = await cluster[0].Cluster.ReplicatedSessionAsync("held");
                Assert.Equal(i, replicated?.State?.Queued.Count);
            }
            Assert.Equal(persistence, cluster[0].Server.Broker.SessionStore is SessionReplica { Inner: not null });
        }
        finally
        {
            await cluster.DisposeAsync();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task The_PUBACK_of_a_message_for_a_persistent_session_on_another_node_waits_until_that_node_replicated_it()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.InterestSyncedAsync();
        await using (var keeper = await cluster[1].ConnectAsync("far", cleanStart: false, sessionExpiry: 600))
        {
            await keeper.SubscribeAsync("far/#", QoS.AtLeastOnce);
            await keeper.DisconnectAsync();
        }
        await using var pub = await cluster[0].ConnectAsync("far-pub");
        for (int i = 1; i <= 20; i++)
        {
            await pub.PublishAsync($"far/{i}", "x"u8.ToArray(), QoS.AtLeastOnce);
            // Read at once, no polling: the PUBACK on node 1 came only once node 2 had written the message to the bucket.
            var replicated = await cluster[0].Cluster.ReplicatedSessionAsync("far");
            Assert.Equal("n2", replicated?.Node);
            Assert.Equal(i, replicated?.State?.Queued.Count);
        }
        Assert.Equal(0, cluster[0].Cluster.Counters.ConfirmSlow);
    }

    [Fact]
    public async Task A_backlog_larger_than_NATSs_max_payload_on_a_node_that_goes_is_resumed_whole_and_in_order_on_another()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var (n1, n2) = (cluster[0], cluster[1]);
        await using (var keeper = await n2.ConnectAsync("backlog", cleanStart: false, sessionExpiry: 600))
        {
            await keeper.SubscribeAsync("backlog/#", QoS.AtLeastOnce);
        }
        await cluster.InterestSyncedAsync();

        // 30 x 50 KB, PUBACKed by node 1 once node 2 has them in the bucket: 1.5 MB queued, more than one NATS message
        // may carry, so the session's messages are written one by one.
        await using (var pub = await n1.ConnectAsync("pub"))
        {
            for (int i = 0; i < 30; i++)
            {
                var payload = new byte[50_000];
                payload[0] = (byte)i;
                await pub.PublishAsync("backlog/x", payload, QoS.AtLeastOnce);
            }
        }
        Assert.Equal(0, n1.Cluster.Counters.ConfirmSlow);
        await n2.DisposeAsync();

        await using var back = await n1.ConnectAsync("backlog", cleanStart: false, sessionExpiry: 600);
        Assert.True(back.ServerConnAck!.SessionPresent);
        for (int i = 0; i < 30; i++)
        {
            var m = await NextAsync(back);
            Assert.Equal((50_000, (byte)i), (m.Payload.Length, m.Payload.Span[0]));
        }

        // Node 1 wrote it split too (its first write of it), then, as it emptied, whole again: nothing of it is left.
        Assert.True(await ReplicatedAsync(n1, "backlog", (node, s) => node == "n1" && s is { Queued.Count: 0, Inflight.Count: 0 }),
            "the replicated copy kept delivered messages");
    }

    [Fact]
    public async Task A_session_holding_more_than_NATSs_max_payload_is_replicated_message_by_message_and_one_too_large_message_holds_no_other_acknowledgements()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        foreach (var id in new[] { "huge", "small" })
        {
            await using var keeper = await cluster[0].ConnectAsync(id, cleanStart: false, sessionExpiry: 600);
            await keeper.SubscribeAsync(id + "/#", QoS.AtLeastOnce);
            await keeper.DisconnectAsync();
        }
        await using var pub = await cluster[0].ConnectAsync("pub");
        // 12 x 100 KB queued: more than NATS's max_payload (1 MiB) together, each a write of its own.
        for (int i = 0; i < 12; i++) await pub.PublishAsync("huge/x", new byte[100_000], QoS.AtLeastOnce);
        Assert.Equal(12, (await cluster[0].Cluster.ReplicatedSessionAsync("huge"))?.State?.Queued.Count);

        // One message past max_payload cannot be written: logged, and the other session's messages are acknowledged as
        // they are written, not a retry pause (1 s) each (before, each waited for the pause the failed write put the
        // whole loop in: 40 took about 20 s).
        await pub.PublishAsync("huge/x", new byte[1_200_000], QoS.AtLeastOnce);
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 1; i <= 40; i++) await pub.PublishAsync("small/x", "x"u8.ToArray(), QoS.AtLeastOnce);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(8), $"40 acknowledgements took {started.Elapsed}");
        Assert.Equal(40, (await cluster[0].Cluster.ReplicatedSessionAsync("small"))?.State?.Queued.Count);
        Assert.Equal(12, (await cluster[0].Cluster.ReplicatedSessionAsync("huge"))?.State?.Queued.Count); // all that fit
        Assert.Contains(cluster[0].Log.Lines, l => l.Contains("cannot replicate the session of client huge", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_session_handed_over_between_live_nodes_is_replicated_by_its_new_node_only()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var first = await cluster[0].ConnectAsync("mover", cleanStart: false, sessionExpiry: 600);
        await first.SubscribeAsync("a/#", QoS.AtLeastOnce);
        await first.DisconnectAsync();
        await first.DisposeAsync();
        Assert.True(await ReplicatedAsync(cluster[1], "mover", (node, s) => node == "n1" && s?.Subscriptions.Count == 1));

        // Handed over by node 1 (alive), not read from the bucket; node 1's removal does not delete node 2's copy.
        await using var moved = await cluster[1].ConnectAsync("mover", cleanStart: false, sessionExpiry: 600);
        Assert.True(moved.ServerConnAck!.SessionPresent);
        Assert.False(cluster[0].Server.Broker.Clients.TryGet("mover", out _));
        await moved.SubscribeAsync("b/#", QoS.AtLeastOnce);
        Assert.True(await ReplicatedAsync(cluster[0], "mover", (node, s) => node == "n2" && s?.Subscriptions.Count == 2));
        await Task.Delay(500);
        Assert.True(await ReplicatedAsync(cluster[0], "mover", (node, s) => node == "n2" && s?.Subscriptions.Count == 2));

        // A session that ends (clean start) leaves the bucket.
        await moved.DisconnectAsync();
        await using var fresh = await cluster[1].ConnectAsync("mover", cleanStart: true);
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        while (await cluster[0].Cluster.ReplicatedSessionAsync("mover") is not null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Null(await cluster[0].Cluster.ReplicatedSessionAsync("mover"));
    }
}
