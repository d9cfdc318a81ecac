using System.Buffers;
using System.Text;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Where the specification lets a broker choose, a drop-in for Mosquitto chooses as Mosquitto does. Each scenario
/// runs the same bytes against Debian's mosquitto and against Midge, with the same configuration lines, and the
/// two must answer alike (and as written here, so that a change on both sides is noticed too).
/// </summary>
public sealed class MosquittoParityTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>Runs <paramref name="scenario"/> against mosquitto and Midge (both started with
    /// <paramref name="config"/>) and returns what each observed.</summary>
    private static async Task<(string Mosquitto, string Midge)> BothAsync(string[] config, Func<Broker, Task<string>> scenario)
    {
        await using var mosquitto = await MosquittoBroker.StartAsync(config);
        await using var midge = await MidgeProcess.StartAsync(config);
        var results = await Task.WhenAll(
            scenario(new Broker(mosquitto.Port, signal => mosquitto.Signal(signal))),
            scenario(new Broker(midge.Port, signal => midge.Signal(signal))));
        return (results[0], results[1]);
    }

    /// <summary>One broker under test: its port and a way to signal it.</summary>
    private sealed record Broker(int Port, Func<int, bool> Signal);

    private static byte[] Encode(MqttPacket packet, ProtocolVersion version)
    {
        var buffer = new ArrayBufferWriter<byte>();
        PacketEncoder.Write(buffer, packet, version);
        return buffer.WrittenSpan.ToArray();
    }

    private static ConnectPacket Connect(string clientId, ProtocolVersion version, bool clean = true, uint? sessionExpiry = null,
        string? user = null, string? password = null, WillMessage? will = null)
    {
        var connect = new ConnectPacket
        {
            ClientId = clientId,
            ProtocolVersion = version,
            ProtocolName = "MQTT",
            CleanStart = clean,
            KeepAlive = 60,
            UserName = user,
            Password = password is null ? null : Encoding.UTF8.GetBytes(password),
            Will = will,
        };
        if (sessionExpiry is { } expiry) connect.GetOrCreateProperties().SessionExpiryInterval = expiry;
        return connect;
    }

    /// <summary>Connects and returns the client and the CONNACK's first two body bytes (flags, code) as hex.</summary>
    private static async Task<(RawMqttClient Client, string ConnAck)> OpenAsync(int port, ConnectPacket connect)
    {
        var client = await RawMqttClient.ConnectTcpAsync(port);
        await client.SendAsync(Encode(connect, connect.ProtocolVersion));
        var connack = await client.ReadAsync(Timeout);
        return (client, connack is { Type: 2 } ? Convert.ToHexString(connack.Body.AsSpan(0, 2)) : $"no CONNACK ({connack})");
    }

    private static async Task<string> ConnAckOfAsync(int port, ConnectPacket connect)
    {
        var (client, connack) = await OpenAsync(port, connect);
        client.Dispose();
        return connack;
    }

    private static byte[] Subscribe(ushort id, string filter, QoS qos, ProtocolVersion version) =>
        Encode(new SubscribePacket { PacketId = id, Subscriptions = [new TopicSubscription(filter, qos)] }, version);

    private static byte[] Publish(string topic, string payload, QoS qos, ushort id, ProtocolVersion version) =>
        Encode(new PublishPacket { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), QoS = qos, PacketId = id }, version);

    /// <summary>The payloads of the PUBLISHes that arrive within <paramref name="window"/>, acknowledged at QoS 1.</summary>
    private static async Task<List<string>> CollectAsync(RawMqttClient client, TimeSpan window, ProtocolVersion version)
    {
        var payloads = new List<string>();
        var deadline = DateTime.UtcNow + window;
        while (DateTime.UtcNow < deadline)
        {
            RawPacket? p;
            try
            {
                p = await client.ReadAsync(deadline - DateTime.UtcNow);
            }
            catch (TimeoutException)
            {
                break;
            }
            if (p is null) break;
            if (p.Type != 3) continue;
            var publish = (PublishPacket)PacketDecoder.Decode(p.Header, new ReadOnlySequence<byte>(p.Body), version);
            payloads.Add(Encoding.UTF8.GetString(publish.Payload.Span));
            if (publish.QoS == QoS.AtLeastOnce) await client.SendAsync(Encode(new PublishAckPacket(PacketType.PubAck, publish.PacketId), version));
        }
        return payloads;
    }

    [Fact]
    public async Task BadCredentials_GetTheSameAnswers()
    {
        string dir = MidgeProcess.NewDirectory();
        string passwd = Path.Combine(dir, "passwd");
        var made = await PeerProcess.RunAsync("/usr/bin/mosquitto_passwd", ["-b", "-c", passwd, "alice", "secret"], Timeout);
        Assert.True(made.ExitCode == 0, made.ToString());
        // An entry whose hash is of the empty password (mosquitto_passwd will not write one; older files have them).
        await File.AppendAllTextAsync(passwd, Midge.Security.PasswdCommand.FormatEntry("nopass", ""));
        string[] config = ["allow_anonymous false", $"password_file {passwd}"];

        var (mosquitto, midge) = await BothAsync(config, async b =>
        {
            var lines = new List<string>();
            foreach (var version in new[] { ProtocolVersion.V311, ProtocolVersion.V500 })
            {
                lines.Add($"{version} right: " + await ConnAckOfAsync(b.Port, Connect("c1", version, user: "alice", password: "secret")));
                lines.Add($"{version} wrong: " + await ConnAckOfAsync(b.Port, Connect("c2", version, user: "alice", password: "nope")));
                lines.Add($"{version} unknown: " + await ConnAckOfAsync(b.Port, Connect("c3", version, user: "mallory", password: "secret")));
                lines.Add($"{version} no password: " + await ConnAckOfAsync(b.Port, Connect("c4", version, user: "alice")));
                lines.Add($"{version} anonymous: " + await ConnAckOfAsync(b.Port, Connect("c5", version)));
                lines.Add($"{version} empty entry, empty password: " + await ConnAckOfAsync(b.Port, Connect("c6", version, user: "nopass", password: "")));
                lines.Add($"{version} empty entry, no password: " + await ConnAckOfAsync(b.Port, Connect("c7", version, user: "nopass")));
            }
            return string.Join('\n', lines);
        });
        Assert.Equal(mosquitto, midge);
        Assert.Equal("""
            V311 right: 0000
            V311 wrong: 0005
            V311 unknown: 0005
            V311 no password: 0005
            V311 anonymous: 0005
            V311 empty entry, empty password: 0005
            V311 empty entry, no password: 0005
            V500 right: 0000
            V500 wrong: 0087
            V500 unknown: 0087
            V500 no password: 0087
            V500 anonymous: 0087
            V500 empty entry, empty password: 0087
            V500 empty entry, no password: 0087
            """.ReplaceLineEndings("\n"), midge);
    }

    [Fact]
    public async Task WillPayloadOverMessageSizeLimit_IsRefusedAlike()
    {
        var (mosquitto, midge) = await BothAsync(["allow_anonymous true", "message_size_limit 10"], async b =>
        {
            var lines = new List<string>();
            foreach (var version in new[] { ProtocolVersion.V311, ProtocolVersion.V500 })
            {
                foreach (int size in new[] { 10, 11 })
                {
                    var will = new WillMessage { Topic = "will/t", Payload = new byte[size] };
                    lines.Add($"{version} will of {size}: " + await ConnAckOfAsync(b.Port, Connect($"w{size}", version, will: will)));
                }
            }
            return string.Join('\n', lines);
        });
        Assert.Equal(mosquitto, midge);
        Assert.Equal("V311 will of 10: 0000\nV311 will of 11: 0005\nV500 will of 10: 0000\nV500 will of 11: 0095", midge);
    }

    [Fact]
    public async Task TakeoverOfASessionThatEndsWithItsConnection_StartsFresh()
    {
        var (mosquitto, midge) = await BothAsync(["allow_anonymous true"], async b =>
        {
            var lines = new List<string>();
            foreach (var version in new[] { ProtocolVersion.V311, ProtocolVersion.V500 })
            {
                string id = "takeover-" + version;
                var (old, _) = await OpenAsync(b.Port, Connect(id, version, clean: true));
                await old.SendAsync(Subscribe(1, "x/y", QoS.AtLeastOnce, version));
                Assert.Equal(9, (await old.ReadAsync(Timeout))?.Type);
                var (fresh, connack) = await OpenAsync(b.Port, Connect(id, version, clean: false, sessionExpiry: version == ProtocolVersion.V500 ? 100u : null));
                lines.Add($"{version} resumed: {connack}");
                // The old subscription is gone with the old session: nothing published to x/y arrives.
                var (pub, _) = await OpenAsync(b.Port, Connect(id + "-pub", version));
                await pub.SendAsync(Publish("x/y", "stale subscription", QoS.AtMostOnce, 0, version));
                pub.Dispose();
                lines.Add($"{version} delivered: [{string.Join(',', await CollectAsync(fresh, TimeSpan.FromMilliseconds(500), version))}]");
                old.Dispose();
                fresh.Dispose();
            }
            return string.Join('\n', lines);
        });
        Assert.Equal(mosquitto, midge);
        Assert.Equal("V311 resumed: 0000\nV311 delivered: []\nV500 resumed: 0000\nV500 delivered: []", midge);
    }

    [Fact]
    public async Task WillDelayWithSessionExpiryZero_WaitsForTheDelay_AndAReconnectionCancelsIt()
    {
        var (mosquitto, midge) = await BothAsync(["allow_anonymous true"], async b =>
        {
            var (watcher, _) = await OpenAsync(b.Port, Connect("watcher", ProtocolVersion.V500));
            await watcher.SendAsync(Subscribe(1, "will/#", QoS.AtMostOnce, ProtocolVersion.V500));
            Assert.Equal(9, (await watcher.ReadAsync(Timeout))?.Type);

            WillMessage Will(string topic) => new()
            {
                Topic = topic,
                Payload = "gone"u8.ToArray(),
                Properties = new MqttProperties { WillDelayInterval = 2 },
            };
            // Dropped without DISCONNECT, Session Expiry 0: the will comes after its delay, not at once.
            var (dies, _) = await OpenAsync(b.Port, Connect("dies", ProtocolVersion.V500, will: Will("will/dies")));
            dies.Dispose();
            var early = await CollectAsync(watcher, TimeSpan.FromSeconds(1), ProtocolVersion.V500);
            // Both brokers look at delayed wills about once a second: the will is due 2 s after the drop and may come
            // up to a second later, later still when the machine is busy (the window once closed first in CI).
            var late = await CollectAsync(watcher, TimeSpan.FromSeconds(4), ProtocolVersion.V500);

            // Dropped, then back within the delay: the will is never sent.
            var (returns, _) = await OpenAsync(b.Port, Connect("returns", ProtocolVersion.V500, will: Will("will/returns")));
            returns.Dispose();
            await Task.Delay(500);
            var (back, backAck) = await OpenAsync(b.Port, Connect("returns", ProtocolVersion.V500));
            var cancelled = await CollectAsync(watcher, TimeSpan.FromSeconds(3), ProtocolVersion.V500);
            back.Dispose();
            watcher.Dispose();
            return $"within 1 s: {early.Count}; after the delay: {late.Count}; reconnected ({backAck}): {cancelled.Count}";
        });
        Assert.Equal(mosquitto, midge);
        Assert.Equal("within 1 s: 0; after the delay: 1; reconnected (0000): 0", midge);
    }

    [Fact]
    public async Task AclChangedWhileAway_ReachesTheQueuedMessages()
    {
        string dir = MidgeProcess.NewDirectory();
        string passwd = Path.Combine(dir, "passwd");
        string acl = Path.Combine(dir, "acl");
        await File.WriteAllTextAsync(passwd, Midge.Security.PasswdCommand.FormatEntry("alice", "a") + Midge.Security.PasswdCommand.FormatEntry("bob", "b"));
        await File.WriteAllTextAsync(acl, "user alice\ntopic write sensors/#\nuser bob\ntopic read sensors/#\n");
        string[] config = ["allow_anonymous false", $"password_file {passwd}", $"acl_file {acl}"];
        var v = ProtocolVersion.V311;

        // Both brokers read the same ACL file: each scenario runs up to the SIGHUP on its own, then the file changes
        // once and both are signalled.
        var away = new TaskCompletionSource();
        var rewritten = new TaskCompletionSource();
        int ready = 0;
        var scenario = async (Broker b) =>
        {
            var bob = Connect("bob", v, clean: false, user: "bob", password: "b");
            var (first, _) = await OpenAsync(b.Port, bob);
            await first.SendAsync(Subscribe(1, "sensors/#", QoS.AtLeastOnce, v));
            Assert.Equal(9, (await first.ReadAsync(Timeout))?.Type);
            first.Dispose();
            await Task.Delay(200);
            var (alice, _) = await OpenAsync(b.Port, Connect("alice", v, user: "alice", password: "a"));
            await alice.SendAsync(Publish("sensors/private/t", "revoked", QoS.AtLeastOnce, 1, v));
            await alice.SendAsync(Publish("sensors/public/t", "still readable", QoS.AtLeastOnce, 2, v));
            Assert.Equal(4, (await alice.ReadAsync(Timeout))?.Type);
            Assert.Equal(4, (await alice.ReadAsync(Timeout))?.Type);
            alice.Dispose();
            if (Interlocked.Increment(ref ready) == 2) away.SetResult();
            await rewritten.Task;
            Assert.True(b.Signal(Signals.SIGHUP));
            await Task.Delay(1000);
            var (back, connack) = await OpenAsync(b.Port, bob);
            var delivered = await CollectAsync(back, TimeSpan.FromSeconds(1.5), v);
            back.Dispose();
            return $"{connack} [{string.Join(',', delivered)}]";
        };
        var run = BothAsync(config, scenario);
        await away.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await File.WriteAllTextAsync(acl, "user alice\ntopic write sensors/#\nuser bob\ntopic read sensors/public/#\n");
        rewritten.SetResult();
        var (mosquitto, midge) = await run;
        Assert.Equal(mosquitto, midge);
        Assert.Equal("0100 [still readable]", midge);
    }

    [Fact]
    public async Task EveryRetainedMessage_ReachesANewSubscriber_However_Many()
    {
        // Retained delivery on subscribe is paced by the subscriber's writer, not cut by the output backlog's cap
        // or the queue's limits (Midge used to deliver 65,535 of 100,000).
        const int Count = 100_000;
        var (mosquitto, midge) = await BothAsync(["allow_anonymous true"], async b =>
        {
            var v = ProtocolVersion.V311;
            var (pub, _) = await OpenAsync(b.Port, Connect("retainer", v));
            var batch = new List<byte>();
            for (int i = 0; i < Count; i++)
            {
                batch.AddRange(Encode(new PublishPacket { Topic = $"ret/{i}", Payload = "v"u8.ToArray(), Retain = true }, v));
                if (batch.Count > 256 * 1024 || i == Count - 1)
                {
                    await pub.SendAsync([.. batch]);
                    batch.Clear();
                }
            }
            await pub.SendAsync(Encode(PingReqPacket.Instance, v));
            Assert.Equal(13, (await pub.ReadAsync(TimeSpan.FromSeconds(30)))?.Type); // all handled
            pub.Dispose();

            var (sub, _) = await OpenAsync(b.Port, Connect("reader", v));
            await sub.SendAsync(Subscribe(1, "ret/#", QoS.AtMostOnce, v));
            int received = 0;
            while (received < Count)
            {
                var p = await sub.ReadAsync(TimeSpan.FromSeconds(10));
                if (p is null) break;
                if (p.Type == 3) received++;
            }
            sub.Dispose();
            return $"received {received}";
        });
        Assert.Equal(mosquitto, midge);
        Assert.Equal($"received {Count}", midge);
    }

    [Fact]
    public async Task BridgeFromMosquitto_WithItsDefaults_IsAccepted()
    {
        // Mosquitto's bridge defaults: notifications on (will and state on $SYS/broker/connection/NAME/state),
        // MQTT 3.1.1 with the bridge bit (try_private).
        await using var midge = await MidgeProcess.StartAsync();
        using var states = await MosquittoClients.SubscribeAsync(midge.Port, "%t %p", "-t", "$SYS/broker/connection/#", "-t", "edge/#", "-q", "1");
        await using var edge = await MosquittoBroker.StartAsync(
            "allow_anonymous true",
            "connection edge-to-midge",
            $"address 127.0.0.1:{midge.Port}",
            "topic edge/# out 1");
        // The state topic names the bridge's client id: HOSTNAME.CONNECTION by default.
        string clientId = System.Net.Dns.GetHostName() + ".edge-to-midge";
        Assert.True(await states.WaitForMessageAsync($"$SYS/broker/connection/{clientId}/state 1", Timeout), midge.Log + edge.Log);
        var sent = await MosquittoClients.PublishAsync(edge.Port, "-t", "edge/temperature", "-m", "21.5", "-q", "1");
        Assert.Equal(0, sent.ExitCode);
        Assert.True(await states.WaitForMessageAsync("edge/temperature 21.5", Timeout), midge.Log + edge.Log);
    }
}
