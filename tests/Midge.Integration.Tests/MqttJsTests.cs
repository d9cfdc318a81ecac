using System.Text;
using System.Text.Json;
using Midge.TestKit;
using static Midge.Integration.Tests.MqttJs;

namespace Midge.Integration.Tests;

/// <summary>MQTT 5 features end to end with MQTT.js (protocolVersion 5) against one broker.</summary>
[Trait("Suite", "Protocol")] // also run through a three-node cluster (run-tests.sh, BrokerUnderTest)
public sealed class MqttJsTests(Mqtt5BrokerFixture fixture) : IClassFixture<Mqtt5BrokerFixture>
{
    private Task<JsonElement> Run(string script, params string[] arguments) => RunAsync(script, fixture.Port, arguments);

    [Fact]
    public async Task Session_expiry_resumes_with_queued_messages_and_ends_after_the_interval()
    {
        var r = await Run("sessions.mjs", "session-expiry");

        Assert.False(r.GetProperty("first_session_present").GetBoolean());
        Assert.True(r.GetProperty("kept_session_present").GetBoolean());
        Assert.Equal(["away-0", "away-1", "away-2"], Strings(r.GetProperty("kept_received")).Take(3));
        Assert.All(Ints(r.GetProperty("kept_qos")), q => Assert.Equal(1, q));
        Assert.False(r.GetProperty("expired_session_present").GetBoolean());
        Assert.Empty(Strings(r.GetProperty("expired_received")));
    }

    [Fact]
    public async Task Unacknowledged_messages_come_again_with_dup_when_the_session_resumes()
    {
        var r = await Run("sessions.mjs", "redelivery");

        Assert.Equal(["one"], Strings(r.GetProperty("withheld")));
        Assert.True(r.GetProperty("session_present").GetBoolean());
        Assert.Equal(["one", "two"], Strings(r.GetProperty("received")));
        Assert.True(r.GetProperty("dup")[0].GetBoolean());
        Assert.Equal([1, 2], Ints(r.GetProperty("qos")));
    }

    [Fact]
    public async Task Message_expiry_drops_an_expired_queued_message_and_sends_the_remaining_interval()
    {
        var r = await Run("sessions.mjs", "message-expiry");

        Assert.True(r.GetProperty("session_present").GetBoolean());
        Assert.Equal(["long-lived"], Strings(r.GetProperty("received")));
        Assert.InRange(Assert.Single(Ints(r.GetProperty("expiry"))), 50, 59);
    }

    [Fact]
    public async Task Will_delay_sends_the_will_after_the_delay_and_not_when_the_client_returns_in_time()
    {
        var r = await Run("sessions.mjs", "will-delay");

        Assert.Equal(["delayed will"], Strings(r.GetProperty("received")));
        Assert.InRange(r.GetProperty("arrived_after_ms").GetInt32(), 900, 4000);
        Assert.True(r.GetProperty("reconnected_session_present").GetBoolean());
    }

    [Fact]
    public async Task Topic_aliases_work_from_the_client_and_are_assigned_by_the_broker()
    {
        var r = await Run("flow.mjs", "topic-alias");
        string topic = r.GetProperty("topic").GetString()!;
        string[] expected = [$"{topic}|one", $"{topic}|two", $"{topic}|three"];

        Assert.Equal(10, r.GetProperty("broker_topic_alias_maximum").GetInt32());
        Assert.Equal([0, 0, 0], Ints(r.GetProperty("acks")));
        Assert.Equal(expected, Strings(r.GetProperty("aliased_received")));
        Assert.Equal(expected, Strings(r.GetProperty("plain_received")));
        var aliased = r.GetProperty("aliased_wire").EnumerateArray().ToArray();
        Assert.Equal(topic, aliased[0].GetProperty("topic").GetString());
        int alias = aliased[0].GetProperty("alias").GetInt32();
        Assert.InRange(alias, 1, 5);
        Assert.All(aliased.Skip(1), p =>
        {
            Assert.Equal("", p.GetProperty("topic").GetString());
            Assert.Equal(alias, p.GetProperty("alias").GetInt32());
        });
        Assert.All(r.GetProperty("plain_wire").EnumerateArray(), p => Assert.Equal(JsonValueKind.Null, p.GetProperty("alias").ValueKind));
    }

    [Fact]
    public async Task Maximum_packet_size_of_the_client_drops_larger_messages_only()
    {
        var r = await Run("flow.mjs", "maximum-packet-size");

        Assert.Equal(["small-1", "small-2"], Strings(r.GetProperty("received")));
    }

