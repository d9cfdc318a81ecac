using Midge.Client;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Cluster.Tests;

/// <summary>The will of a client of a node that dies (SIGKILL: a real `midge` process) is published by another node,
/// once; a node that stops cleanly takes its clients' wills out of the cluster.</summary>
public class WillsOfADeadNodeTests
{
    /// <summary>The dead node's liveness lapses within <see cref="ClusterNode.AliveLease"/>; another node looks every
    /// third of it.</summary>
    private static readonly TimeSpan WillPatience = ClusterNode.AliveLease + ClusterNode.AliveLease / 3 + TestCluster.Patience;

    [Fact]
    public async Task The_will_of_a_client_of_a_node_killed_with_SIGKILL_is_published_once_by_another_node()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var doomed = await cluster.StartProcessNodeAsync("doomed");
        await using var watcher1 = await cluster[0].SubscriberAsync("w1", "wills/#");
        await using var watcher2 = await cluster[1].SubscriberAsync("w2", "wills/#");

        await using var client = new MqttClient(new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = doomed.Port,
            ClientId = "doomed-client",
            ProtocolVersion = ProtocolVersion.V500,
            Will = new MqttWill("wills/doomed-client", "gone"u8.ToArray(), QoS.AtLeastOnce),
        });
        await client.ConnectAsync();
        Assert.True(SpinWait.SpinUntil(() => cluster.Nodes.All(n => n.Cluster.KnowsWillOf("doomed-client")), TestCluster.Patience));

        doomed.Signal(Signals.SIGKILL);
        foreach (var watcher in new[] { watcher1, watcher2 })
        {
            var will = await watcher.ReadMessageAsync().AsTask().WaitAsync(WillPatience);
            Assert.Equal(("wills/doomed-client", "gone"), (will.Topic, System.Text.Encoding.UTF8.GetString(will.Payload.Span)));
        }
        // Once: the two nodes raced for it; only one published it.
        foreach (var watcher in new[] { watcher1, watcher2 })
        {
            using var cts = new CancellationTokenSource(ClusterNode.AliveLease / 3 + TimeSpan.FromSeconds(1));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await watcher.ReadMessageAsync(cts.Token));
        }
        Assert.False(cluster[0].Cluster.KnowsWillOf("doomed-client"));
    }

    [Fact]
    public async Task A_will_waiting_for_its_delay_on_a_node_killed_with_SIGKILL_is_published_when_due_unless_its_client_came_back()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var doomed = await cluster.StartProcessNodeAsync("doomed");
        await using var watcher = await cluster[0].SubscriberAsync("w", "wills/#");

        MqttClientOptions Options(string id, uint delay) => new()
        {
            Host = "127.0.0.1",
            Port = doomed.Port,
            ClientId = id,
            ProtocolVersion = ProtocolVersion.V500,
            CleanStart = false,
            SessionExpiryInterval = 600,
            Will = new MqttWill("wills/" + id, "gone"u8.ToArray(), QoS.AtLeastOnce) { Properties = new MqttProperties { WillDelayInterval = delay } },
        };
        // Both end their connections with "disconnect with will": each will waits for its delay on the doomed node.
        var ended = DateTime.UtcNow;
        foreach (var (id, delay) in new[] { ("late", 4u), ("returner", 30u) })
        {
            var client = new MqttClient(Options(id, delay));
            await client.ConnectAsync();
            await client.DisconnectAsync(ReasonCode.DisconnectWithWillMessage);
            await client.DisposeAsync();
        }
        Assert.True(SpinWait.SpinUntil(() => cluster[0].Cluster.KnowsWillOf("late") && cluster[0].Cluster.KnowsWillOf("returner"), TestCluster.Patience));
        doomed.Signal(Signals.SIGKILL);
        Assert.True(SpinWait.SpinUntil(() => doomed.HasExited, TestCluster.Patience));

        // The returner comes back on the other node before its delay: its will is not sent (MQTT-3.1.3-9).
        await using var back = new MqttClient(Options("returner", 30) with { Port = cluster[0].Port, Will = null });
        await back.ConnectAsync();

        // The late one's will comes once the dead node is found dead (and not before it was due), once.
        var will = await watcher.ReadMessageAsync().AsTask().WaitAsync(WillPatience);
        Assert.Equal(("wills/late", "gone"), (will.Topic, System.Text.Encoding.UTF8.GetString(will.Payload.Span)));
        Assert.True(DateTime.UtcNow - ended >= TimeSpan.FromSeconds(4));
        using var cts = new CancellationTokenSource(ClusterNode.AliveLease / 3 + TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await watcher.ReadMessageAsync(cts.Token));
        Assert.False(cluster[0].Cluster.KnowsWillOf("returner"));
    }

    [Fact]
    public async Task A_node_that_stops_cleanly_takes_its_clients_wills_out_of_the_cluster_and_a_will_ends_with_its_connection()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = cluster[1].Port,
            ProtocolVersion = ProtocolVersion.V500,
            Will = new MqttWill("wills/x", "gone"u8.ToArray(), QoS.AtLeastOnce),
        };
        await using var leaving = new MqttClient(options with { ClientId = "leaving" });
        await leaving.ConnectAsync();
        await using var staying = new MqttClient(options with { ClientId = "staying" });
        await staying.ConnectAsync();
        Assert.True(SpinWait.SpinUntil(() => cluster[0].Cluster.KnowsWillOf("leaving") && cluster[0].Cluster.KnowsWillOf("staying"), TestCluster.Patience));

        await leaving.DisconnectAsync(); // a normal DISCONNECT: no will, and none left in the cluster
        Assert.True(SpinWait.SpinUntil(() => !cluster[0].Cluster.KnowsWillOf("leaving"), TestCluster.Patience));
        Assert.True(cluster[0].Cluster.KnowsWillOf("staying"));

        await cluster[1].DisposeAsync();
        Assert.True(SpinWait.SpinUntil(() => !cluster[0].Cluster.KnowsWillOf("staying"), TestCluster.Patience));
    }
}
