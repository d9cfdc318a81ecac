using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Cluster.Tests;

/// <summary>Shared subscriptions across nodes: each message reaches one member of a group, cluster-wide, whichever
/// nodes its members are on, without loss when a member goes away; plain subscriptions and other groups on the same
/// nodes get theirs as well, once each.</summary>
public class SharedAcrossNodesTests
{
    private static string Text(int i) => i.ToString(CultureInfo.InvariantCulture);

    private static Func<CancellationToken, Task<string?>> Reader(MqttClient client) =>
        async ct => Encoding.UTF8.GetString((await client.ReadMessageAsync(ct)).Payload.Span);

    /// <summary>Reads from every reader at once until <paramref name="expected"/> payloads came in all, within
    /// <see cref="TestCluster.Patience"/>; each payload with the index of the reader that got it.</summary>
    private static async Task<List<(int Reader, string Payload)>> CollectAsync(int expected,
        params Func<CancellationToken, Task<string?>>[] readers)
    {
        var got = new List<(int, string)>();
        using var enough = new CancellationTokenSource(TestCluster.Patience);
        var tasks = readers.Select((read, index) => Task.Run(async () =>
        {
            try
            {
                while (await read(enough.Token) is { } payload)
                {
                    lock (got)
                    {
                        got.Add((index, payload));
                        if (got.Count >= expected) enough.Cancel();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }));
        await Task.WhenAll(tasks);
        return got;
    }

    private static async Task NothingMoreAsync(params MqttClient[] clients)
    {
        foreach (var client in clients)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.ReadMessageAsync(cts.Token));
        }
    }

    [Fact]
    public async Task Each_message_reaches_one_member_of_a_group_cluster_wide_and_plain_subscribers_and_other_groups_get_theirs()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var members = new List<MqttClient>();
        try
        {
            for (int n = 0; n < 3; n++)
            {
                members.Add(await cluster[n].SubscriberAsync($"m{n + 1}", "$share/g/jobs/#"));
            }
            // Node 2 also has a plain subscription, node 3 another group, on the same topics.
            await using var plain = await cluster[1].SubscriberAsync("plain", "jobs/#");
            await using var other = await cluster[2].SubscriberAsync("other", "$share/h/jobs/+");

            await using var pub = await cluster[0].ConnectAsync("pub");
            const int count = 60;
            for (int i = 0; i < count; i++) await pub.PublishAsync($"jobs/{Text(i)}", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);

            var shared = await CollectAsync(count, [.. members.Select(Reader)]);
            Assert.Equal(Enumerable.Range(0, count).Select(Text).Order(), shared.Select(g => g.Payload).Order());
            Assert.True(shared.Select(g => g.Reader).Distinct().Count() >= 2, "NATS chose one node for every message");
            var toPlain = await CollectAsync(count, Reader(plain));
            Assert.Equal(Enumerable.Range(0, count).Select(Text), toPlain.Select(g => g.Payload)); // every one, in order
            var toOther = await CollectAsync(count, Reader(other));
            Assert.Equal(Enumerable.Range(0, count).Select(Text), toOther.Select(g => g.Payload));
            await NothingMoreAsync([.. members, plain, other]);
        }
        finally
        {
            foreach (var member in members) await member.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_group_whose_members_are_all_on_the_publishers_node_gets_each_message_once()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var a = await cluster[0].SubscriberAsync("a", "$share/g/local/#");
        await using var b = await cluster[0].SubscriberAsync("b", "$share/g/local/#");
        await using var plain = await cluster[1].SubscriberAsync("plain", "local/#");

        await using var pub = await cluster[0].ConnectAsync("pub");
        for (int i = 0; i < 20; i++) await pub.PublishAsync("local/x", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);

        var got = await CollectAsync(20, Reader(a), Reader(b));
        Assert.Equal(Enumerable.Range(0, 20).Select(Text).Order(), got.Select(g => g.Payload).Order());
        Assert.Equal(20, (await CollectAsync(20, Reader(plain))).Count);
        await NothingMoreAsync(a, b, plain);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_member_that_goes_away_unacknowledged_hands_its_messages_to_another_member_on_its_node_or_another(bool memberOnItsNode)
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var slow = await RawMqttClient.ConnectMqttAsync(cluster[1].Port, "slow");
        await slow.SendAsync(RawMqttClient.Subscribe(1, "$share/g/work/#", qos: 1));
        Assert.Equal(9, (await slow.ReadAsync(TestCluster.Patience))!.Type); // SUBACK
        await using var far = await cluster[2].SubscriberAsync("far", "$share/g/work/#");
        await using var near = memberOnItsNode ? await cluster[1].SubscriberAsync("near", "$share/g/work/#") : null;
        MqttClient[] others = near is null ? [far] : [far, near];

        await using var pub = await cluster[0].ConnectAsync("pub");
        const int count = 16; // fewer than max_inflight_messages (20): "slow" is sent every message it is given
        for (int i = 0; i < count; i++) await pub.PublishAsync("work/item", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);

        // "slow" (the last reader) never acknowledges what it gets.
        var first = await CollectAsync(count, [.. others.Select(Reader), ReadPublish(slow)]);
        Assert.Equal(Enumerable.Range(0, count).Select(Text).Order(), first.Select(g => g.Payload).Order());
        var unacknowledged = first.Where(g => g.Reader == others.Length).Select(g => g.Payload).ToList();
        Assert.NotEmpty(unacknowledged);

        slow.Dispose(); // to "near" when it is there; otherwise node 2 hands them on to node 3's member
        var handedOn = await CollectAsync(unacknowledged.Count, [.. others.Select(Reader)]);
        Assert.Equal(unacknowledged.Order(), handedOn.Select(g => g.Payload).Order());
        int handedOff = memberOnItsNode ? 0 : unacknowledged.Count; // counted when the answer is back, after the delivery
        Assert.True(SpinWait.SpinUntil(() => cluster[1].Cluster.Counters.HandedOff >= handedOff, TestCluster.Patience));
        Assert.Equal(handedOff, cluster[1].Cluster.Counters.HandedOff);
        Assert.Equal(0, cluster[1].Server.Broker.SharedWaitingCount);
        await NothingMoreAsync(others);
    }

    /// <summary>The payloads of the QoS 1 PUBLISHes a raw 3.1.1 connection receives (never acknowledged); null once it
    /// is closed.</summary>
    private static Func<CancellationToken, Task<string?>> ReadPublish(RawMqttClient client) => async ct =>
    {
        while (true)
        {
            var packet = await client.ReadAsync(TestCluster.Patience).WaitAsync(ct);
            if (packet is null) return null;
            if (packet.Type != 3) continue;
            int topicLength = BinaryPrimitives.ReadUInt16BigEndian(packet.Body);
            return Encoding.UTF8.GetString(packet.Body.AsSpan(2 + topicLength + 2));
        }
    };

    [Fact]
    public async Task While_NATS_is_away_a_nodes_groups_are_served_on_it_and_no_group_gets_those_messages_again_later()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var here = await cluster[0].SubscriberAsync("here", "$share/g/t/#");
        await using var there = await cluster[1].SubscriberAsync("there", "$share/g/t/#");
        await using var pub = await cluster[0].ConnectAsync("pub");

        await cluster.Nats.KillAsync();
        Assert.True(SpinWait.SpinUntil(() => !cluster[0].Cluster.IsConnected, TestCluster.Patience));
        for (int i = 0; i < 5; i++) await pub.PublishAsync("t/during", Encoding.UTF8.GetBytes(Text(i)), QoS.AtLeastOnce);
        var during = await CollectAsync(5, Reader(here));
        Assert.Equal(Enumerable.Range(0, 5).Select(Text), during.Select(g => g.Payload));

        await cluster.Nats.RestartAsync();
        Assert.True(SpinWait.SpinUntil(() => cluster.Nodes.All(n => n.Cluster.IsConnected), TestCluster.Patience));
        await cluster.SettledAsync();
        // What waited for NATS went out once it was back (for other nodes' plain subscribers), flagged: node 2 receives
        // those its group subscription was back in time for (NATS.Net subscribes again in the background) and gives
        // them to no member.
        var counters = cluster[0].Cluster.Counters;
        Assert.True(SpinWait.SpinUntil(() => counters.Sent + counters.Dropped >= 5, TestCluster.Patience));
        Assert.Equal((5L, 0L), (counters.Sent, counters.Dropped));
        await NothingMoreAsync(here, there);

        // Once NATS is back, the group is the cluster's again: a message reaches one member, once.
        string? after = null;
        for (int i = 0; i < 50 && after is null; i++)
        {
            await pub.PublishAsync("t/after", "x"u8.ToArray(), QoS.AtLeastOnce);
            var got = await CollectAsync(1, TimedReader(here), TimedReader(there));
            after = got.Count == 1 ? got[0].Payload : null;
        }
        Assert.Equal("x", after);
        await NothingMoreAsync(here, there);

        static Func<CancellationToken, Task<string?>> TimedReader(MqttClient client) => async ct =>
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
            linked.CancelAfter(200);
            return Encoding.UTF8.GetString((await client.ReadMessageAsync(linked.Token)).Payload.Span);
        };
    }
}
