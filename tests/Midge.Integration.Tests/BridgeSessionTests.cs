using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.TestKit;
using static Midge.Integration.Tests.BridgeSupport;

namespace Midge.Integration.Tests;

/// <summary>
/// What a bridge keeps and tells (docs/bridges.md): its local session across a <c>kill -9</c> with
/// <c>persistence true</c>, <c>local_cleansession</c>, the <c>$SYS/broker/bridges/</c> counters,
/// <c>bridge_max_packet_size</c>, <c>notification_topic</c> and <c>notifications_local_only</c>.
/// </summary>
public class BridgeSessionTests
{
    /// <summary>A client on the remote with a session that outlives its connections (Clean Session 0).</summary>
    private static MqttClient PersistentSubscriber(int port, string clientId) =>
        new(new MqttClientOptions { Host = "127.0.0.1", Port = port, ClientId = clientId, CleanStart = false });

    private static async Task<List<string>> ReadUntilAsync(MqttClient client, string last)
    {
        var got = new List<string>();
        using var cts = new CancellationTokenSource(Patience);
        try
        {
            await foreach (var m in client.ReadMessagesAsync(cts.Token))
            {
                got.Add(Encoding.UTF8.GetString(m.Payload.Span));
                if (got[^1] == last) break;
            }
        }
        catch (OperationCanceledException)
        {
        }
        return got;
    }

