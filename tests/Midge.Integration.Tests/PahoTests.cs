using System.Globalization;
using System.Text.Json;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>Python paho-mqtt 1.6 scripts (peers/*.py) against Midge; each prints one JSON object we assert.</summary>
[Trait("Suite", "Protocol")] // also run through a three-node cluster (run-tests.sh, BrokerUnderTest)
public sealed class PahoTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private async Task<JsonElement> RunAsync(string script, params string[] arguments)
    {
        var r = await PeerProcess.RunAsync(PeerProcess.Python,
            [Path.Combine(AppContext.BaseDirectory, "peers", script), fixture.Port.ToString(CultureInfo.InvariantCulture), .. arguments],
            TimeSpan.FromSeconds(30), Path.Combine(AppContext.BaseDirectory, "peers"));
        Assert.True(r.ExitCode == 0 && !r.TimedOut, r.ToString());
        using var doc = JsonDocument.Parse(r.Lines.Last());
        return doc.RootElement.Clone();
    }

    private static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Theory]
    [InlineData("311")]
    [InlineData("5")]
    public async Task Qos2_fifty_messages_arrive_exactly_once_in_order(string protocol)
    {
        var r = await RunAsync("qos2_exactly_once.py", protocol);

        Assert.True(r.GetProperty("connected").GetBoolean());
        Assert.Equal(50, r.GetProperty("completed").GetInt32());
        Assert.Equal(50, r.GetProperty("received").GetInt32());
        Assert.Equal(50, r.GetProperty("unique").GetInt32());
        Assert.True(r.GetProperty("in_order").GetBoolean());
        Assert.Equal([2], r.GetProperty("qos").EnumerateArray().Select(x => x.GetInt32()));
    }

    [Fact]
    public async Task Persistent_session_receives_qos1_messages_sent_while_offline()
    {
        var r = await RunAsync("persistent_session.py");

        Assert.True(r.GetProperty("first").GetBoolean());
        Assert.Equal(0, r.GetProperty("first_session_present").GetInt32());
        Assert.Equal(10, r.GetProperty("published").GetInt32());
        Assert.True(r.GetProperty("reconnected").GetBoolean());
        Assert.Equal(1, r.GetProperty("session_present").GetInt32());
        Assert.Equal(Enumerable.Range(0, 10).Select(i => "offline-" + i), Strings(r.GetProperty("received")));
        Assert.Equal([1], r.GetProperty("qos").EnumerateArray().Select(x => x.GetInt32()));
    }

    [Theory]
    [InlineData("311")]
    [InlineData("5")]
    public async Task Will_is_published_on_abrupt_close_and_not_after_disconnect(string protocol)
    {
        var r = await RunAsync("will.py", protocol);

        Assert.True(r.GetProperty("abrupt_connected").GetBoolean());
        Assert.True(r.GetProperty("polite_connected").GetBoolean());
        Assert.Equal(["gone abruptly"], Strings(r.GetProperty("abrupt_will")));
        Assert.Equal([1], r.GetProperty("abrupt_will_qos").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Empty(Strings(r.GetProperty("polite_will")));
    }

    [Fact]
    public async Task Retained_message_is_delivered_with_retain_flag_and_cleared_by_empty_payload()
    {
        var r = await RunAsync("retained.py");

        var late = Assert.Single(r.GetProperty("late").EnumerateArray().ToArray());
        Assert.Equal("the value", late[0].GetString());
        Assert.Equal(1, late[1].GetInt32());
        Assert.Equal(1, late[2].GetInt32());
        var after = Assert.Single(r.GetProperty("after_clear").EnumerateArray().ToArray());
        Assert.Equal("live marker", after[0].GetString());
        Assert.Equal(0, after[1].GetInt32());
    }

    [Theory]
    [InlineData("311")]
    [InlineData("5")]
    public async Task Second_connection_with_same_client_id_takes_over(string protocol)
    {
        var r = await RunAsync("takeover.py", protocol);

        Assert.True(r.GetProperty("first_connected").GetBoolean());
        Assert.True(r.GetProperty("second_connected").GetBoolean());
        Assert.True(r.GetProperty("first_disconnected").GetBoolean());
        Assert.NotEqual(0, r.GetProperty("first_rc").GetInt32());
        Assert.True(r.GetProperty("second_still_connected").GetBoolean());
        Assert.True(r.GetProperty("subscribed").GetBoolean());
        Assert.Equal(["still here"], Strings(r.GetProperty("second_received")));
    }

    [Fact]
    public async Task Mqtt5_session_expiry_and_publish_properties()
    {
        var r = await RunAsync("mqtt5.py");

        Assert.Equal(0, r.GetProperty("kept_first_session_present").GetInt32());
        Assert.Equal(1, r.GetProperty("kept_session_present").GetInt32());
        Assert.Equal(Enumerable.Range(0, 5).Select(i => "away-" + i), Strings(r.GetProperty("kept_received")));
        Assert.Equal(0, r.GetProperty("zero_session_present").GetInt32());
        Assert.Empty(Strings(r.GetProperty("zero_received")));
        Assert.Equal(0, r.GetProperty("expired_session_present").GetInt32());

        var m = Assert.Single(r.GetProperty("props_messages").EnumerateArray().ToArray());
        Assert.Equal("{\"a\":1}", m.GetProperty("payload").GetString());
        var p = m.GetProperty("props");
        Assert.Equal("application/json", p.GetProperty("ContentType").GetString());
        Assert.Equal("replies/here", p.GetProperty("ResponseTopic").GetString());
        Assert.Equal("corr-42", p.GetProperty("CorrelationData").GetString());
        Assert.Equal(1, p.GetProperty("PayloadFormatIndicator").GetInt32());
        int expiry = p.GetProperty("MessageExpiryInterval").GetInt32();
        Assert.InRange(expiry, 295, 300);
        var user = p.GetProperty("UserProperty").EnumerateArray().Select(x => $"{x[0].GetString()}={x[1].GetString()}");
        Assert.Equal(["k=v", "k=w"], user);
    }
}
