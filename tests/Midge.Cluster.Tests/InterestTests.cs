using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>A node publishes a message to NATS only when another node (or a shared group) wants it: the nodes tell
/// each other what they subscribe to, a SUBACK waits until every running node knows, and a node that is unsure
/// publishes everything.</summary>
public class InterestTests
{
    [Fact]
    public async Task A_message_only_its_own_node_wants_stays_there_and_one_another_node_wants_crosses_right_after_its_SUBACK()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var local = await cluster[0].SubscriberAsync("local", "only/here/#");
        await using var pub = await cluster[0].ConnectAsync("pub");
        await cluster.InterestSyncedAsync();
        var a = cluster[0].Cluster.Counters;
        long sentBefore = a.Sent, keptBefore = a.KeptLocal;

        for (int i = 0; i < 20; i++) await pub.PublishAsync("only/here/x", Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), QoS.AtLeastOnce);
        for (int i = 0; i < 20; i++) Assert.Equal(i.ToString(CultureInfo.InvariantCulture), Encoding.UTF8.GetString((await TestCluster.NextAsync(local)).Payload.Span));
        Assert.Equal(sentBefore, a.Sent);
        Assert.Equal(keptBefore + 20, a.KeptLocal);

        // A subscriber on the other node: the first message after its SUBACK crosses, without retries.
        for (int i = 0; i < 10; i++)
        {
            string n = i.ToString(CultureInfo.InvariantCulture);
            await using var remote = await cluster[1].SubscriberAsync("remote" + n, i % 2 == 0 ? $"only/here/{n}" : "only/+/" + n);
            await pub.PublishAsync($"only/here/{n}", "1"u8.ToArray(), QoS.AtLeastOnce);
            Assert.Equal($"only/here/{n}", (await TestCluster.NextAsync(remote)).Topic);
        }
        Assert.True(a.Sent >= sentBefore + 10);

        // Once it has gone, the first node stops publishing that topic again.
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        long kept;
        do
        {
            Assert.True(DateTime.UtcNow < deadline, "the first node went on publishing for a filter nobody holds");
            kept = a.KeptLocal;
            await pub.PublishAsync("only/here/0", "1"u8.ToArray(), QoS.AtLeastOnce);
        }
        while (a.KeptLocal == kept);
    }

    [Fact]
    public async Task Only_messages_for_persistent_sessions_of_other_nodes_ask_for_confirmation()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.InterestSyncedAsync();
        await using var clean = await cluster[1].SubscriberAsync("clean", "conf/clean");
        await using var kept = await cluster[1].ConnectAsync("kept", cleanStart: false, sessionExpiry: 600);
        await kept.SubscribeAsync("conf/kept", QoS.AtLeastOnce);
        await using var pub = await cluster[0].ConnectAsync("pub");
        var a = cluster[0].Cluster;

        long asked = a.ConfirmationsAsked;
        await pub.PublishAsync("conf/clean", "1"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("conf/clean", (await TestCluster.NextAsync(clean)).Topic);
        Assert.Equal(asked, a.ConfirmationsAsked); // a clean session's copy dies with its node anyway: no wait

        await pub.PublishAsync("conf/kept", "1"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("conf/kept", (await TestCluster.NextAsync(kept)).Topic);
        Assert.Equal(asked + 1, a.ConfirmationsAsked);
        await pub.PublishAsync("conf/kept", "2"u8.ToArray(), QoS.AtMostOnce);
        Assert.Equal("conf/kept", (await TestCluster.NextAsync(kept)).Topic);
        Assert.Equal(asked + 1, a.ConfirmationsAsked); // QoS 0: nothing is acknowledged

        // The persistent session leaves the filter: the other node stops asking.
        await kept.UnsubscribeAsync("conf/kept");
        await using var cleanToo = await cluster[1].SubscriberAsync("clean-too", "conf/kept");
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        long before;
        do
        {
            Assert.True(DateTime.UtcNow < deadline, "the first node kept asking for confirmation");
            before = a.ConfirmationsAsked;
            await pub.PublishAsync("conf/kept", "3"u8.ToArray(), QoS.AtLeastOnce);
        }
        while (a.ConfirmationsAsked != before);
        Assert.Equal(0, a.Counters.ConfirmSlow);
    }

    [Fact]
    public async Task A_shared_group_on_another_node_and_a_retained_message_still_go_to_the_cluster()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var member = await cluster[1].SubscriberAsync("member", "$share/g/jobs/+");
        await using var pub = await cluster[0].ConnectAsync("pub");
        await cluster.InterestSyncedAsync();

        await pub.PublishAsync("jobs/1", "1"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("jobs/1", (await TestCluster.NextAsync(member)).Topic);

        // Nobody subscribes to it, yet a new subscriber on the other node gets it: it reached the cluster's bucket.
        await pub.PublishAsync("kept/alone", "r"u8.ToArray(), QoS.AtLeastOnce, retain: true);
        ReceivedMessage? got = null;
        for (var deadline = DateTime.UtcNow + TestCluster.Patience; got is null && DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            await using var late = await cluster[1].ConnectAsync("late");
            await late.SubscribeAsync("kept/alone", QoS.AtLeastOnce);
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            try
            {
                got = await late.ReadMessageAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
        Assert.NotNull(got);
        Assert.True(got!.Retain);
    }

    [Fact]
    public async Task Malformed_announcements_are_counted_and_a_gap_makes_the_node_ask_again()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.InterestSyncedAsync();
        var node = cluster[0].Cluster;
        long malformed = node.Counters.Malformed;
        node.ApplyInterest("nonsense"u8.ToArray());
        node.ApplyInterest("Dx\0n9\0i"u8.ToArray());
        Assert.Equal(malformed + 2, node.Counters.Malformed);

        // An announcement from a node never heard of, numbered 5: this node is unsure (publishes everything), asks
        // everyone, and is sure again once the real nodes answered (the stranger sends no heartbeat: it is not waited for
        // beyond the heartbeat timeout).
        node.ApplyInterest(Encoding.UTF8.GetBytes("D5\0stranger\0abc\0+some/filter"));
        Assert.False(node.InterestSynced);
        var deadline = DateTime.UtcNow + TestCluster.Patience;
        while (!node.InterestSynced)
        {
            Assert.True(DateTime.UtcNow < deadline, "the node did not become sure again");
            await Task.Delay(100);
        }
    }
}
