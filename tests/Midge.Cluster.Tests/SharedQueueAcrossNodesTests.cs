using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>A shared group with no member online anywhere: its messages wait in the cluster's queue of the group
/// (JetStream), not in one node's memory, so they outlive that node and go to a member that comes online on any node,
/// in order, bounded by <c>max_queued_messages</c> per group.</summary>
public class SharedQueueAcrossNodesTests
{
    private static string Text(int i) => i.ToString(CultureInfo.InvariantCulture);

    private static async Task<List<string>> ReadAsync(MqttClient client, int count)
    {
        var got = new List<string>();
        while (got.Count < count) got.Add(Encoding.UTF8.GetString((await TestCluster.NextAsync(client)).Payload.Span));
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.ReadMessageAsync(quiet.Token));
        return got;
    }

    private static async Task QueuedAsync(TestCluster.Node node, int count)
    {
        Assert.True(SpinWait.SpinUntil(() => node.Cluster.Counters.SharedQueued >= count, TestCluster.Patience),
            $"{node.Name} queued {node.Cluster.Counters.SharedQueued} of {count}\n{node.Log}");
        Assert.Equal(count, node.Cluster.Counters.SharedQueued);
    }

    [Fact]
    public async Task What_waits_for_a_group_outlives_the_node_NATS_gave_it_to_and_goes_to_the_member_back_on_another_node_in_order()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var (n1, n2) = (cluster[0], cluster[1]);
        await using (var worker = await n2.ConnectAsync("worker", cleanStart: false, sessionExpiry: 600))
        {
            await worker.SubscribeAsync("$share/g/jobs/#", QoS.AtLeastOnce);
        }
        await cluster.InterestSyncedAsync();

        // The group's only member is offline: node 2, the only node holding the group, has nobody to give them to.
        await using var pub = await n1.ConnectAsync("pub");
        for (int i = 0; i < 10; i++) await pub.PublishAsync("jobs/x", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);
        await QueuedAsync(n2, 10);
        Assert.Equal(0, n2.Server.Broker.SharedWaitingCount);

        // Node 2 goes; the member comes back on node 1, resuming its session from the sessions bucket.
        await n2.DisposeAsync();
        await using var back = await n1.ConnectAsync("worker", cleanStart: false, sessionExpiry: 600);
        Assert.Equal(Enumerable.Range(0, 10).Select(Text), await ReadAsync(back, 10));
        Assert.Equal(10, n1.Cluster.Counters.SharedDequeued);
    }

    [Fact]
    public async Task A_member_subscribing_on_a_third_node_takes_what_waited_for_members_offline_on_two_others()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        foreach (var (node, id) in new[] { (cluster[0], "w1"), (cluster[1], "w2") })
        {
            await using var worker = await node.ConnectAsync(id, cleanStart: false, sessionExpiry: 600);
            await worker.SubscribeAsync("$share/g/jobs/#", QoS.AtLeastOnce);
        }
        await cluster.InterestSyncedAsync();
        await using var pub = await cluster[2].ConnectAsync("pub");
        for (int i = 0; i < 20; i++) await pub.PublishAsync("jobs/x", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);
        Assert.True(SpinWait.SpinUntil(() => cluster[0].Cluster.Counters.SharedQueued + cluster[1].Cluster.Counters.SharedQueued == 20,
            TestCluster.Patience));

        await using var member = await cluster[2].SubscriberAsync("w3", "$share/g/jobs/#");
        Assert.Equal(Enumerable.Range(0, 20).Select(Text), (await ReadAsync(member, 20)).Order(StringComparer.Ordinal).OrderBy(int.Parse));
        Assert.Equal(20, cluster[2].Cluster.Counters.SharedDequeued);
    }

    [Fact]
    public async Task The_clusters_queue_of_a_group_keeps_max_queued_messages_and_refuses_the_rest()
    {
        await using var cluster = await TestCluster.StartAsync(2, "max_queued_messages 5");
        var (n1, n2) = (cluster[0], cluster[1]);
        await using (var worker = await n2.ConnectAsync("worker", cleanStart: false, sessionExpiry: 600))
        {
            await worker.SubscribeAsync("$share/g/jobs/#", QoS.AtLeastOnce);
        }
        await cluster.InterestSyncedAsync();
        await using var pub = await n1.ConnectAsync("pub");
        for (int i = 0; i < 8; i++) await pub.PublishAsync("jobs/x", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);
        await QueuedAsync(n2, 5);
        Assert.True(SpinWait.SpinUntil(() => n2.Cluster.Counters.Dropped == 3, TestCluster.Patience), $"dropped {n2.Cluster.Counters.Dropped}\n{n2.Log}");

        await using var back = await n2.ConnectAsync("worker", cleanStart: false, sessionExpiry: 600);
        Assert.Equal(Enumerable.Range(0, 5).Select(Text), await ReadAsync(back, 5));
    }
}