    [Fact]
    public async Task Subscription_options_no_local_retain_as_published_and_retain_handling()
    {
        var r = await Run("subscriptions.mjs", "options");

        Assert.Equal(["other-on-no-local", "own-on-local"], Strings(r.GetProperty("self_received")).Order());
        Assert.Equal([true], r.GetProperty("rap_retain").EnumerateArray().Select(x => x.GetBoolean()).Distinct());
        Assert.Equal([false], r.GetProperty("norap_retain").EnumerateArray().Select(x => x.GetBoolean()).Distinct());
        var rh = r.GetProperty("retain_handling");
        Assert.Equal((1, 2), (rh.GetProperty("0").GetProperty("first").GetInt32(), rh.GetProperty("0").GetProperty("total").GetInt32()));
        Assert.Equal((1, 1), (rh.GetProperty("1").GetProperty("first").GetInt32(), rh.GetProperty("1").GetProperty("total").GetInt32()));
        Assert.Equal((0, 0), (rh.GetProperty("2").GetProperty("first").GetInt32(), rh.GetProperty("2").GetProperty("total").GetInt32()));
        Assert.All(rh.GetProperty("0").GetProperty("retain").EnumerateArray(), x => Assert.True(x.GetBoolean()));
    }

    [Fact]
    public async Task Overlapping_subscriptions_give_one_publish_with_both_identifiers()
    {
        var r = await Run("subscriptions.mjs", "identifiers");

        var received = r.GetProperty("received").EnumerateArray().ToArray();
        Assert.Equal(["both", "three-filters"], received.Select(m => m.GetProperty("payload").GetString()));
        Assert.All(received, m => Assert.Equal([1, 2], Ints(m.GetProperty("ids"))));
    }

    [Fact]
    public async Task Shared_subscription_delivers_each_message_once_and_hands_over_unacknowledged_ones()
    {
        var r = await Run("subscriptions.mjs", "shared");

        Assert.Equal(30, r.GetProperty("received").GetInt32());
        Assert.Equal(30, r.GetProperty("unique").GetInt32());
        Assert.All(Ints(r.GetProperty("counts")), n => Assert.InRange(n, 1, 28));
        int held = r.GetProperty("held").GetArrayLength(), sent = r.GetProperty("handover_sent").GetInt32();
        Assert.InRange(held, 1, sent);
        Assert.Equal(held, r.GetProperty("held_redelivered").GetInt32());
        Assert.Equal(sent, r.GetProperty("after_unique").GetInt32());
    }

    [Fact]
    public async Task Exclusive_subscription_refuses_a_second_subscriber_with_0x97()
    {
        var r = await Run("subscriptions.mjs", "exclusive");

        Assert.Equal([1], Ints(r.GetProperty("first")));
        Assert.Equal([0x97], Ints(r.GetProperty("second")));
        Assert.Equal(["to-the-holder"], Strings(r.GetProperty("first_received")));
        Assert.Empty(Strings(r.GetProperty("second_received")));
    }

