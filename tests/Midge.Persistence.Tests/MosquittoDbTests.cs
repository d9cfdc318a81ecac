using System.Text;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Persistence.Tests;

/// <summary>
/// <see cref="MosquittoDb"/> against files the real Mosquitto (Debian's 2.0.11) writes: each test starts its own
/// Mosquitto on its own port and directory, makes state with real clients, stops it and reads what it saved.
/// </summary>
public sealed class MosquittoDbTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("midge-mosqdb-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Sessions of both protocol versions with their subscriptions, messages queued while they were away,
    /// messages in flight in every outgoing state, a client's QoS 2 PUBLISH held for PUBREL, and retained messages.</summary>
    internal static async Task<(DateTimeOffset Before, DateTimeOffset After)> SessionsScenarioAsync(int port)
    {
        var before = DateTimeOffset.UtcNow;
        // A 3.1.1 persistent session.
        var sub = await PeerProcess.RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", $"{port}", "-c", "-i", "s1", "-q", "1", "-t", "a/#", "-E"],
            TimeSpan.FromSeconds(10));
        Assert.True(sub.ExitCode == 0, sub.ToString());

        // An MQTT 5 session: expiry 3600 s, a user name, subscription identifier 7, options No Local, Retain As
        // Published, Retain Handling 2 on one filter, and a shared subscription.
        using (var s5 = await MosquittoDbFiles.ConnectAsync(port, MosquittoDbFiles.ConnectV5("s5", 3600, "bob")))
        {
            await s5.SendAsync(MosquittoDbFiles.SubscribeV5(1, 7, ("b/#", 0x02 | 0x04 | 0x08 | 0x20), ("$share/g/c/#", 0x01)));
            await MosquittoDbFiles.ExpectAsync(s5, 9);
            await s5.SendAsync([0xE0, 0x00]);
        }

        // A 3.1.1 session with one message in each outgoing state: unacknowledged QoS 1, QoS 2 before PUBREC, QoS 2
        // after PUBREL (PUBCOMP never sent); the connection then drops.
        using (var inflight = await MosquittoDbFiles.ConnectAsync(port, RawMqttClient.Connect("inf", RawMqttClient.V311, connectFlags: 0x00)))
        {
            await inflight.SendAsync(RawMqttClient.Subscribe(1, "d/#", qos: 2));
            await MosquittoDbFiles.ExpectAsync(inflight, 9);
            await Publish(port, "-i", "pub-d", "-q", "1", "-t", "d/1", "-m", "one");
            await Publish(port, "-i", "pub-d", "-q", "2", "-t", "d/2", "-m", "two");
            await Publish(port, "-i", "pub-d", "-q", "2", "-t", "d/3", "-m", "three");
            var ids = new Dictionary<string, ushort>();
            for (int i = 0; i < 3; i++)
            {
                var (topic, id) = MosquittoDbFiles.Published(await MosquittoDbFiles.ExpectAsync(inflight, 3));
                ids[topic] = id;
            }
            await inflight.SendAsync(MosquittoDbFiles.PubRec(ids["d/3"]));
            await MosquittoDbFiles.ExpectAsync(inflight, 6);
        }

        // A client's QoS 2 PUBLISH, PUBREC received, PUBREL never sent.
        using (var incoming = await MosquittoDbFiles.ConnectAsync(port, RawMqttClient.Connect("inc", RawMqttClient.V311, connectFlags: 0x00)))
        {
            await incoming.SendAsync(MosquittoDbFiles.Publish("e/1", "incoming", 2, 42));
            await MosquittoDbFiles.ExpectAsync(incoming, 5);
        }

        // Messages for the sessions while they are away.
        await Publish(port, "-V", "mqttv5", "-i", "pubber", "-u", "alice", "-q", "1", "-t", "a/x", "-m", "hello1");
        await Publish(port, "-V", "mqttv5", "-i", "pubber", "-q", "2", "-t", "b/y", "-m", "hello2",
            "-D", "publish", "user-property", "k", "v", "-D", "publish", "content-type", "text/plain",
            "-D", "publish", "correlation-data", "cd1", "-D", "publish", "message-expiry-interval", "600",
            "-D", "publish", "response-topic", "rt", "-D", "publish", "payload-format-indicator", "1");
        await Publish(port, "-V", "mqttv5", "-i", "pubber", "-q", "2", "-t", "c/z", "-m", "shared1");

        // Retained messages.
        await Publish(port, "-V", "mqttv5", "-i", "retainer", "-r", "-q", "2", "-t", "r/2", "-m", "ret2", "-D", "publish", "content-type", "x");
        await Publish(port, "-i", "retainer", "-r", "-q", "0", "-t", "r/0", "-m", "ret0");
        return (before, DateTimeOffset.UtcNow);
    }

    private static async Task Publish(int port, params string[] arguments)
    {
        var result = await MosquittoClients.PublishAsync(port, arguments);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Reads_what_Mosquitto_saved_of_sessions_messages_and_retained_messages()
    {
        DateTimeOffset before = default, after = default;
        string path = await MosquittoDbFiles.MakeAsync(_directory, async port => (before, after) = await SessionsScenarioAsync(port));
        var now = DateTimeOffset.UtcNow;
        var contents = MosquittoDb.Read(path, now);
        string described = Describe(contents);
        string? save = Environment.GetEnvironmentVariable("MIDGE_SAVE_MOSQUITTO_DB");
        if (!string.IsNullOrEmpty(save)) File.Copy(path, save, overwrite: true);

        Assert.True(contents.Warnings.Count == 0, described);
        Assert.Equal(6, contents.Version);
        Assert.True(contents.CleanShutdown);
        try
        {
            AssertSessions(contents, now, before, after);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\nin what was read:\n{described}");
        }
    }

    /// <summary>What the sessions scenario leaves, as Midge's records (shared with the fixture test, whose file it made).</summary>
    internal static void AssertSessions(MosquittoDbContents contents, DateTimeOffset now, DateTimeOffset before, DateTimeOffset after)
    {
        string described = Describe(contents);
        Assert.True(contents.Sessions.Select(s => s.ClientId).Order().SequenceEqual(["inc", "inf", "s1", "s5"]), described);

        // 3.1.1, clean session false: never expires; Mosquitto keeps no disconnection time for it.
        var s1 = contents.Sessions.Single(s => s.ClientId == "s1");
        Assert.Equal(uint.MaxValue, s1.ExpiryInterval);
        Assert.Equal(now, s1.DisconnectedAt);
        Assert.Equal([new Subscription("a/#", QoS.AtLeastOnce)], s1.Subscriptions);
        // Mosquitto 2.0.11 writes a message for an offline client as queued, or (depending on how far the client's
        // disconnection had gone) as publish_qos1 in its window with packet id 1: Queued, or in flight awaiting PUBACK.
        Assert.Equal(1, s1.Queued.Count + s1.Inflight.Count);
        StoredMessage aMessage;
        if (s1.Inflight is [var a])
        {
            Assert.Equal((ushort)1, a.PacketId);
            Assert.Equal(1, a.Sequence);
            Assert.Equal(InflightState.AwaitingPubAck, a.State);
            Assert.Equal(QoS.AtLeastOnce, a.QoS);
            Assert.False(a.Retain);
            Assert.Null(a.SubscriptionIds);
            aMessage = a.Message;
        }
        else
        {
            var q = s1.Queued[0];
            Assert.Equal(1, q.Sequence);
            Assert.Equal(QoS.AtLeastOnce, q.QoS);
            Assert.False(q.Retain);
            Assert.Null(q.SubscriptionIds);
            aMessage = q.Message;
        }
        AssertMessage(aMessage, "a/x", "hello1", QoS.AtLeastOnce, "pubber", "alice");
        Assert.Null(aMessage.Properties);
        Assert.Null(aMessage.ExpiresAt);

        // MQTT 5: its interval, and its disconnection time from the expiry time Mosquitto wrote.
        var s5 = contents.Sessions.Single(s => s.ClientId == "s5");
        Assert.Equal(3600u, s5.ExpiryInterval);
        Assert.InRange(s5.DisconnectedAt!.Value, before.AddSeconds(-1), after.AddSeconds(1));
        // Mosquitto 2.0 saves the options No Local and Retain As Published, not Retain Handling, and no shared
        // subscription (they are not kept across its restarts either).
        var b = Assert.Single(s5.Subscriptions);
        Assert.Equal(new Subscription("b/#", QoS.ExactlyOnce) { NoLocal = true, RetainAsPublished = true, SubscriptionId = 7 }, b);
        Assert.Empty(s5.Inflight);
        Assert.Equal(2, s5.Queued.Count);
        var y = s5.Queued[0];
        Assert.Equal(1, y.Sequence);
        Assert.Equal(QoS.ExactlyOnce, y.QoS);
        Assert.Equal([7u], y.SubscriptionIds!);
        AssertMessage(y.Message, "b/y", "hello2", QoS.ExactlyOnce, "pubber", null);
        var p = y.Message.Properties!;
        Assert.Equal((byte)1, p.PayloadFormatIndicator);
        Assert.Equal("text/plain", p.ContentType);
        Assert.Equal("rt", p.ResponseTopic);
        Assert.Equal("cd1"u8.ToArray(), p.CorrelationData);
        Assert.Equal([new UserProperty("k", "v")], p.UserProperties);
        Assert.Null(p.MessageExpiryInterval);
        Assert.InRange(y.Message.ExpiresAt!.Value, before.AddSeconds(599), after.AddSeconds(601));
        var z = s5.Queued[1];
        Assert.Equal(2, z.Sequence);
        // It came through the shared subscription (QoS 1), made by the same SUBSCRIBE.
        Assert.Equal(QoS.AtLeastOnce, z.QoS);
        Assert.Equal([7u], z.SubscriptionIds!);
        AssertMessage(z.Message, "c/z", "shared1", QoS.ExactlyOnce, "pubber", null);

        // Every outgoing state, each with the packet id it was sent with.
        var inf = contents.Sessions.Single(s => s.ClientId == "inf");
        Assert.Equal(uint.MaxValue, inf.ExpiryInterval);
        Assert.Equal([new Subscription("d/#", QoS.ExactlyOnce)], inf.Subscriptions);
        Assert.Empty(inf.Queued);
        Assert.Equal(3, inf.Inflight.Count);
        var byTopic = inf.Inflight.ToDictionary(f => f.Message.Topic);
        Assert.Equal(InflightState.AwaitingPubAck, byTopic["d/1"].State);
        Assert.Equal(InflightState.AwaitingPubRec, byTopic["d/2"].State);
        Assert.Equal(InflightState.AwaitingPubComp, byTopic["d/3"].State);
        Assert.Equal(3, inf.Inflight.Select(f => f.PacketId).Distinct().Count());
        Assert.All(inf.Inflight, f => Assert.NotEqual((ushort)0, f.PacketId));
        Assert.Equal([1L, 2L, 3L], inf.Inflight.Select(f => f.Sequence));
        AssertMessage(byTopic["d/2"].Message, "d/2", "two", QoS.ExactlyOnce, "pub-d", null);

        // The held QoS 2 PUBLISH: its client's session, and the message to route once.
        var inc = contents.Sessions.Single(s => s.ClientId == "inc");
        Assert.Empty(inc.Subscriptions);
        Assert.Empty(inc.IncomingQoS2);
        var held = Assert.Single(contents.IncomingQoS2);
        Assert.Equal("inc", held.ClientId);
        Assert.Equal((ushort)42, held.PacketId);
        AssertMessage(held.Message, "e/1", "incoming", QoS.ExactlyOnce, "inc", null);

        var retained = contents.Retained.OrderBy(m => m.Topic, StringComparer.Ordinal).ToList();
        Assert.Equal(["r/0", "r/2"], retained.Select(m => m.Topic));
        AssertMessage(retained[0], "r/0", "ret0", QoS.AtMostOnce, "retainer", null);
        AssertMessage(retained[1], "r/2", "ret2", QoS.ExactlyOnce, "retainer", null);
        Assert.True(retained.All(m => m.Retain));
        Assert.Equal("x", retained[1].Properties!.ContentType);
    }

    private static void AssertMessage(StoredMessage message, string topic, string payload, QoS qos, string? origin, string? userName)
    {
        Assert.Equal(topic, message.Topic);
        Assert.Equal(payload, Encoding.UTF8.GetString(message.Payload.Span));
        Assert.Equal(qos, message.QoS);
        Assert.Equal(origin, message.OriginClientId);
        Assert.Equal(userName, message.OriginUserName);
    }

    /// <summary>The contents in a few lines, for failure messages.</summary>
    internal static string Describe(MosquittoDbContents contents)
    {
        var text = new StringBuilder($"version {contents.Version}, last id {contents.LastDbId}\n");
        foreach (var s in contents.Sessions)
        {
            text.Append($"session {s.ClientId} expiry {s.ExpiryInterval} disconnected {s.DisconnectedAt:O}\n");
            foreach (var sub in s.Subscriptions) text.Append($"  sub {sub}\n");
            foreach (var q in s.Queued) text.Append($"  queued {q.Sequence} {q.Message.Topic} q{(int)q.QoS} r{q.Retain} ids {q.SubscriptionIds?.Length}\n");
            foreach (var f in s.Inflight) text.Append($"  inflight {f.PacketId} {f.State} {f.Message.Topic} q{(int)f.QoS}\n");
        }
        foreach (var m in contents.IncomingQoS2) text.Append($"incoming {m.ClientId} {m.PacketId} {m.Message.Topic}\n");
        foreach (var m in contents.Retained) text.Append($"retained {m.Topic} q{(int)m.QoS}\n");
        foreach (var w in contents.Warnings) text.Append($"warning {w}\n");
        return text.ToString();
    }
}
