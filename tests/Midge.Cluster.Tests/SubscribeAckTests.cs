using System.Diagnostics;
using System.Globalization;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>A SUBACK goes once the subscription's filter is in NATS: a message published on another node after it
/// reaches the subscriber; a filter the node already has costs no wait; with NATS away the SUBACK does not wait.</summary>
public class SubscribeAckTests
{
    [Fact]
    public async Task A_message_published_on_another_node_right_after_SUBACK_reaches_the_subscriber()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var sub = await cluster[1].ConnectAsync("sub");
        await using var pub = await cluster[0].ConnectAsync("pub");

        // No waiting for the cluster to settle: each filter is new, and the publish follows its SUBACK at once.
        for (int i = 0; i < 20; i++)
        {
            string n = i.ToString(CultureInfo.InvariantCulture);
            await sub.SubscribeAsync(i % 2 == 0 ? $"fresh/{n}/+" : $"fresh/{n}/x", QoS.AtLeastOnce);
            await pub.PublishAsync($"fresh/{n}/x", "1"u8.ToArray(), QoS.AtLeastOnce);
            Assert.Equal($"fresh/{n}/x", (await TestCluster.NextAsync(sub)).Topic);
        }
        Assert.Equal(20, cluster[1].Cluster.Counters.SubscribeWaits);
    }

    [Fact]
    public async Task A_filter_the_node_already_has_in_NATS_costs_no_wait()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var first = await cluster[1].ConnectAsync("first");
        await first.SubscribeAsync("shared/filter/#", QoS.AtLeastOnce);
        Assert.Equal(1, cluster[1].Cluster.Counters.SubscribeWaits);

        await using var second = await cluster[1].ConnectAsync("second");
        await second.SubscribeAsync("shared/filter/#", QoS.AtLeastOnce);
        await first.SubscribeAsync("shared/filter/#", QoS.AtMostOnce); // the same subscription again
        Assert.Equal(1, cluster[1].Cluster.Counters.SubscribeWaits);

        await using var pub = await cluster[0].ConnectAsync("pub");
        await pub.PublishAsync("shared/filter/a", "1"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("shared/filter/a", (await TestCluster.NextAsync(second)).Topic);
        Assert.Equal("shared/filter/a", (await TestCluster.NextAsync(first)).Topic);
    }

    [Fact]
    public async Task With_NATS_away_a_SUBACK_goes_at_once_and_the_filter_is_in_NATS_when_it_is_back()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var sub = await cluster[1].ConnectAsync("sub");
        await using var pub = await cluster[0].ConnectAsync("pub");
        await cluster.Nats.KillAsync();
        Assert.True(SpinWait.SpinUntil(() => !cluster[1].Cluster.IsConnected, TestCluster.Patience));

        var started = Stopwatch.GetTimestamp();
        await sub.SubscribeAsync("late/#", QoS.AtLeastOnce);
        Assert.InRange(Stopwatch.GetElapsedTime(started), TimeSpan.Zero, ClusterNode.SubscribeWait / 2);
        Assert.Equal(0, cluster[1].Cluster.Counters.SubscribeWaits);

        await cluster.Nats.RestartAsync();
        Assert.True(SpinWait.SpinUntil(() => cluster.Nodes.All(n => n.Cluster.IsConnected), TestCluster.Patience));
        await cluster.SettledAsync();
        Assert.True(await TestCluster.PublishUntilReceivedAsync(pub, sub, "late/x"));
    }
}
