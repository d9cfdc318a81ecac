using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// A client the broker disconnects must be able to read why, even when it keeps writing after the broker has
/// decided: the broker shuts its sending side and discards input for a while before closing (a lingering
/// close), where closing at once would make the kernel reset the connection and drop the unread DISCONNECT.
/// </summary>
public sealed class LingeringCloseTests
{
    private static byte[] QoS2Publish(ushort id)
    {
        var body = new List<byte> { 0, 1, (byte)'t', (byte)(id >> 8), (byte)id, 0 };
        body.AddRange(Encoding.UTF8.GetBytes("x"));
        return RawMqttClient.Frame(0x34, body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReceiveMaximumExceeded_ClientStillReads0x93_AfterWritingMore(bool tls)
    {
        using var pki = new TestPki();
        pki.CreateServer(pki.CreateCa("ca"), "server");
        await using var broker = tls
            ? await MidgeProcess.StartAsync($"certfile {pki.PathOf("server.pem")}", $"keyfile {pki.PathOf("server.key")}")
            : await MidgeProcess.StartAsync();
        using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "over", RawMqttClient.V5, tls);
        // Receive Maximum is 20 (max_inflight_messages): the 21st QoS 2 PUBLISH without PUBRELs is one too many.
        var burst = new List<byte>();
        for (ushort id = 1; id <= 21; id++) burst.AddRange(QoS2Publish(id));
        await client.SendAsync([.. burst]);
        await Task.Delay(300); // the broker has sent its PUBRECs and DISCONNECT 0x93 by now

        // The client goes on as clients do: it releases the messages it got PUBREC for, after the broker decided
        // to close. Those writes must not fail (a client such as paho stops at a failed write and never reads the
        // DISCONNECT): the broker still reads, and discards, what comes.
        // Separate writes, without pauses between them: the lingering close lasts 1 s, and a loaded machine
        // stretches every pause (a 5 ms pause per write once took the loop past that bound in CI).
        for (ushort id = 1; id <= 20; id++)
            await client.SendAsync(RawMqttClient.Frame(0x62, [(byte)(id >> 8), (byte)id]));
        await Task.Delay(20);
        await client.SendAsync(RawMqttClient.Frame(0xC0, []));

        var packets = await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(20, packets.Count(p => p.Type == 5));
        var disconnect = packets.Last();
        Assert.Equal(14, disconnect.Type);
        Assert.Equal(0x93, disconnect.Body[0]);
        if (!tls) await RawMqttClient.AssertRoundTripAsync(broker.Port, RawMqttClient.V5);
    }

    [Fact]
    public async Task LingeringClose_EndsWithinItsBound_WhenTheClientNeverCloses()
    {
        await using var broker = await MidgeProcess.StartAsync();
        using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "stays", RawMqttClient.V5);
        await client.SendAsync(RawMqttClient.Frame(0x10, [])); // a second CONNECT: DISCONNECT 0x82 (or 0x81)
        var started = DateTime.UtcNow;
        var packets = await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(5)); // ends at the broker's FIN
        Assert.Equal(14, Assert.Single(packets).Type);

        // The client keeps its socket open and keeps writing: the broker reads and discards for a while, then
        // closes for good, and a write then fails.
        bool failed = false;
        while (!failed && DateTime.UtcNow - started < TimeSpan.FromSeconds(5))
        {
            try
            {
                await client.SendAsync(RawMqttClient.Frame(0xC0, []));
                await Task.Delay(50);
            }
            catch (IOException)
            {
                failed = true;
            }
        }
        var elapsed = DateTime.UtcNow - started;
        Assert.True(failed, "the broker never closed the lingering connection");
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(4));
    }
}