    [Fact]
    public async Task Request_response_passes_response_topic_and_correlation_data_and_gives_response_information()
    {
        var r = await Run("properties.mjs", "request-response");

        Assert.Equal("reply/" + r.GetProperty("requester_id").GetString(), r.GetProperty("response_information").GetString());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("unrequested_response_information").ValueKind);
        Assert.Equal(r.GetProperty("response_information").GetString() + "/answers", r.GetProperty("request_response_topic").GetString());
        Assert.Equal("corr-7", r.GetProperty("request_correlation").GetString());
        Assert.Equal("answer to question", r.GetProperty("reply_payload").GetString());
        Assert.Equal("corr-7", r.GetProperty("reply_correlation").GetString());
    }

    [Fact]
    public async Task Payload_format_content_type_and_user_properties_pass_and_invalid_utf8_gets_0x99()
    {
        var r = await Run("properties.mjs", "payload-format");

        Assert.Equal(0, r.GetProperty("good").GetInt32());
        Assert.Equal(0x99, r.GetProperty("bad").GetInt32());
        Assert.Equal(0, r.GetProperty("binary").GetInt32());
        Assert.Equal(2, r.GetProperty("received").GetInt32());
        Assert.Equal("héllo", r.GetProperty("payload").GetString());
        Assert.True(r.GetProperty("payload_format").GetBoolean());
        Assert.Equal("text/plain; charset=utf-8", r.GetProperty("content_type").GetString());
        var user = r.GetProperty("user_properties");
        Assert.Equal("1", user.GetProperty("a").GetString());
        Assert.Equal(["x", "y"], Strings(user.GetProperty("b")));
    }

    [Fact]
    public async Task Server_reference_redirects_with_0x9C()
    {
        var r = await Run("server.mjs", "redirect", fixture.RedirectPort.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(0x9C, r.GetProperty("reason").GetInt32());
        Assert.Equal(Mqtt5BrokerFixture.ServerReference, r.GetProperty("server_reference").GetString());
    }

    [Fact]
    public async Task Max_keepalive_is_returned_as_server_keep_alive()
    {
        var r = await Run("server.mjs", "keepalive");

        Assert.Equal(0, r.GetProperty("reason").GetInt32());
        Assert.Equal(10, r.GetProperty("server_keep_alive").GetInt32());
    }

    [Fact]
    public async Task Takeover_disconnects_the_first_connection_with_0x8E()
    {
        var r = await Run("server.mjs", "takeover");

        Assert.Equal(0x8E, r.GetProperty("first_disconnect").GetInt32());
        Assert.Equal(0, r.GetProperty("second_connected").GetInt32());
    }

    /// <summary>MQTT.js reads no packet until the application acknowledged the last one, so Receive Maximum is
    /// checked here with a raw socket: with Receive Maximum 2 only two QoS 1 PUBLISHes are outstanding.</summary>
    [Fact]
    public async Task Receive_maximum_2_keeps_at_most_two_unacknowledged_publishes_in_flight()
    {
        string topic = "recvmax/" + Guid.NewGuid().ToString("N")[..10];
        using var sub = await RawMqttClient.ConnectTcpAsync(fixture.Port);
        await sub.SendAsync(ConnectWithReceiveMaximum("rm-" + topic[8..], 2));
        var connack = await sub.ReadAsync(TimeSpan.FromSeconds(5));
        Assert.True(connack is { Type: 2 } && connack.Body[1] == 0, connack?.ToString());
        await sub.SendAsync(RawMqttClient.Subscribe(1, topic, 1, RawMqttClient.V5));
        Assert.Equal(9, (await sub.ReadAsync(TimeSpan.FromSeconds(5)))?.Type);

        using var pub = await RawMqttClient.ConnectMqttAsync(fixture.Port, "rmp-" + topic[8..], RawMqttClient.V5);
        for (int i = 0; i < 6; i++) await pub.SendAsync(Qos1Publish(topic, (ushort)(i + 1), "m" + i));

        var ids = new List<ushort>();
        for (int i = 0; i < 2; i++) ids.Add(PacketId(await sub.ReadAsync(TimeSpan.FromSeconds(5)), topic));
        Assert.Null(await TryReadAsync(sub, TimeSpan.FromMilliseconds(400))); // a third would exceed the window
        int received = 2;
        while (received < 6)
        {
            await sub.SendAsync(RawMqttClient.Frame(0x40, [(byte)(ids[0] >> 8), (byte)ids[0]]));
            ids.RemoveAt(0);
            ids.Add(PacketId(await sub.ReadAsync(TimeSpan.FromSeconds(5)), topic));
            received++;
            Assert.True(ids.Count <= 2);
        }
        Assert.Null(await TryReadAsync(sub, TimeSpan.FromMilliseconds(200)));
    }

    private static async Task<RawPacket?> TryReadAsync(RawMqttClient client, TimeSpan timeout)
    {
        try
        {
            return await client.ReadAsync(timeout);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            return null;
        }
    }

    private static ushort PacketId(RawPacket? publish, string topic)
    {
        Assert.True(publish is { Type: 3 }, publish?.ToString() ?? "closed");
        Assert.Equal(0x32, publish!.Header & 0xF6); // QoS 1
        int at = 2 + Encoding.UTF8.GetByteCount(topic);
        return (ushort)(publish.Body[at] << 8 | publish.Body[at + 1]);
    }

    private static byte[] ConnectWithReceiveMaximum(string clientId, ushort receiveMaximum)
    {
        var body = new List<byte> { 0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 5, 0x02, 0, 60 };
        body.AddRange([3, 0x21, (byte)(receiveMaximum >> 8), (byte)receiveMaximum]);
        var id = Encoding.UTF8.GetBytes(clientId);
        body.AddRange([(byte)(id.Length >> 8), (byte)id.Length, .. id]);
        return RawMqttClient.Frame(0x10, body);
    }

    private static byte[] Qos1Publish(string topic, ushort packetId, string payload)
    {
        var t = Encoding.UTF8.GetBytes(topic);
        var body = new List<byte> { (byte)(t.Length >> 8), (byte)t.Length };
        body.AddRange(t);
        body.AddRange([(byte)(packetId >> 8), (byte)packetId, 0]);
        body.AddRange(Encoding.UTF8.GetBytes(payload));
        return RawMqttClient.Frame(0x32, body);
    }
}
