using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>Debian's mosquitto_pub/mosquitto_sub (libmosquitto 2.0) against Midge, MQTT 3.1, 3.1.1 and 5.</summary>
[Trait("Suite", "Protocol")] // also run through a three-node cluster (run-tests.sh, BrokerUnderTest)
public sealed class MosquittoClientTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private int Port => fixture.Port;

    private static string Unique(string prefix) => $"{prefix}/{Guid.NewGuid():N}";

    private static void AssertOk(ProcessResult r) => Assert.True(r.ExitCode == 0 && !r.TimedOut, r.ToString());

    [Theory]
    [InlineData("mqttv311", 0)]
    [InlineData("mqttv311", 1)]
    [InlineData("mqttv311", 2)]
    [InlineData("mqttv5", 0)]
    [InlineData("mqttv5", 1)]
    [InlineData("mqttv5", 2)]
    [InlineData("mqttv31", 0)]
    [InlineData("mqttv31", 1)]
    [InlineData("mqttv31", 2)]
    public async Task Round_trip_at_each_qos(string version, int qos)
    {
        string topic = Unique("qos" + qos);
        string q = qos.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t|%p|%q|%r", "-V", version, "-q", q, "-t", topic, "-C", "1");

        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-q", q, "-t", topic, "-m", "hello " + version));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([$"{topic}|hello {version}|{qos}|0"], messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Delivery_qos_is_the_minimum_of_publish_and_subscription(string version)
    {
        string topic = Unique("downgrade");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%p|%q", "-V", version, "-q", "1", "-t", topic, "-C", "2");

        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-q", "2", "-t", topic, "-m", "two"));
        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-q", "0", "-t", topic, "-m", "zero"));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["two|1", "zero|0"], messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Many_qos1_messages_arrive_in_order(string version)
    {
        string topic = Unique("order");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%p", "-V", version, "-q", "1", "-t", topic, "-C", "200");

        var lines = Enumerable.Range(0, 200).Select(i => "m" + i).ToArray();
        using var pub = PeerProcess.Start("mosquitto_pub",
            ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", version, "-q", "1", "-t", topic, "-l"]);
        foreach (var l in lines) await pub.StandardInput.WriteLineAsync(l);
        pub.StandardInput.Close();
        AssertOk(await pub.WaitAsync(TimeSpan.FromSeconds(10)));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(lines, messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Retained_message_reaches_a_late_subscriber(string version)
    {
        string topic = Unique("retained");
        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-q", "1", "-r", "-t", topic, "-m", "kept value"));

        var verbose = await PeerProcess.RunAsync("mosquitto_sub",
            ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", version, "-v", "-t", topic, "-C", "1", "-W", "5"],
            TimeSpan.FromSeconds(10));
        AssertOk(verbose);
        Assert.Equal([$"{topic} kept value"], verbose.Lines);

        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t|%p|%r|%q", "-V", version, "-q", "1", "-t", topic, "-C", "1");
        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([$"{topic}|kept value|1|1"], messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Live_delivery_to_an_existing_subscriber_clears_the_retain_flag(string version)
    {
        string topic = Unique("retainflag");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%p|%r", "-V", version, "-t", topic, "-C", "1");

        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-r", "-t", topic, "-m", "live"));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["live|0"], messages);
        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-r", "-n", "-t", topic));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Empty_retained_publish_clears_the_retained_message(string version)
    {
        string topic = Unique("cleared");
        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-r", "-t", topic, "-m", "soon gone"));
        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-r", "-n", "-t", topic));

        // --retained-only prints retained messages and exits on the first live one, which we send after SUBACK.
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t|%p", "-V", version, "-t", topic, "--retained-only");
        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-t", topic, "-m", "live"));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Empty(messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Single_level_wildcard_matches_one_level_only(string version)
    {
        string root = Unique("plus");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t|%p", "-V", version, "-t", root + "/+/temp", "-C", "2");

        foreach (var (t, m) in new[] { ("a/temp", "1"), ("a/hum", "x"), ("a/b/temp", "x"), ("temp", "x"), ("b/temp", "2") })
        {
            AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-q", "1", "-t", root + "/" + t, "-m", m));
        }

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([$"{root}/a/temp|1", $"{root}/b/temp|2"], messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Multi_level_wildcard_matches_the_parent_and_every_level_below(string version)
    {
        string root = Unique("hash");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t|%p", "-V", version, "-t", root + "/sensors/#", "-C", "3");

        foreach (var (t, m) in new[] { ("sensors", "1"), ("other/x", "x"), ("sensors/a", "2"), ("sensorsX", "x"), ("sensors/a/b/c", "3") })
        {
            AssertOk(await MosquittoClients.PublishAsync(Port, "-V", version, "-q", "1", "-t", root + "/" + t, "-m", m));
        }

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([$"{root}/sensors|1", $"{root}/sensors/a|2", $"{root}/sensors/a/b/c|3"], messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Sys_broker_version_is_readable(string version)
    {
        var r = await PeerProcess.RunAsync("mosquitto_sub",
            ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", version, "-v",
                "-t", "$SYS/broker/version", "-C", "1", "-W", "5"],
            TimeSpan.FromSeconds(10));

        AssertOk(r);
        var line = Assert.Single(r.Lines);
        Assert.StartsWith("$SYS/broker/version midge version ", line);
    }

    [Fact]
    public async Task Sys_uptime_is_published_periodically_to_an_existing_subscriber()
    {
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t|%p|%r", "-t", "$SYS/broker/uptime", "-R", "-C", "1");

        var (result, messages) = await sub.WaitAsync(TimeSpan.FromSeconds(8));
        AssertOk(result);
        var m = Assert.Single(messages);
        Assert.Matches(@"^\$SYS/broker/uptime\|\d+ seconds\|0$", m);
    }

    [Fact]
    public async Task Hash_subscription_does_not_receive_sys_topics()
    {
        string marker = Unique("marker");
        // -R hides retained messages from other tests; $SYS updates (every second) would arrive live.
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%t", "-t", "#", "-R", "-C", "1");
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        AssertOk(await MosquittoClients.PublishAsync(Port, "-t", marker, "-m", "x"));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([marker], messages);
    }

    [Fact]
    public async Task Mqtt5_user_properties_and_response_topic_pass_through()
    {
        string topic = Unique("props");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%p|%P|%R", "-V", "mqttv5", "-q", "1", "-t", topic, "-C", "1");

        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", "mqttv5", "-q", "1", "-t", topic, "-m", "with props",
            "-D", "publish", "user-property", "k", "v",
            "-D", "publish", "user-property", "colour", "blue",
            "-D", "publish", "user-property", "k", "again",
            "-D", "publish", "response-topic", "reply/here"));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["with props|k:v colour:blue k:again|reply/here"], messages);
    }

    [Fact]
    public async Task Mqtt5_to_mqtt311_subscriber_drops_properties_but_keeps_payload()
    {
        string topic = Unique("cross");
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%p|%q", "-V", "mqttv311", "-q", "2", "-t", topic, "-C", "1");

        AssertOk(await MosquittoClients.PublishAsync(Port, "-V", "mqttv5", "-q", "2", "-t", topic, "-m", "from v5",
            "-D", "publish", "user-property", "k", "v"));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["from v5|2"], messages);
    }

    [Fact]
    public async Task Binary_payload_is_delivered_unchanged()
    {
        string topic = Unique("binary");
        string dir = MidgeProcess.NewDirectory();
        string file = Path.Combine(dir, "payload.bin");
        var payload = Enumerable.Range(0, 256).Select(i => (byte)i).Concat(new byte[5000]).ToArray();
        await File.WriteAllBytesAsync(file, payload);
        using var sub = await MosquittoClients.SubscribeAsync(Port, "%l|%x", "-q", "1", "-t", topic, "-C", "1");

        AssertOk(await MosquittoClients.PublishAsync(Port, "-q", "1", "-t", topic, "-f", file));

        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([$"{payload.Length}|{Convert.ToHexStringLower(payload)}"], messages);
        Directory.Delete(dir, true);
    }
}
