using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The plain-TCP socket transport (src/Midge.Transport/Sockets): frames split across reads at every byte,
/// many frames in one read, frames larger than the receive buffer and than one send batch, and an unanswered
/// socket that the broker must still close.
/// </summary>
[Trait("Suite", "Protocol")] // also run through a three-node cluster (run-tests.sh, BrokerUnderTest)
public sealed class SocketTransportTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private static async Task<RawPacket> ExpectAsync(RawMqttClient client, int type)
    {
        var packet = await client.ReadAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(packet);
        Assert.Equal(type, packet!.Type);
        return packet;
    }

    /// <summary>The topic and payload of a QoS 0 PUBLISH body (3.1.1).</summary>
    private static (string Topic, byte[] Payload) Parse(RawPacket publish)
    {
        int length = publish.Body[0] << 8 | publish.Body[1];
        return (Encoding.UTF8.GetString(publish.Body, 2, length), publish.Body[(2 + length)..]);
    }

    [Fact]
    public async Task Frames_sent_one_byte_per_write_are_reassembled()
    {
        using var client = await RawMqttClient.ConnectTcpAsync(fixture.Port);
        var bytes = RawMqttClient.Connect("bytewise")
            .Concat(RawMqttClient.Subscribe(1, "transport/bytewise"))
            .Concat(RawMqttClient.Publish("transport/bytewise", Encoding.ASCII.GetBytes("split")))
            .ToArray();
        foreach (byte b in bytes)
        {
            await client.SendAsync([b]);
            await Task.Delay(1); // separate segments (the client sends without Nagle's delay)
        }
        await ExpectAsync(client, 2); // CONNACK
        await ExpectAsync(client, 9); // SUBACK
        var (topic, payload) = Parse(await ExpectAsync(client, 3));
        Assert.Equal("transport/bytewise", topic);
        Assert.Equal("split", Encoding.ASCII.GetString(payload));
    }

    [Fact]
    public async Task Many_frames_in_one_write_all_arrive_in_order()
    {
        using var client = await RawMqttClient.ConnectMqttAsync(fixture.Port, "burst");
        await client.SendAsync(RawMqttClient.Subscribe(1, "transport/burst"));
        await ExpectAsync(client, 9);
        const int Count = 2_000;
        var burst = Enumerable.Range(0, Count)
            .SelectMany(i => RawMqttClient.Publish("transport/burst", Encoding.ASCII.GetBytes(i.ToString())))
            .ToArray();
        await client.SendAsync(burst); // ~50 KB: many frames per receive, frames cut at buffer ends
        for (int i = 0; i < Count; i++)
        {
            var (_, payload) = Parse(await ExpectAsync(client, 3));
            Assert.Equal(i.ToString(), Encoding.ASCII.GetString(payload));
        }
    }

    [Theory]
    [InlineData(5_000)] // just over the first receive buffer
    [InlineData(300_000)] // over the receive buffer many times, and over one send batch
    public async Task Large_frames_arrive_intact(int size)
    {
        using var subscriber = await RawMqttClient.ConnectMqttAsync(fixture.Port, $"large-sub-{size}");
        await subscriber.SendAsync(RawMqttClient.Subscribe(1, $"transport/large/{size}"));
        await ExpectAsync(subscriber, 9);
        using var publisher = await RawMqttClient.ConnectMqttAsync(fixture.Port, $"large-pub-{size}");
        var payload = new byte[size];
        new Random(size).NextBytes(payload);
        await publisher.SendAsync(RawMqttClient.Publish($"transport/large/{size}", payload));
        await publisher.SendAsync(RawMqttClient.Publish($"transport/large/{size}", "after"u8.ToArray()));

        var (topic, received) = Parse(await ExpectAsync(subscriber, 3));
        Assert.Equal($"transport/large/{size}", topic);
        Assert.Equal(payload, received);
        Assert.Equal("after", Encoding.ASCII.GetString(Parse(await ExpectAsync(subscriber, 3)).Payload));
    }

    [Fact]
    public async Task A_subscriber_that_stops_reading_gets_everything_in_order_when_it_resumes()
    {
        // 4 publishers x 100 messages x 16 KB: several MB, more than the socket buffers hold, so the broker's
        // sends would block and its writer continues asynchronously while the publishers keep going.
        const int Publishers = 4, Messages = 100, Size = 16 * 1024;
        using var subscriber = await RawMqttClient.ConnectMqttAsync(fixture.Port, "resume-sub");
        await subscriber.SendAsync(RawMqttClient.Subscribe(1, "transport/resume/+"));
        await ExpectAsync(subscriber, 9);
        var publishers = await Task.WhenAll(Enumerable.Range(0, Publishers).Select(async p =>
        {
            using var publisher = await RawMqttClient.ConnectMqttAsync(fixture.Port, $"resume-pub-{p}");
            for (int i = 0; i < Messages; i++)
            {
                var payload = new byte[Size];
                BitConverter.TryWriteBytes(payload, i);
                await publisher.SendAsync(RawMqttClient.Publish($"transport/resume/{p}", payload));
            }
            await RawMqttClient.AssertRoundTripAsync(fixture.Port); // the broker still serves others meanwhile
            return p;
        }).Select(t => t.WaitAsync(TimeSpan.FromSeconds(30))));
        Assert.Equal(Publishers, publishers.Length);

        await Task.Delay(500); // the subscriber has read nothing so far
        var next = new int[Publishers];
        for (int n = 0; n < Publishers * Messages; n++)
        {
            var (topic, payload) = Parse(await ExpectAsync(subscriber, 3));
            int p = topic[^1] - '0';
            Assert.Equal(Size, payload.Length);
            Assert.Equal(next[p]++, BitConverter.ToInt32(payload)); // per-publisher order kept
        }
        Assert.All(next, count => Assert.Equal(Messages, count));
    }

    // Plain-TCP sockets wait on the broker's epoll loops, each under a slot that a closed connection gives back
    // for the next one. Waves of clients that come and go reuse those slots while one client stays throughout:
    // every client of every wave, and the one that stayed, must still hear what is sent to it.
    [Fact]
    public async Task Clients_that_come_and_go_in_waves_are_each_served_and_one_that_stays_still_is()
    {
        using var stayer = await RawMqttClient.ConnectMqttAsync(fixture.Port, "wave-stayer");
        await stayer.SendAsync(RawMqttClient.Subscribe(1, "transport/wave/stayer"));
        await ExpectAsync(stayer, 9);
        for (int wave = 0; wave < 3; wave++)
        {
            await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
            {
                string topic = $"transport/wave/{wave}/{i}";
                using var client = await RawMqttClient.ConnectMqttAsync(fixture.Port, $"wave-{wave}-{i}");
                await client.SendAsync(RawMqttClient.Subscribe(1, topic));
                await ExpectAsync(client, 9);
                await client.SendAsync(RawMqttClient.Publish(topic, Encoding.ASCII.GetBytes($"{wave}/{i}")));
                var (received, payload) = Parse(await ExpectAsync(client, 3));
                Assert.Equal(topic, received);
                Assert.Equal($"{wave}/{i}", Encoding.ASCII.GetString(payload));
            }));
            using var publisher = await RawMqttClient.ConnectMqttAsync(fixture.Port, $"wave-pub-{wave}");
            await publisher.SendAsync(RawMqttClient.Publish("transport/wave/stayer", Encoding.ASCII.GetBytes($"after {wave}")));
            Assert.Equal($"after {wave}", Encoding.ASCII.GetString(Parse(await ExpectAsync(stayer, 3)).Payload));
        }
    }

    [Fact]
    public async Task A_protocol_error_closes_the_socket_and_others_are_served()
    {
        using var bad = await RawMqttClient.ConnectMqttAsync(fixture.Port, "transport-bad");
        await bad.SendAsync([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]); // remaining length over four bytes
        Assert.Empty(await bad.ReadUntilClosedAsync(TimeSpan.FromSeconds(5)));
        await RawMqttClient.AssertRoundTripAsync(fixture.Port);
    }

    // Socket completions run on the socket engine threads; a CONNECT that authenticates must not hold one.
    // A password hashed with millions of PBKDF2 iterations takes seconds to check: while it is checked,
    // anonymous clients (whose CONNECT is handled on the engine threads) connect and round-trip.
    [Fact]
    public async Task A_slow_password_check_does_not_hold_up_other_clients()
    {
        string file = Path.Combine(MidgeProcess.NewDirectory(), "passwd");
        var made = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(60), "passwd", "-b", "-c", "-I", "3000000", file, "slow", "pw");
        Assert.True(made.ExitCode == 0, made.ToString());
        await using var broker = await MidgeProcess.StartAsync($"password_file {file}", "allow_anonymous true");

        using var slow = await RawMqttClient.ConnectTcpAsync(broker.Port);
        var connect = new List<byte> { 0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T' };
        connect.AddRange([4, 0xC2, 0, 60]); // 3.1.1, user name + password + clean session, keep alive 60
        foreach (var field in new[] { "slow-client"u8.ToArray(), "slow"u8.ToArray(), "pw"u8.ToArray() })
        {
            connect.AddRange([0, (byte)field.Length]);
            connect.AddRange(field);
        }
        await Task.Delay(500); // the broker's receive is now pending: the CONNECT will arrive on an engine thread
        await slow.SendAsync(RawMqttClient.Frame(0x10, connect));
        var connack = slow.ReadAsync(TimeSpan.FromSeconds(60));

        for (int i = 0; i < 4; i++) await RawMqttClient.AssertRoundTripAsync(broker.Port);
        Assert.False(connack.IsCompleted, "the slow CONNACK came before the other clients were served");

        var answer = await connack;
        Assert.Equal(2, answer!.Type);
        Assert.Equal(0, answer.Body[1]); // accepted, in the end
    }
}
