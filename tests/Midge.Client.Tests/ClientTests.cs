using System.Text;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Client.Tests;

public sealed class BrokersFixture : IDisposable
{
    public BrokerProcess Midge { get; } = BrokerProcess.Start("midge");
    public BrokerProcess Mosquitto { get; } = BrokerProcess.Start("mosquitto");

    public int Port(string kind) => kind == "midge" ? Midge.Port : Mosquitto.Port;

    public void Dispose()
    {
        Midge.Dispose();
        Mosquitto.Dispose();
    }
}

public sealed class ClientTests(BrokersFixture brokers) : IClassFixture<BrokersFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private MqttClientOptions Options(string broker, ProtocolVersion version, string? id = null) => new()
    {
        Host = "127.0.0.1",
        Port = brokers.Port(broker),
        ProtocolVersion = version,
        ClientId = id ?? $"t{Guid.NewGuid():N}"[..20],
        ConnectTimeout = TimeSpan.FromSeconds(5),
    };

    private static CancellationToken Bounded() => new CancellationTokenSource(Timeout).Token;

    private static string Topic() => $"test/{Guid.NewGuid():N}";

    public static TheoryData<string, ProtocolVersion> BrokersAndVersions => new()
    {
        { "midge", ProtocolVersion.V311 }, { "midge", ProtocolVersion.V500 }, { "midge", ProtocolVersion.V310 },
        { "mosquitto", ProtocolVersion.V311 }, { "mosquitto", ProtocolVersion.V500 }, { "mosquitto", ProtocolVersion.V310 },
    };

    [Theory]
    [MemberData(nameof(BrokersAndVersions))]
    public async Task Connect_gets_connack(string broker, ProtocolVersion version)
    {
        await using var client = new MqttClient(Options(broker, version));
        var result = await client.ConnectAsync(Bounded());
        Assert.True(result.IsSuccess);
        Assert.False(result.SessionPresent);
        if (version == ProtocolVersion.V500) Assert.NotNull(result.Properties);
        Assert.True(client.IsConnected);
        await client.DisconnectAsync();
        Assert.False(client.IsConnected);
    }

    [Theory]
    [InlineData("midge", ProtocolVersion.V311, QoS.AtMostOnce)]
    [InlineData("midge", ProtocolVersion.V311, QoS.AtLeastOnce)]
    [InlineData("midge", ProtocolVersion.V311, QoS.ExactlyOnce)]
    [InlineData("midge", ProtocolVersion.V500, QoS.AtMostOnce)]
    [InlineData("midge", ProtocolVersion.V500, QoS.AtLeastOnce)]
    [InlineData("midge", ProtocolVersion.V500, QoS.ExactlyOnce)]
    [InlineData("mosquitto", ProtocolVersion.V311, QoS.AtLeastOnce)]
    [InlineData("mosquitto", ProtocolVersion.V311, QoS.ExactlyOnce)]
    [InlineData("mosquitto", ProtocolVersion.V500, QoS.AtMostOnce)]
    [InlineData("mosquitto", ProtocolVersion.V500, QoS.ExactlyOnce)]
    public async Task Round_trip_at_each_qos(string broker, ProtocolVersion version, QoS qos)
    {
        var ct = Bounded();
        string topic = Topic();
        await using var client = new MqttClient(Options(broker, version));
        await client.ConnectAsync(ct);
        var sub = await client.SubscribeAsync(topic, QoS.ExactlyOnce, ct);
        Assert.Equal((ReasonCode)2, sub.ReasonCodes[0]);
        for (int i = 0; i < 20; i++)
        {
            var result = await client.PublishAsync(topic, Encoding.UTF8.GetBytes($"m{i}"), qos, ct: ct);
            Assert.True(result.IsSuccess);
        }
        for (int i = 0; i < 20; i++)
        {
            var m = await client.ReadMessageAsync(ct);
            Assert.Equal(topic, m.Topic);
            Assert.Equal($"m{i}", Encoding.UTF8.GetString(m.Payload.Span));
            Assert.Equal(qos, m.QoS);
        }
        Assert.Equal(0, client.InflightCount);
    }

    [Theory]
    [InlineData("midge")]
    [InlineData("mosquitto")]
    public async Task Retained_message_is_delivered_on_subscribe_and_cleared(string broker)
    {
        var ct = Bounded();
        string topic = Topic();
        await using var pub = new MqttClient(Options(broker, ProtocolVersion.V500));
        await pub.ConnectAsync(ct);
        await pub.PublishAsync(topic, "kept"u8.ToArray(), QoS.AtLeastOnce, retain: true, ct: ct);

        await using var sub = new MqttClient(Options(broker, ProtocolVersion.V311));
        await sub.ConnectAsync(ct);
        await sub.SubscribeAsync(topic, QoS.AtLeastOnce, ct);
        var m = await sub.ReadMessageAsync(ct);
        Assert.True(m.Retain);
        Assert.Equal("kept", Encoding.UTF8.GetString(m.Payload.Span));

        await pub.PublishAsync(topic, default, QoS.AtLeastOnce, retain: true, ct: ct);
        await using var late = new MqttClient(Options(broker, ProtocolVersion.V311));
        await late.ConnectAsync(ct);
        await late.SubscribeAsync(topic, QoS.AtLeastOnce, ct);
        await late.PublishAsync(topic, "live"u8.ToArray(), QoS.AtLeastOnce, ct: ct);
        var next = await late.ReadMessageAsync(ct);
        Assert.False(next.Retain);
        Assert.Equal("live", Encoding.UTF8.GetString(next.Payload.Span));
    }

    [Theory]
    [InlineData("midge", ProtocolVersion.V311)]
    [InlineData("midge", ProtocolVersion.V500)]
    [InlineData("mosquitto", ProtocolVersion.V311)]
    [InlineData("mosquitto", ProtocolVersion.V500)]
    public async Task Persistent_session_gets_messages_sent_while_away(string broker, ProtocolVersion version)
    {
        var ct = Bounded();
        string topic = Topic();
        var options = Options(broker, version) with { CleanStart = false, SessionExpiryInterval = version == ProtocolVersion.V500 ? 300u : null };
        await using (var first = new MqttClient(options))
        {
            await first.ConnectAsync(ct);
            await first.SubscribeAsync(topic, QoS.AtLeastOnce, ct);
            await first.DisconnectAsync();
        }
        await using (var pub = new MqttClient(Options(broker, version)))
        {
            await pub.ConnectAsync(ct);
            await pub.PublishAsync(topic, "while away"u8.ToArray(), QoS.AtLeastOnce, ct: ct);
            await pub.PublishAsync(topic, "qos2"u8.ToArray(), QoS.ExactlyOnce, ct: ct);
        }
        await using var again = new MqttClient(options);
        var result = await again.ConnectAsync(ct);
        Assert.True(result.SessionPresent);
        Assert.Equal("while away", Encoding.UTF8.GetString((await again.ReadMessageAsync(ct)).Payload.Span));
        Assert.Equal("qos2", Encoding.UTF8.GetString((await again.ReadMessageAsync(ct)).Payload.Span));
    }

    [Theory]
    [InlineData("midge", ProtocolVersion.V311)]
    [InlineData("midge", ProtocolVersion.V500)]
    [InlineData("mosquitto", ProtocolVersion.V311)]
    [InlineData("mosquitto", ProtocolVersion.V500)]
    public async Task Will_is_published_on_abnormal_close(string broker, ProtocolVersion version)
    {
        var ct = Bounded();
        string topic = Topic();
        await using var watcher = new MqttClient(Options(broker, version));
        await watcher.ConnectAsync(ct);
        await watcher.SubscribeAsync(topic, QoS.AtLeastOnce, ct);

        var willing = new MqttClient(Options(broker, version) with { Will = new MqttWill(topic, "gone"u8.ToArray(), QoS.AtLeastOnce) });
        await willing.ConnectAsync(ct);
        willing.AbortConnection();
        var m = await watcher.ReadMessageAsync(ct);
        Assert.Equal("gone", Encoding.UTF8.GetString(m.Payload.Span));
        await willing.DisposeAsync();

        // A normal DISCONNECT sends no will.
        var polite = new MqttClient(Options(broker, version) with { Will = new MqttWill(topic, "not sent"u8.ToArray()) });
        await polite.ConnectAsync(ct);
        await polite.DisconnectAsync();
        await watcher.PublishAsync(topic, "marker"u8.ToArray(), QoS.AtLeastOnce, ct: ct);
        Assert.Equal("marker", Encoding.UTF8.GetString((await watcher.ReadMessageAsync(ct)).Payload.Span));
    }

    [Theory]
    [InlineData("midge", BufferFullMode.DropNewest, "m0,m1,m2")]
    [InlineData("midge", BufferFullMode.DropOldest, "m7,m8,m9")]
    [InlineData("mosquitto", BufferFullMode.DropNewest, "m0,m1,m2")]
    public async Task Bounded_buffer_applies_its_full_mode(string broker, BufferFullMode mode, string expected)
    {
        var ct = Bounded();
        string topic = Topic();
        await using var client = new MqttClient(Options(broker, ProtocolVersion.V311) with { IncomingBufferCapacity = 3, IncomingBufferFullMode = mode });
        await client.ConnectAsync(ct);
        await client.SubscribeAsync(topic, QoS.AtLeastOnce, ct);
        for (int i = 0; i < 10; i++) await client.PublishAsync(topic, Encoding.UTF8.GetBytes($"m{i}"), QoS.AtLeastOnce, ct: ct);
        // The marker round trip proves every earlier message reached the client.
        while (client.DroppedMessages < 7) await Task.Delay(20, ct);
        var got = new List<string>();
        for (int i = 0; i < 3; i++) got.Add(Encoding.UTF8.GetString((await client.ReadMessageAsync(ct)).Payload.Span));
        Assert.Equal(expected, string.Join(',', got));
        Assert.Equal(7, client.DroppedMessages);
    }

    [Fact]
    public async Task Wait_mode_holds_messages_back_without_losing_any()
    {
        var ct = Bounded();
        string topic = Topic();
        await using var client = new MqttClient(Options("midge", ProtocolVersion.V500) with { IncomingBufferCapacity = 2 });
        await client.ConnectAsync(ct);
        await client.SubscribeAsync(topic, QoS.AtLeastOnce, ct);
        await using var pub = new MqttClient(Options("midge", ProtocolVersion.V500));
        await pub.ConnectAsync(ct);
        for (int i = 0; i < 50; i++) await pub.PublishAsync(topic, Encoding.UTF8.GetBytes($"m{i}"), QoS.AtLeastOnce, ct: ct);
        for (int i = 0; i < 50; i++) Assert.Equal($"m{i}", Encoding.UTF8.GetString((await client.ReadMessageAsync(ct)).Payload.Span));
        Assert.Equal(0, client.DroppedMessages);
    }

    [Theory]
    [InlineData("midge")]
    [InlineData("mosquitto")]
    public async Task Refused_connect_throws_with_the_reason(string broker)
    {
        // MQTT-3.1.3-8: an empty client id with Clean Session 0 is rejected with return code 2.
        var options = Options(broker, ProtocolVersion.V311) with { ClientId = "", CleanStart = false };
        await using var client = new MqttClient(options);
        var ex = await Assert.ThrowsAsync<MqttConnectException>(async () => await client.ConnectAsync(Bounded()));
        Assert.Equal(ConnectReturnCode.IdentifierRejected, ex.Result.V3ReturnCode);
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery()
    {
        var ct = Bounded();
        string topic = Topic();
        await using var client = new MqttClient(Options("midge", ProtocolVersion.V500));
        await client.ConnectAsync(ct);
        await client.SubscribeAsync([new TopicSubscription(topic, QoS.AtLeastOnce), new TopicSubscription(topic + "/x", QoS.AtLeastOnce)], null, ct);
        var result = await client.UnsubscribeAsync([topic], null, ct);
        Assert.Equal(ReasonCode.Success, result.ReasonCodes[0]);
        await client.PublishAsync(topic, "a"u8.ToArray(), QoS.AtLeastOnce, ct: ct);
        await client.PublishAsync(topic + "/x", "b"u8.ToArray(), QoS.AtLeastOnce, ct: ct);
        Assert.Equal(topic + "/x", (await client.ReadMessageAsync(ct)).Topic);
    }
}

