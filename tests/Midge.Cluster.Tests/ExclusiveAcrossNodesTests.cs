using Midge.Client;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary><c>$exclusive/</c> subscriptions have one holder across the cluster, claimed in a JetStream key-value
/// bucket; the filter is free again once the holder unsubscribes or its session ends.</summary>
public class ExclusiveAcrossNodesTests
{
    private static async Task<ReasonCode> SubscribeAsync(MqttClient client, string filter) =>
        (await client.SubscribeAsync(filter, QoS.AtLeastOnce)).ReasonCodes.Single();

    /// <summary>A release crosses NATS in the background: subscribes until granted, within
    /// <see cref="TestCluster.Patience"/>; the last answer.</summary>
    private static async Task<ReasonCode> SubscribeWhenFreeAsync(MqttClient client, string filter)
    {
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        ReasonCode answer;
        while ((answer = await SubscribeAsync(client, filter)) == ReasonCode.QuotaExceeded && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        return answer;
    }

    [Fact]
    public async Task One_client_holds_an_exclusive_filter_across_the_cluster_until_it_unsubscribes_or_its_session_ends()
    {
        await using var cluster = await TestCluster.StartAsync(3, "exclusive_subscriptions true");
        await using var first = await cluster[0].ConnectAsync("first");
        await using var second = await cluster[1].ConnectAsync("second");
        await using var third = await cluster[2].ConnectAsync("third");

        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeAsync(first, "$exclusive/jobs/#"));
        Assert.Equal(ReasonCode.QuotaExceeded, await SubscribeAsync(second, "$exclusive/jobs/#"));
        Assert.Equal(ReasonCode.QuotaExceeded, await SubscribeAsync(third, "$exclusive/jobs/#"));
        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeAsync(first, "$exclusive/jobs/#")); // its own, again
        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeAsync(third, "$exclusive/other")); // another filter is free

        // The holder gets what any node publishes; the refused ones get nothing.
        await using var pub = await cluster[1].ConnectAsync("pub");
        await pub.PublishAsync("jobs/1", "x"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("jobs/1", (await TestCluster.NextAsync(first)).Topic);

        await first.UnsubscribeAsync("$exclusive/jobs/#");
        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeWhenFreeAsync(second, "$exclusive/jobs/#"));
        Assert.Equal(ReasonCode.QuotaExceeded, await SubscribeAsync(first, "$exclusive/jobs/#"));

        await second.DisposeAsync(); // its session ends with its connection (Clean Start, no expiry)
        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeWhenFreeAsync(third, "$exclusive/jobs/#"));
        Assert.Equal(ReasonCode.QuotaExceeded, await SubscribeAsync(first, "$exclusive/jobs/#"));
    }

    [Fact]
    public async Task A_holder_taken_over_by_another_node_keeps_its_exclusive_filter_there()
    {
        await using var cluster = await TestCluster.StartAsync(3, "exclusive_subscriptions true");
        var holder = await cluster[0].ConnectAsync("holder", cleanStart: false, sessionExpiry: 300);
        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeAsync(holder, "$exclusive/x"));
        Assert.True(cluster[0].Cluster.HoldsExclusive("x"));

        await using var moved = await cluster[1].ConnectAsync("holder", cleanStart: false, sessionExpiry: 300);
        Assert.True(moved.ServerConnAck!.SessionPresent);
        await holder.DisposeAsync();
        Assert.True(SpinWait.SpinUntil(() => cluster[1].Cluster.HoldsExclusive("x") && !cluster[0].Cluster.HoldsExclusive("x"), TestCluster.Patience));
        await using var other = await cluster[2].ConnectAsync("other");
        Assert.Equal(ReasonCode.QuotaExceeded, await SubscribeAsync(other, "$exclusive/x"));

        await moved.UnsubscribeAsync("$exclusive/x");
        Assert.Equal(ReasonCode.GrantedQoS1, await SubscribeWhenFreeAsync(other, "$exclusive/x"));
    }
}
