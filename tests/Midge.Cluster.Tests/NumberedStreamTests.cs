using System.Buffers;
using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Core.Messages;
using Midge.Protocol;
using NATS.Client.Core;

namespace Midge.Cluster.Tests;

/// <summary>Messages a persistent session of another node wants cross numbered per pair of nodes (docs/cluster.md,
/// "What is acknowledged when"): one NATS lost is sent again, the receiving node routes them in order and once each,
/// and confirms only what it has without a gap.</summary>
public class NumberedStreamTests
{
    private static string Text(ReceivedMessage m) => Encoding.UTF8.GetString(m.Payload.Span);

    /// <summary>Reads until <paramref name="count"/> messages came, then waits a moment for any that should not come.</summary>
    private static async Task<List<string>> ReadAsync(MqttClient client, int count)
    {
        var got = new List<string>();
        while (got.Count < count) got.Add(Text(await TestCluster.NextAsync(client)));
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(1_500));
        try
        {
            while (true) got.Add(Text(await client.ReadMessageAsync(quiet.Token)));
        }
        catch (OperationCanceledException)
        {
        }
        return got;
    }

    [Fact]
    public async Task Messages_NATS_lost_between_nodes_are_sent_again_and_arrive_in_order_once_each_before_their_PUBACK()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var kept = await cluster[1].ConnectAsync("kept", cleanStart: false, sessionExpiry: 600);
        await kept.SubscribeAsync("lossy/#", QoS.AtLeastOnce);
        await using var pub = await cluster[0].ConnectAsync("pub");
        await cluster.InterestSyncedAsync();
        var a = cluster[0].Cluster;
        var lost = new HashSet<string> { "3", "7", "8", "15" }; // each lost once, on its first way to NATS
        a.LoseNumberedForTest = m => lost.Remove(Encoding.UTF8.GetString(m.Payload.Span));

        // Twenty QoS 1 messages, all in flight at once: those after a lost one wait at node 2 until it is sent again.
        var acks = Enumerable.Range(0, 20)
            .Select(i => pub.PublishAsync("lossy/x", Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), QoS.AtLeastOnce).AsTask())
            .ToList();
        var results = await Task.WhenAll(acks).WaitAsync(TestCluster.Patience);
        Assert.All(results, r => Assert.True(r.IsSuccess));

        var got = await ReadAsync(kept, 20);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i.ToString(CultureInfo.InvariantCulture)), got);
        Assert.Empty(lost);
        Assert.True(a.Counters.Resent >= 4, $"sent again: {a.Counters.Resent}"); // what was lost (and, on a slow machine, more)
        Assert.Equal(0, a.Counters.ConfirmSlow); // every PUBACK waited for node 2's answer, none timed out
        Assert.Equal(0, cluster[1].Cluster.Counters.GapsSkipped);
    }

    [Fact]
    public async Task A_node_routes_another_nodes_numbered_stream_in_order_once_each_and_confirms_only_what_it_has_without_a_gap()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var node = cluster[0];
        await using var kept = await node.ConnectAsync("kept", cleanStart: false, sessionExpiry: 600);
        await kept.SubscribeAsync("ghost/#", QoS.AtLeastOnce);
        await cluster.SettledAsync();

        // Another node, "ghost", speaking on NATS directly: its numbered messages for n1, and n1's answers to it.
        await using var nats = new NatsConnection(new NatsOpts { Url = cluster.Nats.Url });
        await using var answers = await nats.SubscribeCoreAsync<string>("midge.test.confirm.ghost");
        await nats.PingAsync();
        var buffer = new ArrayBufferWriter<byte>();
        async Task SendAsync(long seq, long floor, long epoch = 1)
        {
            buffer.ResetWrittenCount();
            var message = Message.Create("ghost/" + seq.ToString(CultureInfo.InvariantCulture), "g"u8.ToArray(), QoS.AtLeastOnce, retain: false, null, "g", nowMs: 0);
            ClusterWire.Write(buffer, message, nowMs: 0, numbering: new ClusterWire.Numbering("ghost", epoch, [new("n1", seq, floor)]));
            await nats.PublishAsync("midge.test.resend.n1", buffer.WrittenMemory);
        }
        async Task<string> AnswerAsync() => (await answers.Msgs.ReadAsync().AsTask().WaitAsync(TestCluster.Patience)).Data!.Replace('\0', ' ');
        async Task<string> NextTopicAsync() => (await TestCluster.NextAsync(kept)).Topic;

        await SendAsync(1, floor: 1);
        Assert.Equal("ghost/1", await NextTopicAsync());
        Assert.Equal("n1 1 1", await AnswerAsync());

        // 3 before 2: held (the answer stays at 1), then both, in order, once 2 comes.
        await SendAsync(3, floor: 1);
        Assert.Equal("n1 1 1", await AnswerAsync());
        await SendAsync(2, floor: 1);
        Assert.Equal("ghost/2", await NextTopicAsync());
        Assert.Equal("ghost/3", await NextTopicAsync());
        Assert.Equal("n1 1 3", await AnswerAsync());

        // 2 again (its answer was lost, say): not routed twice, answered again.
        await SendAsync(2, floor: 1);
        Assert.Equal("n1 1 3", await AnswerAsync());

        // The sender let 4 go (its floor is 5 now): 5 is not held for it.
        await SendAsync(5, floor: 5);
        Assert.Equal("ghost/5", await NextTopicAsync());
        Assert.Equal("n1 1 5", await AnswerAsync());

        // A new run of that node numbers from its own start.
        await SendAsync(1, floor: 1, epoch: 2);
        Assert.Equal("ghost/1", await NextTopicAsync());
        Assert.Equal("n1 2 1", await AnswerAsync());

        var counters = node.Cluster.Counters;
        Assert.Equal((1L, 1L), (counters.Duplicates, counters.GapsSkipped));
        using var none = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await kept.ReadMessageAsync(none.Token));
    }
}
