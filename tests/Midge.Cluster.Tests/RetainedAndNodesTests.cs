using System.Net.Http;
using System.Text;
using System.Text.Json;
using Midge.Client;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>Cluster-wide retained messages, the node list ($SYS, HTTP API), and a NATS outage.</summary>
public class RetainedAndNodesTests
{
    private static Task<ReceivedMessage> NextAsync(MqttClient client) => TestCluster.NextAsync(client);

    [Fact]
    public async Task A_retained_message_set_on_one_node_is_sent_by_every_node_and_to_a_node_that_joins_later()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using (var pub = await cluster[0].ConnectAsync("pub"))
        {
            await pub.PublishAsync("state/a", "on"u8.ToArray(), QoS.AtLeastOnce, retain: true);
            await pub.PublishAsync("state/b", "off"u8.ToArray(), QoS.AtLeastOnce, retain: true);
            await pub.PublishAsync("state/b", ReadOnlyMemory<byte>.Empty, QoS.AtLeastOnce, retain: true); // cleared
            await pub.PublishAsync("state/c", "x"u8.ToArray(), QoS.AtLeastOnce, retain: true,
                new MqttProperties { MessageExpiryInterval = 3600, ContentType = "text/plain" });
        }
        var late = await cluster.AddNodeAsync("n3");
        await late.Cluster.RetainedLoaded.WaitAsync(TestCluster.Patience);

        foreach (var node in cluster.Nodes)
        {
            Assert.True(SpinWait.SpinUntil(() => node.Server.Broker.GetRetained("state/#").Count == 2, TestCluster.Patience), node.Name);
            await using var sub = await node.ConnectAsync("sub-" + node.Name);
            await sub.SubscribeAsync("state/#", QoS.AtLeastOnce);
            var got = new[] { await NextAsync(sub), await NextAsync(sub) }.OrderBy(m => m.Topic, StringComparer.Ordinal).ToList();
            Assert.Equal([("state/a", "on", true), ("state/c", "x", true)], got.Select(m => (m.Topic, Encoding.UTF8.GetString(m.Payload.Span), m.Retain)));
            Assert.Equal("text/plain", got[1].Properties!.ContentType);
            Assert.InRange(got[1].Properties!.MessageExpiryInterval!.Value, 3000u, 3600u);
        }
    }

    [Fact]
    public async Task Every_node_lists_the_others_in_SYS_and_the_HTTP_API_and_a_stopped_node_shows_as_stopped()
    {
        int api = TestKit.FreePort.Next();
        await using var cluster = await TestCluster.StartAsync(1, $"sys_interval 1\nlistener {api} 127.0.0.1\nprotocol http\napi_allow_anonymous true");
        await cluster.AddNodeAsync("n2", "sys_interval 1");
        var n1 = cluster[0];
        Assert.True(SpinWait.SpinUntil(() => n1.Cluster.Nodes().Count == 2 && n1.Cluster.Nodes().All(n => n.Running), TestCluster.Patience));

        await using var sys = await n1.ConnectAsync("sys");
        await sys.SubscribeAsync("$SYS/broker/cluster/nodes/running", QoS.AtMostOnce);
        string running;
        do running = Encoding.UTF8.GetString((await NextAsync(sys)).Payload.Span); // the retained one may be older
        while (running != "2");

        using var http = new HttpClient();
        using var doc = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{api}/api/v5/nodes"));
        var names = doc.RootElement.EnumerateArray().Select(e => (e.GetProperty("node").GetString(), e.GetProperty("node_status").GetString())).ToList();
        Assert.Equal([("midge@n1", "running"), ("midge@n2", "running")], names);

        await cluster[1].DisposeAsync(); // says it is leaving
        Assert.True(SpinWait.SpinUntil(() => n1.Cluster.Nodes() is [_, { Running: false }], TestCluster.Patience));
    }

    [Fact]
    public async Task While_NATS_is_down_each_node_serves_its_own_clients_and_routing_resumes_when_it_is_back()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var local = await cluster[0].ConnectAsync("local");
        await local.SubscribeAsync("t/#", QoS.AtLeastOnce);
        await using var remote = await cluster[1].ConnectAsync("remote");
        await remote.SubscribeAsync("t/#", QoS.AtLeastOnce);
        await cluster.SettledAsync();
        await using var pub = await cluster[0].ConnectAsync("pub");

        await cluster.Nats.KillAsync();
        Assert.True(SpinWait.SpinUntil(() => !cluster[0].Cluster.IsConnected, TestCluster.Patience));
        await pub.PublishAsync("t/during", "1"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("t/during", (await NextAsync(local)).Topic);

        await cluster.Nats.RestartAsync();
        Assert.True(SpinWait.SpinUntil(() => cluster.Nodes.All(n => n.Cluster.IsConnected), TestCluster.Patience));
        await cluster.SettledAsync();
        // Subscriptions are made again on reconnection; a message published now crosses again.
        Assert.True(await TestCluster.PublishUntilReceivedAsync(pub, remote, "t/after"));
    }

    [Fact]
    public async Task A_node_whose_NATS_is_gone_still_stops_promptly()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var client = await cluster[0].ConnectAsync("c");
        await client.SubscribeAsync("x/#", QoS.AtLeastOnce);
        await client.PublishAsync("x/1", "y"u8.ToArray(), QoS.AtLeastOnce, retain: true);
        await cluster.Nats.KillAsync();
        Assert.True(SpinWait.SpinUntil(() => !cluster[0].Cluster.IsConnected, TestCluster.Patience));
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await cluster[0].DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.InRange(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, 0, 15);
    }
}
