using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Cluster.Tests;

/// <summary>Messages published on one node reach the subscribers of the others as on one broker, crossing the network
/// once per interested node (a real nats-server, brokers in process, the Midge client).</summary>
public class CrossNodeRoutingTests
{
    private static Task<ReceivedMessage> NextAsync(MqttClient client) => TestCluster.NextAsync(client);

    private static async Task NothingMoreAsync(MqttClient client)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.ReadMessageAsync(cts.Token));
    }

    [Fact]
    public async Task A_message_reaches_subscribers_on_other_nodes_with_QoS_retain_flag_properties_and_subscription_ids()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var sub1 = await cluster[1].ConnectAsync("sub1");
        await sub1.SubscribeAsync([new TopicSubscription("room/+/temp", QoS.AtLeastOnce) { RetainAsPublished = true }],
            new MqttProperties { SubscriptionIdentifiers = [7] });
        await using var sub2 = await cluster[2].ConnectAsync("sub2", ProtocolVersion.V311);
        await sub2.SubscribeAsync("room/#", QoS.ExactlyOnce);
        await cluster.SettledAsync();

        await using var pub = await cluster[0].ConnectAsync("pub");
        var properties = new MqttProperties
        {
            ContentType = "text/plain",
            ResponseTopic = "reply/to",
            CorrelationData = [9, 8],
            MessageExpiryInterval = 300,
            UserProperties = [new UserProperty("origin", "n1")],
        };
        await pub.PublishAsync("room/kitchen/temp", "21.5"u8.ToArray(), QoS.ExactlyOnce, retain: true, properties);

        var got1 = await NextAsync(sub1);
        Assert.Equal(("room/kitchen/temp", "21.5", QoS.AtLeastOnce, true), (got1.Topic, Encoding.UTF8.GetString(got1.Payload.Span), got1.QoS, got1.Retain));
        Assert.Equal([7u], got1.Properties!.SubscriptionIdentifiers);
        Assert.Equal(("text/plain", "reply/to"), (got1.Properties.ContentType, got1.Properties.ResponseTopic));
        Assert.Equal([9, 8], got1.Properties.CorrelationData);
        Assert.Equal([new UserProperty("origin", "n1")], got1.Properties.UserProperties);
        Assert.InRange(got1.Properties.MessageExpiryInterval!.Value, 290u, 300u);

        var got2 = await NextAsync(sub2); // 3.1.1, no Retain As Published: RETAIN 0 on a live message
        Assert.Equal(("room/kitchen/temp", "21.5", QoS.ExactlyOnce, false), (got2.Topic, Encoding.UTF8.GetString(got2.Payload.Span), got2.QoS, got2.Retain));

        // Once per node, whatever the number of subscriptions there.
        Assert.Equal(1, cluster[1].Cluster.Counters.Received);
        Assert.Equal(1, cluster[2].Cluster.Counters.Received);
        Assert.Equal(1, cluster[0].Cluster.Counters.Sent);
    }

    [Fact]
    public async Task Each_interested_node_gets_a_message_once_and_a_node_without_interest_gets_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var subscribers = new List<MqttClient>();
        try
        {
            // Node 2: three clients whose filters overlap on a/b; and one client with two overlapping filters.
            foreach (var (id, filter) in new[] { ("s1", "a/#"), ("s2", "a/+"), ("s3", "a/b"), ("s4", "#") })
            {
                var c = await cluster[1].ConnectAsync(id);
                await c.SubscribeAsync(filter, QoS.AtLeastOnce);
                subscribers.Add(c);
            }
            await subscribers[3].SubscribeAsync("+/b", QoS.AtMostOnce);
            await cluster.SettledAsync();

            await using var pub = await cluster[0].ConnectAsync("pub");
            for (int i = 0; i < 20; i++) await pub.PublishAsync("a/b", Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), QoS.AtLeastOnce);
            await pub.PublishAsync("a", "parent"u8.ToArray(), QoS.AtLeastOnce);

            // Every subscriber gets every message once, in order (s4's two filters merged into one delivery).
            foreach (var c in subscribers.Take(3).Append(subscribers[3]))
            {
                var expected = Enumerable.Range(0, 20).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
                if (c != subscribers[1] && c != subscribers[2]) expected.Add("parent"); // a/# and # match a
                var got = new List<string>();
                for (int i = 0; i < expected.Count; i++) got.Add(Encoding.UTF8.GetString((await NextAsync(c)).Payload.Span));
                Assert.Equal(expected, got);
                await NothingMoreAsync(c);
            }
            Assert.Equal(21, cluster[1].Cluster.Counters.Received);
            Assert.Equal(0, cluster[2].Cluster.Counters.Received); // no subscription there: NATS sends it nothing
        }
        finally
        {
            foreach (var c in subscribers) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Topics_with_awkward_characters_cross_exactly_and_dollar_topics_stay_out_of_wildcards()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var all = await cluster[1].ConnectAsync("all");
        await all.SubscribeAsync("#", QoS.AtLeastOnce);
        await using var dollar = await cluster[1].ConnectAsync("dollar");
        await dollar.SubscribeAsync("$app/#", QoS.AtLeastOnce);
        await using var exact = await cluster[1].ConnectAsync("exact");
        await exact.SubscribeAsync("a.b/ /*/>", QoS.AtLeastOnce);
        await cluster.SettledAsync();

        await using var pub = await cluster[0].ConnectAsync("pub");
        string[] topics = ["a.b/ /*/>", "a_2Eb/ /*/>", "//", "é/😀", "$app/x"];
        foreach (var t in topics) await pub.PublishAsync(t, Encoding.UTF8.GetBytes(t), QoS.AtLeastOnce);

        var seen = new List<string>();
        for (int i = 0; i < 4; i++) seen.Add((await NextAsync(all)).Topic);
        Assert.Equal(topics[..4], seen); // not $app/x: # does not match $ topics
        Assert.Equal("$app/x", (await NextAsync(dollar)).Topic);
        Assert.Equal("a.b/ /*/>", (await NextAsync(exact)).Topic);
        await NothingMoreAsync(exact); // a_2Eb/... is another topic
        await NothingMoreAsync(all);
    }

    [Fact]
    public async Task No_local_keeps_a_clients_own_messages_from_it_but_not_other_nodes_messages()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var me = await cluster[1].ConnectAsync("me");
        await me.SubscribeAsync([new TopicSubscription("chat/#", QoS.AtLeastOnce) { NoLocal = true }]);
        await cluster.SettledAsync();
        await using var other = await cluster[0].ConnectAsync("other");

        await me.PublishAsync("chat/mine", "1"u8.ToArray(), QoS.AtLeastOnce);
        await other.PublishAsync("chat/theirs", "2"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("chat/theirs", (await NextAsync(me)).Topic);
        await NothingMoreAsync(me);
    }

    [Fact]
    public async Task An_unsubscribed_filter_stops_the_traffic_to_its_node()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var sub = await cluster[1].ConnectAsync("sub");
        await sub.SubscribeAsync("t/#", QoS.AtLeastOnce);
        await cluster.SettledAsync();
        await using var pub = await cluster[0].ConnectAsync("pub");
        await pub.PublishAsync("t/1", "x"u8.ToArray(), QoS.AtLeastOnce);
        await NextAsync(sub);

        await sub.UnsubscribeAsync("t/#");
        await cluster.SettledAsync();
        await pub.PublishAsync("t/2", "x"u8.ToArray(), QoS.AtLeastOnce);
        await Task.Delay(200);
        Assert.Equal(1, cluster[1].Cluster.Counters.Received);
    }
}
