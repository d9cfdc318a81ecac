using System.Net;
using System.Net.Sockets;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Client.Tests;

/// <summary>The packet trace, the SOCKS5 client and the hashed CA directory of the client library.</summary>
public sealed class ConnectionOptionTests(BrokersFixture brokers) : IClassFixture<BrokersFixture>
{
    private static CancellationToken Bounded() => new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token;

    [Theory]
    [InlineData("midge")]
    [InlineData("mosquitto")]
    public async Task Packet_trace_sees_each_packet_in_the_order_of_the_exchange(string broker)
    {
        var ct = Bounded();
        var seen = new List<string>();
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = brokers.Port(broker),
            ClientId = "trace" + Guid.NewGuid().ToString("N")[..8],
            PacketTrace = (packet, outgoing) =>
            {
                lock (seen) seen.Add((outgoing ? ">" : "<") + packet.Type);
            },
        };
        string topic = $"trace/{Guid.NewGuid():N}";
        await using (var client = new MqttClient(options))
        {
            await client.ConnectAsync(ct);
            await client.SubscribeAsync(topic, QoS.ExactlyOnce, ct);
            await client.PublishAsync(topic, "x"u8.ToArray(), QoS.ExactlyOnce, ct: ct);
            await client.ReadMessageAsync(ct);
            // The message is handed out on PUBLISH; its PUBREL/PUBCOMP may still be on their way.
            while (true)
            {
                lock (seen)
                {
                    if (seen.Contains(">PubComp")) break;
                }
                await Task.Delay(10, ct);
            }
            await client.DisconnectAsync();
        }
        string[] got;
        lock (seen) got = [.. seen];
        // Our QoS 2 publish and the server's QoS 2 delivery of it interleave; each flow keeps its order.
        Assert.Equal([">Connect", "<ConnAck", ">Subscribe", "<SubAck", ">Publish"], got[..5]);
        Assert.Equal(">Disconnect", got[^1]);
        Assert.Equal(["<PubRec", ">PubRel", "<PubComp"], got.Where(p => p is "<PubRec" or ">PubRel" or "<PubComp"));
        Assert.Equal(["<Publish", ">PubRec", "<PubRel", ">PubComp"], got.Where(p => p is "<Publish" or ">PubRec" or "<PubRel" or ">PubComp"));
    }

    [Fact]
    public async Task A_socks5_refusal_fails_the_connect_with_its_reason()
    {
        var ct = Bounded();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var proxy = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync(ct);
            await using var s = new NetworkStream(socket);
            var buffer = new byte[512];
            await s.ReadExactlyAsync(buffer.AsMemory(0, 3), ct); // 5, 1, 0: no authentication offered
            await s.WriteAsync(new byte[] { 5, 0 }, ct);
            await s.ReadExactlyAsync(buffer.AsMemory(0, 5), ct); // 5, 1, 0, 3 (a name), its length
            int rest = buffer[4] + 2;
            await s.ReadExactlyAsync(buffer.AsMemory(0, rest), ct);
            string host = System.Text.Encoding.ASCII.GetString(buffer, 0, rest - 2);
            await s.WriteAsync(new byte[] { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 }, ct);
            return host;
        }, ct);
        await using var client = new MqttClient(new MqttClientOptions
        {
            Host = "broker.example",
            Port = 1883,
            Proxy = new Socks5Proxy("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port),
        });
        var error = await Assert.ThrowsAsync<Socks5Exception>(async () => await client.ConnectAsync(ct));
        Assert.Contains("refused", error.Message);
        Assert.Equal("broker.example", await proxy);
    }

    [Fact]
    public void Socks5_connect_request_names_the_host_or_gives_the_address()
    {
        Assert.Equal([5, 1, 0, 3, 4, (byte)'h', (byte)'o', (byte)'s', (byte)'t', 0x07, 0x5B], Socks5.ConnectRequest("host", 1883));
        Assert.Equal([5, 1, 0, 1, 10, 0, 0, 1, 0x22, 0xB3], Socks5.ConnectRequest("10.0.0.1", 8883));
        Assert.Equal(4, Socks5.ConnectRequest("::1", 1)[3]);
    }

    [Fact]
    public void A_ca_directory_is_read_by_its_hashed_names_only()
    {
        string dir = Path.Combine(Path.GetTempPath(), "midge-capath-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            using var key = System.Security.Cryptography.ECDsa.Create();
            string Pem(string cn) => new System.Security.Cryptography.X509Certificates.CertificateRequest($"CN={cn}", key, System.Security.Cryptography.HashAlgorithmName.SHA256)
                .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1)).ExportCertificatePem();
            File.WriteAllText(Path.Combine(dir, "0a1b2c3d.0"), Pem("hashed"));
            File.WriteAllText(Path.Combine(dir, "0a1b2c3d.1"), Pem("second"));
            File.WriteAllText(Path.Combine(dir, "ca.pem"), Pem("original"));
            File.WriteAllText(Path.Combine(dir, "0a1b2c3d.r0"), "not a certificate");
            File.WriteAllText(Path.Combine(dir, "ffffffff.0"), "not a certificate either");
            var found = MqttConnection.LoadHashedDirectory(dir);
            Assert.Equal(["CN=hashed", "CN=second"], found.Select(c => c.Subject));
            Assert.Empty(MqttConnection.LoadHashedDirectory(Path.Combine(dir, "missing")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