public sealed class ReconnectTests
{
    [Theory]
    [InlineData("midge")]
    [InlineData("mosquitto")]
    public async Task Client_reconnects_with_backoff_after_the_broker_restarts(string kind)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ct = cts.Token;
        using var broker = BrokerProcess.Start(kind);
        string topic = $"re/{Guid.NewGuid():N}";
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = broker.Port,
            ClientId = "reconnector",
            ProtocolVersion = ProtocolVersion.V500,
            Reconnect = new ReconnectPolicy { Enabled = true, InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(800) },
        };
        await using var client = new MqttClient(options);
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource<ConnectResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += (_, e) => disconnected.TrySetResult(e);
        client.Reconnected += (_, r) => reconnected.TrySetResult(r);
        await client.ConnectAsync(ct);
        await client.SubscribeAsync(topic, QoS.AtLeastOnce, ct);

        broker.Kill();
        var why = await disconnected.Task.WaitAsync(ct);
        Assert.True(why.WillReconnect);
        await Task.Delay(1500, ct); // several failed attempts: the backoff grows to its maximum
        broker.Restart();
        var result = await reconnected.Task.WaitAsync(ct);
        Assert.False(result.SessionPresent); // the broker lost its state
        // The client subscribed again on its own, since the session was gone.
        while (true)
        {
            await client.PublishAsync(topic, "back"u8.ToArray(), QoS.AtLeastOnce, ct: ct);
            using var once = CancellationTokenSource.CreateLinkedTokenSource(ct);
            once.CancelAfter(500);
            try
            {
                var m = await client.ReadMessageAsync(once.Token);
                Assert.Equal("back", Encoding.UTF8.GetString(m.Payload.Span));
                break;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
            }
        }
    }

    [Fact]
    public async Task Qos1_publish_waiting_during_an_outage_completes_after_reconnect()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ct = cts.Token;
        using var broker = BrokerProcess.Start("mosquitto");
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = broker.Port,
            ClientId = "outage",
            Reconnect = new ReconnectPolicy { Enabled = true, InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(400) },
        };
        await using var client = new MqttClient(options);
        var down = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += (_, _) => down.TrySetResult();
        await client.ConnectAsync(ct);
        broker.Kill();
        await down.Task.WaitAsync(ct);
        var pending = client.PublishAsync("outage/t", "x"u8.ToArray(), QoS.AtLeastOnce, ct: ct).AsTask();
        await Task.Delay(300, ct);
        Assert.False(pending.IsCompleted);
        broker.Restart();
        var result = await pending.WaitAsync(ct);
        Assert.True(result.IsSuccess);
    }
}
