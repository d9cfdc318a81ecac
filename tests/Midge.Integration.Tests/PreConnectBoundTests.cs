using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Before CONNECT is done nobody is authenticated: a connection may send one packet of at most 512 KiB, whatever
/// max_packet_size allows later. A huge frame is refused from its header, before its body is buffered
/// (Mosquitto's CVE-2023-0809), and the broker keeps serving.
/// </summary>
public sealed class PreConnectBoundTests
{
    [Theory]
    [InlineData(0x30)] // a PUBLISH as the first packet
    [InlineData(0x10)] // a CONNECT of 200 MB
    public async Task HugeFirstFrames_AreRefusedFromTheirHeader(byte header)
    {
        await using var broker = await MidgeProcess.StartAsync();
        var clients = new List<RawMqttClient>();
        for (int c = 0; c < 8; c++)
        {
            var client = await RawMqttClient.ConnectTcpAsync(broker.Port);
            clients.Add(client);
            // Remaining length 200,000,000, then the first 600 KiB of a body that never ends.
            await client.SendAsync([header, 0x80, 0x84, 0xAF, 0x5F]);
            try
            {
                var chunk = new byte[64 * 1024];
                for (int i = 0; i < 10; i++) await client.SendAsync(chunk);
            }
            catch (IOException)
            {
                // refused already
            }
        }
        foreach (var client in clients)
        {
            Assert.Empty(await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(5))); // closed, no CONNACK
            client.Dispose();
        }
        Assert.False(broker.HasExited);
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
    }

    [Fact]
    public async Task AConnectOfAFewHundredKilobytes_IsStillAccepted()
    {
        // A will payload and password at their 65,535-byte maximum, as MQTT allows them: well under the bound.
        await using var broker = await MidgeProcess.StartAsync();
        var body = new List<byte>();
        void String(byte[] s)
        {
            body.Add((byte)(s.Length >> 8));
            body.Add((byte)s.Length);
            body.AddRange(s);
        }
        String("MQTT"u8.ToArray());
        body.Add(4);
        body.Add(0x02 | 0x04 | 0x80 | 0x40); // clean, will, user name, password
        body.Add(0);
        body.Add(60);
        String("big-connect"u8.ToArray());
        String("will/t"u8.ToArray());
        String(new byte[65535]);
        String("user"u8.ToArray());
        String(new byte[65535]);
        using var client = await RawMqttClient.ConnectTcpAsync(broker.Port);
        await client.SendAsync(RawMqttClient.Frame(0x10, body));
        var connack = await client.ReadAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(2, connack?.Type); // answered (anonymous refused or accepted), not cut off
    }
}