    /// <summary>
    /// QoS 1 messages published on the bridging broker while the remote is away (never reached yet, or gone after
    /// it was) are acknowledged by it, survive its <c>kill -9</c>, and are forwarded after it restarts: every one
    /// arrives, in order.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Persistence_WhatWaitsForTheRemote_SurvivesKill9OfTheBridgingBroker(bool remoteSeenBefore)
    {
        string data = MidgeProcess.NewDirectory();
        try
        {
            await using var remote = new RestartableMosquitto();
            string[] config = [.. Lines(remote.Port, "mqttv311", "keep/# out 1"), "persistence true", $"persistence_location {data}/"];
            var first = await MidgeProcess.StartAsync(config);
            await using (first)
            {
                if (remoteSeenBefore)
                {
                    await remote.StartAsync();
                    Assert.True(await first.WaitForLogAsync("Bridge up connected", Patience), first.Log);
                    await remote.StopAsync();
                    Assert.True(await first.WaitForLogAsync("Bridge up disconnected", Patience), first.Log);
                }
                await using var publisher = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = first.Port, ClientId = "keep-pub" });
                await publisher.ConnectAsync();
                for (int i = 0; i < 100; i++)
                {
                    var result = await publisher.PublishAsync("keep/n", Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), QoS.AtLeastOnce);
                    Assert.True(result.IsSuccess);
                }
                await KillAsync(first);
            }

            await remote.StartAsync();
            await using var onRemote = await Collector.StartAsync(remote.Port, QoS.AtLeastOnce, "keep/#");
            await using var second = await MidgeProcess.StartAsync(config);
            var expected = Enumerable.Range(0, 100).Select(i => "keep/n " + i.ToString(CultureInfo.InvariantCulture)).ToArray();
            Assert.True(await onRemote.WaitForAsync(m => expected.All(m.Contains), Patience),
                $"{onRemote.Messages.Distinct().Count()} of 100 arrived\n{second.Log}");
            Assert.Equal(expected, onRemote.Messages.Distinct());
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary><c>local_cleansession false</c> (the default) keeps what is published while the remote is away;
    /// <c>true</c> ends the local session with each connection, so those messages are not kept.</summary>
    [Theory]
    [InlineData("false", true)]
    [InlineData("true", false)]
    public async Task LocalCleanSession_DecidesWhetherMessagesWaitWhileTheRemoteIsAway(string localCleanSession, bool kept)
    {
        await using var remote = new RestartableMosquitto();
        await remote.StartAsync();
        string subscriberId = "lcs-" + Guid.NewGuid().ToString("N")[..8];
        await using (var sub = PersistentSubscriber(remote.Port, subscriberId))
        {
            await sub.ConnectAsync();
            await sub.SubscribeAsync("lcs/#", QoS.AtLeastOnce);
        }
        await using var midge = await MidgeProcess.StartAsync([.. Lines(remote.Port, "mqttv311", "lcs/# out 1"), $"local_cleansession {localCleanSession}"]);
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Patience), midge.Log);
        await PublishAsync(midge.Port, "lcs/x", "before", 1);
        await Task.Delay(500);
        await remote.StopAsync();
        Assert.True(await midge.WaitForLogAsync("Bridge up disconnected", Patience), midge.Log);
        foreach (var p in new[] { "away1", "away2", "away3" }) await PublishAsync(midge.Port, "lcs/x", p, 1);
        await remote.StartAsync();
        Assert.True(await WaitForLogAsync(midge, "Bridge up connected", 2), midge.Log);
        await Task.Delay(500); // the new local session's subscriptions
        await PublishAsync(midge.Port, "lcs/x", "after", 1);

        await using var again = PersistentSubscriber(remote.Port, subscriberId);
        await again.ConnectAsync();
        var got = await ReadUntilAsync(again, "after");
        Assert.Contains("before", got);
        Assert.Contains("after", got);
        string[] away = ["away1", "away2", "away3"];
        if (kept) Assert.Equal(away, got.Where(away.Contains).Distinct());
        else Assert.DoesNotContain(got, away.Contains);
    }

    /// <summary>The latest value of each <c>$SYS/broker/bridges/up/...</c> topic a collector saw.</summary>
    private static Dictionary<string, string> Latest(Collector sys) =>
        sys.Messages.Select(m => m.Split(' ', 2)).GroupBy(p => p[0]["$SYS/broker/bridges/up/".Length..]).ToDictionary(g => g.Key, g => g.Last()[1]);

    private static async Task CountersAreAsync(Collector sys, string expected)
    {
        bool ok = await sys.WaitForAsync(_ => Describe(Latest(sys)) == expected, Patience);
        Assert.True(ok, $"expected {expected}, got {Describe(Latest(sys))}");
    }

    private static string Describe(Dictionary<string, string> values) =>
        string.Join(' ', new[] { "state", "messages/sent", "messages/received", "messages/queued", "messages/dropped", "reconnects" }
            .Select(k => $"{k}={values.GetValueOrDefault(k)}"));

    [Fact]
    public async Task Counters_AfterAKnownNumberOfMessages_AndBridgeMaxPacketSize()
    {
        await using var remote = new RestartableMosquitto();
        await remote.StartAsync();
        await using var midge = await MidgeProcess.StartAsync([.. Lines(remote.Port, "mqttv311", "cnt/# out 1", "back/# in 1"),
            "bridge_max_packet_size 200", "sys_interval 1"]);
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Patience), midge.Log);
        await using var sys = await Collector.StartAsync(midge.Port, QoS.AtMostOnce, "$SYS/broker/bridges/up/#");
        await CountersAreAsync(sys, "state=1 messages/sent=0 messages/received=0 messages/queued=0 messages/dropped=0 reconnects=0");
        await using var onRemote = await Collector.StartAsync(remote.Port, QoS.AtLeastOnce, "cnt/#");
        await using var onLocal = await Collector.StartAsync(midge.Port, QoS.AtLeastOnce, "back/#");
        await Task.Delay(500); // the bridge's remote subscription

        for (int i = 0; i < 5; i++) await PublishAsync(midge.Port, "cnt/small", i.ToString(CultureInfo.InvariantCulture), 1);
        await PublishAsync(midge.Port, "cnt/big", new string('x', 500), 1); // over 200 bytes: dropped, counted
        await PublishAsync(midge.Port, "cnt/small", "5", 1);
        for (int i = 0; i < 3; i++) await PublishAsync(remote.Port, "back/x", i.ToString(CultureInfo.InvariantCulture), 1);

        Assert.True(await onRemote.WaitForAsync(m => m.Length >= 6, Patience), string.Join('\n', onRemote.Messages) + midge.Log);
        Assert.True(await onLocal.WaitForAsync(m => m.Length >= 3, Patience), midge.Log);
        await CountersAreAsync(sys, "state=1 messages/sent=6 messages/received=3 messages/queued=0 messages/dropped=1 reconnects=0");
        Assert.Equal(Enumerable.Range(0, 6).Select(i => "cnt/small " + i), onRemote.Messages);
        Assert.Contains("a message to cnt/big is larger than bridge_max_packet_size (200); dropped", midge.Log, StringComparison.Ordinal);

        // The remote goes: state 0 and, while it is away, what waits is counted as queued; then a reconnect.
        await remote.StopAsync();
        Assert.True(await midge.WaitForLogAsync("Bridge up disconnected", Patience), midge.Log);
        await PublishAsync(midge.Port, "cnt/small", "6", 1);
        await PublishAsync(midge.Port, "cnt/small", "7", 1);
        await CountersAreAsync(sys, "state=0 messages/sent=6 messages/received=3 messages/queued=2 messages/dropped=1 reconnects=0");
        await remote.StartAsync();
        await CountersAreAsync(sys, "state=1 messages/sent=8 messages/received=3 messages/queued=0 messages/dropped=1 reconnects=1");
    }

    /// <summary><c>notification_topic</c> replaces <c>$SYS/broker/connection/&lt;id&gt;/state</c>; with
    /// <c>notifications_local_only true</c> neither the state nor the will goes to the remote.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NotificationTopic_AndNotificationsLocalOnly(bool localOnly)
    {
        await using var remote = await MosquittoBroker.StartAsync("allow_anonymous true");
        var midge = await MidgeProcess.StartAsync([.. Lines(remote.Port, "mqttv311", "other/# out 0"),
            "notification_topic bridges/up/state", $"notifications_local_only {localOnly.ToString().ToLowerInvariant()}"]);
        await using var onRemote = await Collector.StartAsync(remote.Port, QoS.AtLeastOnce, "bridges/#", "$SYS/broker/connection/#");
        await using (midge)
        {
            await using var local = await Collector.StartAsync(midge.Port, QoS.AtLeastOnce, "bridges/#", "$SYS/broker/connection/#");
            Assert.True(await local.WaitForAsync("bridges/up/state 1", Patience), string.Join('\n', local.Messages) + midge.Log);
            if (localOnly)
            {
                await Task.Delay(1500);
                Assert.Empty(onRemote.Messages);
            }
            else
            {
                Assert.True(await onRemote.WaitForAsync("bridges/up/state 1", Patience), string.Join('\n', onRemote.Messages) + midge.Log);
            }
            Assert.DoesNotContain(local.Messages, m => m.StartsWith("$SYS/broker/connection/", StringComparison.Ordinal));
            await KillAsync(midge);
        }
        // The bridge's will: 0 on the remote when its connection ends without a DISCONNECT, unless local only.
        if (localOnly)
        {
            await Task.Delay(1500);
            Assert.Empty(onRemote.Messages);
        }
        else
        {
            Assert.True(await onRemote.WaitForAsync(m => m.Length > 0 && m[^1] == "bridges/up/state 0", Patience), string.Join('\n', onRemote.Messages));
            Assert.DoesNotContain(onRemote.Messages, m => m.StartsWith("$SYS/broker/connection/", StringComparison.Ordinal));
        }
    }
}
