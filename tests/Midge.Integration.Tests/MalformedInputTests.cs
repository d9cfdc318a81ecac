using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>A broker with a small max_packet_size, shared by the malformed-input tests.</summary>
public sealed class SmallPacketBrokerFixture : IAsyncLifetime
{
    public const int MaxPacketSize = 200;

    private BrokerUnderTest? _broker;

    public BrokerUnderTest Broker => _broker ?? throw new InvalidOperationException("broker not started");

    public async Task InitializeAsync() => _broker = await BrokerUnderTest.StartAsync([$"max_packet_size {MaxPacketSize}"]);

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
    }
}

/// <summary>
/// Hand-written bytes a real client library would refuse to send. Each abuse must get the connection closed
/// (with the MQTT 5 reason code where one is due), while a well-behaved subscriber connected beforehand keeps
/// receiving and new clients still get served.
/// </summary>
[Trait("Suite", "Protocol")] // also run through a three-node cluster (run-tests.sh, BrokerUnderTest)
public sealed class MalformedInputTests(SmallPacketBrokerFixture fixture) : IClassFixture<SmallPacketBrokerFixture>
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    private int Port => fixture.Broker.Port;

    /// <summary>Runs <paramref name="abuse"/> with a subscribed bystander, then proves both still work.</summary>
    private async Task WithBystanderAsync(Func<Task> abuse)
    {
        string id = Guid.NewGuid().ToString("N")[..10];
        string topic = "bystander/" + id;
        using var bystander = await RawMqttClient.ConnectMqttAsync(Port, "by-" + id, RawMqttClient.V5);
        await bystander.SendAsync(RawMqttClient.Subscribe(1, topic, 0, RawMqttClient.V5));
        Assert.Equal(9, (await bystander.ReadAsync(CloseTimeout))?.Type);

        await abuse();

        using (var pub = await RawMqttClient.ConnectMqttAsync(Port, "bp-" + id))
        {
            await pub.SendAsync(RawMqttClient.Publish(topic, Encoding.UTF8.GetBytes("after the abuse")));
        }
        var delivered = await bystander.ReadAsync(CloseTimeout);
        Assert.NotNull(delivered);
        Assert.Equal(3, delivered.Type);
        Assert.EndsWith("after the abuse", Encoding.UTF8.GetString(delivered.Body));
        await RawMqttClient.AssertRoundTripAsync(Port);
        await RawMqttClient.AssertRoundTripAsync(Port, RawMqttClient.V5);
    }

    private static void AssertDisconnect(List<RawPacket> packets, byte reason)
    {
        var p = Assert.Single(packets);
        Assert.Equal(14, p.Type);
        Assert.Equal(reason, p.Body[0]);
    }

    private static void AssertConnack(List<RawPacket> packets, byte code)
    {
        var p = Assert.Single(packets);
        Assert.Equal(2, p.Type);
        Assert.Equal(code, p.Body[1]);
    }

    private async Task<List<RawPacket>> SendAndReadUntilClosedAsync(byte[] first, params byte[][] more)
    {
        using var c = await RawMqttClient.ConnectTcpAsync(Port);
        await c.SendAsync(first);
        foreach (var bytes in more) await c.SendAsync(bytes);
        return await c.ReadUntilClosedAsync(CloseTimeout);
    }

    private async Task<List<RawPacket>> AfterConnectAsync(byte version, byte[] bytes)
    {
        using var c = await RawMqttClient.ConnectMqttAsync(Port, "abuser-" + Guid.NewGuid().ToString("N")[..8], version);
        await c.SendAsync(bytes);
        return await c.ReadUntilClosedAsync(CloseTimeout);
    }

    [Fact]
    public Task V311_subscribe_with_reserved_flags_is_closed() => WithBystanderAsync(async () =>
        Assert.Empty(await AfterConnectAsync(RawMqttClient.V311, RawMqttClient.Subscribe(1, "a/b", 0, RawMqttClient.V311, header: 0x80))));

    [Fact]
    public Task V5_subscribe_with_reserved_flags_gets_disconnect_0x81() => WithBystanderAsync(async () =>
        AssertDisconnect(await AfterConnectAsync(RawMqttClient.V5, RawMqttClient.Subscribe(1, "a/b", 0, RawMqttClient.V5, header: 0x80)), 0x81));

    [Fact]
    public Task V5_publish_with_qos_3_gets_disconnect_0x81() => WithBystanderAsync(async () =>
    {
        var publish = RawMqttClient.Publish("a/b", [1, 2, 3], RawMqttClient.V5);
        publish[0] = 0x36;
        AssertDisconnect(await AfterConnectAsync(RawMqttClient.V5, publish), 0x81);
    });

    [Fact]
    public Task V311_publish_with_qos_3_is_closed() => WithBystanderAsync(async () =>
    {
        var publish = RawMqttClient.Publish("a/b", [1, 2, 3]);
        publish[0] = 0x36;
        Assert.Empty(await AfterConnectAsync(RawMqttClient.V311, publish));
    });

    [Fact]
    public Task V5_second_connect_gets_disconnect_0x82() => WithBystanderAsync(async () =>
        AssertDisconnect(await AfterConnectAsync(RawMqttClient.V5, RawMqttClient.Connect("again", RawMqttClient.V5)), 0x82));

    [Fact]
    public Task V311_second_connect_is_closed() => WithBystanderAsync(async () =>
        Assert.Empty(await AfterConnectAsync(RawMqttClient.V311, RawMqttClient.Connect("again"))));

    [Fact]
    public Task Protocol_name_MQTX_is_refused_and_closed() => WithBystanderAsync(async () =>
    {
        foreach (byte version in new[] { RawMqttClient.V311, RawMqttClient.V5 })
        {
            var packets = await SendAndReadUntilClosedAsync(RawMqttClient.Connect("mqtx", version, protocolName: "MQTX"));
            // MQTT-3.1.2-1: the server may close at once; a CONNACK, if any, must refuse.
            Assert.True(packets.Count <= 1, string.Join(", ", packets));
            foreach (var p in packets)
            {
                Assert.Equal(2, p.Type);
                Assert.NotEqual(0, p.Body[1]);
            }
        }
    });

    [Fact]
    public Task Unsupported_protocol_level_gets_connack_0x01() => WithBystanderAsync(async () =>
        AssertConnack(await SendAndReadUntilClosedAsync(RawMqttClient.Connect("level6", 6)), 0x01));

    [Fact]
    public Task V5_connect_with_reserved_flag_gets_connack_0x81() => WithBystanderAsync(async () =>
        AssertConnack(await SendAndReadUntilClosedAsync(RawMqttClient.Connect("reserved", RawMqttClient.V5, connectFlags: 0x03)), 0x81));

    [Fact]
    public Task V311_connect_with_reserved_flag_is_closed() => WithBystanderAsync(async () =>
    {
        var packets = await SendAndReadUntilClosedAsync(RawMqttClient.Connect("reserved", RawMqttClient.V311, connectFlags: 0x03));
        Assert.DoesNotContain(packets, p => p.Type == 2 && p.Body[1] == 0);
    });

    [Fact]
    public Task First_packet_pingreq_is_closed_without_reply() => WithBystanderAsync(async () =>
        Assert.Empty(await SendAndReadUntilClosedAsync([0xC0, 0x00])));

    [Fact]
    public Task First_packet_publish_is_closed_without_reply() => WithBystanderAsync(async () =>
        Assert.Empty(await SendAndReadUntilClosedAsync(RawMqttClient.Publish("sneaky", [1]))));

    [Fact]
    public Task Http_request_is_closed_without_reply() => WithBystanderAsync(async () =>
        // 'G' frames as packet type 4 and 'E' as remaining length 69: the request is a whole non-CONNECT packet.
        Assert.Empty(await SendAndReadUntilClosedAsync(Encoding.ASCII.GetBytes(
            "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: integration-test/1.0\r\nAccept: */*\r\n\r\n"))));

    [Fact]
    public Task Malformed_remaining_length_is_closed() => WithBystanderAsync(async () =>
        Assert.Empty(await AfterConnectAsync(RawMqttClient.V311, [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])));

    [Fact]
    public Task V5_connack_announces_max_packet_size() => WithBystanderAsync(async () =>
    {
        using var c = await RawMqttClient.ConnectTcpAsync(Port);
        await c.SendAsync(RawMqttClient.Connect("announce", RawMqttClient.V5));
        var connack = await c.ReadAsync(CloseTimeout);
        Assert.NotNull(connack);
        Assert.Equal(2, connack.Type);
        Assert.Equal(0, connack.Body[1]);
        byte[] property = [0x27, 0, 0, 0, SmallPacketBrokerFixture.MaxPacketSize];
        Assert.True(connack.Body.AsSpan(2).IndexOf(property) >= 0, connack.ToString());
    });

    [Fact]
    public Task V5_oversize_publish_gets_disconnect_0x95() => WithBystanderAsync(async () =>
        AssertDisconnect(await AfterConnectAsync(RawMqttClient.V5, RawMqttClient.Publish("big", new byte[300], RawMqttClient.V5)), 0x95));

    [Fact]
    public Task V311_oversize_publish_is_closed() => WithBystanderAsync(async () =>
        Assert.Empty(await AfterConnectAsync(RawMqttClient.V311, RawMqttClient.Publish("big", new byte[300]))));

    [Fact]
    public Task Oversize_announced_length_is_closed_before_the_body_arrives() => WithBystanderAsync(async () =>
    {
        // Remaining length 100 MB, then nothing: the broker must not wait to buffer it.
        using var c = await RawMqttClient.ConnectMqttAsync(Port, "huge-announce");
        await c.SendAsync([0x30, 0x80, 0x80, 0x80, 0x32, 0x00, 0x01, (byte)'t']);
        Assert.Empty(await c.ReadUntilClosedAsync(CloseTimeout));
    });

    [Fact]
    public Task Oversize_connect_is_closed() => WithBystanderAsync(async () =>
    {
        var packets = await SendAndReadUntilClosedAsync(RawMqttClient.Connect(new string('x', 400), RawMqttClient.V5));
        Assert.DoesNotContain(packets, p => p.Type == 2 && p.Body[1] == 0);
    });

    [Fact]
    public Task V5_takeover_sends_disconnect_0x8E_to_the_old_connection() => WithBystanderAsync(async () =>
    {
        using var first = await RawMqttClient.ConnectMqttAsync(Port, "same-id", RawMqttClient.V5);
        using var second = await RawMqttClient.ConnectMqttAsync(Port, "same-id", RawMqttClient.V5);
        AssertDisconnect(await first.ReadUntilClosedAsync(CloseTimeout), 0x8E);
    });

    /// <summary>MQTT 5 packets after CONNECT that are invalid, with the DISCONNECT reason each must get.
    /// Bodies are hex: topic "a" is 0001 61, empty properties 00.</summary>
    [Theory]
    [InlineData("SUBSCRIBE without filters (MQTT-3.8.3-2)", 0x82, "000100", 0x82)]
    [InlineData("PUBLISH topic with wildcard (MQTT-3.3.2-2)", 0x30, "0003612F2B0078", 0x90)]
    [InlineData("PUBLISH Topic Alias 0 (MQTT-3.3.2-8)", 0x30, "000161032300000078", 0x94)]
    [InlineData("PUBLISH QoS 1 packet id 0 (MQTT-2.2.1-3)", 0x32, "0001610000" + "0078", 0x82)]
    [InlineData("UNSUBSCRIBE reserved flags (MQTT-3.10.1-1)", 0xA0, "000100000161", 0x81)]
    [InlineData("SUBSCRIBE filter a/#/b (MQTT-4.7.1-1)", 0x82, "0001000005612F232F62" + "00", 0x8F)]
    [InlineData("SUBSCRIBE reserved option bits (MQTT-3.8.3-5)", 0x82, "0001000001" + "61C0", 0x81)]
    [InlineData("PUBLISH ill-formed UTF-8 topic (MQTT-1.5.4-1)", 0x30, "0002C080" + "0078", 0x81)]
    [InlineData("PUBLISH empty topic without alias ", 0x30, "0000" + "0078", 0x82)]
    public Task V5_invalid_packet_gets_disconnect_with_reason(string what, byte header, string bodyHex, byte reason) =>
        WithBystanderAsync(async () =>
        {
            var packets = await AfterConnectAsync(RawMqttClient.V5, RawMqttClient.Frame(header, Convert.FromHexString(bodyHex)));
            Assert.True(packets.Count == 1 && packets[0].Type == 14, $"{what}: {string.Join(", ", packets)}");
            Assert.Equal(reason, packets[0].Body[0]);
        });

    [Theory]
    [InlineData(0x82, "0001")]
    [InlineData(0x30, "0003612F2B78")]
    [InlineData(0x32, "000161000078")]
    [InlineData(0xA0, "00010001" + "61")]
    public Task V311_invalid_packet_is_closed(byte header, string bodyHex) => WithBystanderAsync(async () =>
        Assert.Empty(await AfterConnectAsync(RawMqttClient.V311, RawMqttClient.Frame(header, Convert.FromHexString(bodyHex)))));
}
