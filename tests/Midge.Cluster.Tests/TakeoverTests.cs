using System.Text;
using Midge.Client;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>One client id, one session, cluster-wide: a client connecting to another node takes its session over,
/// with its subscriptions and queued messages (a real nats-server with JetStream, brokers in process).</summary>
public class TakeoverTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Task<ReceivedMessage> NextAsync(MqttClient client) => TestCluster.NextAsync(client);

    [Fact]
    public async Task A_client_moving_to_another_node_takes_its_session_with_subscriptions_and_queued_messages()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var first = await cluster[0].ConnectAsync("mover", cleanStart: false, sessionExpiry: 600);
        Assert.False(first.ServerConnAck!.SessionPresent);
        await first.SubscribeAsync("jobs/#", QoS.AtLeastOnce);
        await first.DisconnectAsync();
        await first.DisposeAsync();
        await cluster.SettledAsync();

        // Published on node 3 while the client is away: queued in its session on node 1.
        await using (var pub = await cluster[2].ConnectAsync("pub"))
        {
            for (int i = 1; i <= 3; i++) await pub.PublishAsync($"jobs/{i}", Encoding.UTF8.GetBytes($"job {i}"), QoS.AtLeastOnce);
        }
        Assert.True(SpinWait.SpinUntil(() => cluster[0].Server.Broker.Clients.TryGet("mover", out var s) && s.QueuedCount == 3, TestCluster.Patience));

        // It comes back on node 2: Session Present, the queued messages, and its subscription now lives on node 2.
        await using var moved = await cluster[1].ConnectAsync("mover", cleanStart: false, sessionExpiry: 600);
        Assert.True(moved.ServerConnAck!.SessionPresent);
        for (int i = 1; i <= 3; i++) Assert.Equal($"job {i}", Encoding.UTF8.GetString((await NextAsync(moved)).Payload.Span));
        Assert.False(cluster[0].Server.Broker.Clients.TryGet("mover", out _));
        Assert.Equal(1, cluster[1].Cluster.Counters.Takeovers);

        await cluster.SettledAsync();
        await using (var pub = await cluster[0].ConnectAsync("pub2"))
        {
            await pub.PublishAsync("jobs/4", "job 4"u8.ToArray(), QoS.AtLeastOnce);
        }
        Assert.Equal("job 4", Encoding.UTF8.GetString((await NextAsync(moved)).Payload.Span));
    }

    [Fact]
    public async Task The_connection_on_the_old_node_gets_DISCONNECT_0x8E()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var old = await cluster[0].ConnectAsync("twice", cleanStart: false, sessionExpiry: 60);
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        old.Disconnected += (_, e) => disconnected.TrySetResult(e);
        await old.SubscribeAsync("a/b", QoS.AtLeastOnce);

        await using var @new = await cluster[1].ConnectAsync("twice", cleanStart: false, sessionExpiry: 60);
        Assert.True(@new.ServerConnAck!.SessionPresent);
        var e = await disconnected.Task.WaitAsync(TestCluster.Patience);
        Assert.Equal((ReasonCode.SessionTakenOver, true), (e.ReasonCode, e.ByServer));

        // And back again: node 1 takes it from node 2 the same way.
        await using var again = await cluster[0].ConnectAsync("twice", cleanStart: false, sessionExpiry: 60);
        Assert.True(again.ServerConnAck!.SessionPresent);
        Assert.True(SpinWait.SpinUntil(() => !cluster[1].Server.Broker.Clients.TryGet("twice", out _), TestCluster.Patience));
    }

    [Fact]
    public async Task Clean_start_on_another_node_ends_the_old_session()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var old = await cluster[0].ConnectAsync("fresh", cleanStart: false, sessionExpiry: 600);
        await old.SubscribeAsync("x/#", QoS.AtLeastOnce);
        await old.DisconnectAsync();
        await old.DisposeAsync();

        await using var fresh = await cluster[1].ConnectAsync("fresh", cleanStart: true, sessionExpiry: 600);
        Assert.False(fresh.ServerConnAck!.SessionPresent);
        Assert.False(cluster[0].Server.Broker.Clients.TryGet("fresh", out _));
        Assert.True(cluster[1].Server.Broker.Clients.TryGet("fresh", out var session));
        Assert.Equal(0, session.SubscriptionCount);
    }

    [Fact]
    public async Task An_MQTT_3_persistent_session_moves_too()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var old = await cluster[0].ConnectAsync("v3", ProtocolVersion.V311, cleanStart: false);
        await old.SubscribeAsync("v3/#", QoS.AtLeastOnce);
        await old.DisconnectAsync();
        await old.DisposeAsync();
        await using var moved = await cluster[1].ConnectAsync("v3", ProtocolVersion.V311, cleanStart: false);
        Assert.True(moved.ServerConnAck!.SessionPresent);
        await cluster.SettledAsync();
        await using var pub = await cluster[0].ConnectAsync("pub");
        await pub.PublishAsync("v3/x", "y"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal("v3/x", (await NextAsync(moved)).Topic);
    }

    /// <summary>The figure docs/benchmarks.md quotes: how long a CONNECT that takes a session from another node waits
    /// for its CONNACK (claim, hand-over, resume), against a CONNECT that resumes on the same node.</summary>
    [Fact]
    public async Task Cross_node_takeover_time()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var across = new List<double>();
        var same = new List<double>();
        for (int i = 0; i < 20; i++)
        {
            var id = $"t{i}";
            var c = await cluster[0].ConnectAsync(id, cleanStart: false, sessionExpiry: 60);
            await c.SubscribeAsync($"t/{i}/#", QoS.AtLeastOnce);
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            await using (var again = await cluster[0].ConnectAsync(id, cleanStart: false, sessionExpiry: 60))
            {
                same.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                started = System.Diagnostics.Stopwatch.GetTimestamp();
                await using var moved = await cluster[1].ConnectAsync(id, cleanStart: false, sessionExpiry: 60);
                across.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                Assert.True(moved.ServerConnAck!.SessionPresent);
            }
            await c.DisposeAsync();
        }
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        output.WriteLine($"takeover across nodes: median {Median(across):F1} ms, max {across.Max():F1} ms; same node: median {Median(same):F1} ms");
        Assert.True(Median(across) < 1000, $"median takeover {Median(across):F1} ms");
    }
}
