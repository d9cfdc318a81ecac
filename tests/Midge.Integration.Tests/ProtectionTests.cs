using System.Diagnostics;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Connection protection with real sockets on loopback: address lists, connection rate, pending handshakes,
/// connect_timeout, and the publish rate seen by mosquitto_pub. Each test starts its own broker and opens at
/// most a dozen connections; every read is bounded.
/// </summary>
public sealed class ProtectionTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(5);

    /// <summary>Opens a socket and sends CONNECT; true when a successful CONNACK came back, false when the
    /// broker closed the connection without one.</summary>
    private static async Task<(bool Accepted, RawMqttClient? Client)> TryConnectAsync(int port, string clientId, byte version = RawMqttClient.V311)
    {
        RawMqttClient client;
        try
        {
            client = await RawMqttClient.ConnectTcpAsync(port);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return (false, null); // reset by the broker before the connect completed here
        }
        try
        {
            await client.SendAsync(RawMqttClient.Connect(clientId, version));
        }
        catch (IOException)
        {
            return (false, client); // already reset by the broker
        }
        var packet = await client.ReadAsync(Short);
        return (packet is { Type: 2 } && packet.Body[^(version == RawMqttClient.V5 ? 2 : 1)] == 0 && packet.Body[1] == 0, client);
    }

    [Fact]
    public async Task DenyAddress_ClosesTheSocketBeforeAnyMqtt_AndLogsIt()
    {
        await using var broker = await MidgeProcess.StartAsync("deny_address 127.0.0.1/32");
        var (accepted, client) = await TryConnectAsync(broker.Port, "denied");
        client?.Dispose();
        Assert.False(accepted);
        Assert.True(await broker.WaitForLogAsync("address not allowed", Short), broker.Log);
        Assert.DoesNotContain("New client connected", broker.Log);
    }

    [Fact]
    public async Task AllowAddress_AdmitsTheNetwork()
    {
        await using var broker = await MidgeProcess.StartAsync("allow_address 127.0.0.0/8", "allow_address ::1");
        await RawMqttClient.AssertRoundTripAsync(broker.Port, RawMqttClient.V5);
    }

    [Fact]
    public async Task AllowAddress_DeniesEveryoneElse()
    {
        await using var broker = await MidgeProcess.StartAsync("allow_address 10.0.0.0/8");
        var (accepted, client) = await TryConnectAsync(broker.Port, "outsider");
        client?.Dispose();
        Assert.False(accepted);
        Assert.True(await broker.WaitForLogAsync("address not allowed", Short), broker.Log);
    }

    [Fact]
    public async Task ConnectionRate_ClosesTheExcess_ThenAcceptsAgain()
    {
        await using var broker = await MidgeProcess.StartAsync("max_connection_rate 2");
        var clients = new List<RawMqttClient?>();
        int accepted = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < 8; i++)
            {
                var (ok, client) = await TryConnectAsync(broker.Port, "rate-" + i);
                clients.Add(client);
                if (ok) accepted++;
            }
            // Burst of 2 (the start-up probe may have taken one), plus one token per half second of the loop.
            int allowed = 2 + (int)(clock.Elapsed.TotalMilliseconds / 500) + 1;
            Assert.InRange(accepted, 1, Math.Min(allowed, 7));
            Assert.True(await broker.WaitForLogAsync("max_connection_rate 2 per second exceeded", Short), broker.Log);

            await Task.Delay(1100);
            var (again, last) = await TryConnectAsync(broker.Port, "rate-after");
            clients.Add(last);
            Assert.True(again);
        }
        finally
        {
            foreach (var c in clients) c?.Dispose();
        }
    }

    [Fact]
    public async Task PendingConnections_BeyondTheLimitAreClosed_UntilOneCompletesConnect()
    {
        await using var broker = await MidgeProcess.StartAsync("max_pending_connections 2");
        await Task.Delay(500); // the start-up probe's connection must be gone from the count
        using var a = await RawMqttClient.ConnectTcpAsync(broker.Port);
        using var b = await RawMqttClient.ConnectTcpAsync(broker.Port);
        await Task.Delay(200); // let the broker accept both
        var (third, c) = await TryConnectAsync(broker.Port, "third");
        c?.Dispose();
        Assert.False(third);
        Assert.True(await broker.WaitForLogAsync("connections already waiting for CONNECT", Short), broker.Log);

        // a completes its handshake: it no longer counts, so a new connection gets in.
        await a.SendAsync(RawMqttClient.Connect("a"));
        Assert.Equal(2, (await a.ReadAsync(Short))?.Type);
        await Task.Delay(200); // the slot is released just after CONNACK is queued; give the broker that moment
        var (fourth, d) = await TryConnectAsync(broker.Port, "fourth");
        d?.Dispose();
        Assert.True(fourth);
    }

    [Fact]
    public async Task ConnectTimeout_ClosesASilentConnection()
    {
        await using var broker = await MidgeProcess.StartAsync("connect_timeout 1");
        using var silent = await RawMqttClient.ConnectTcpAsync(broker.Port);
        var clock = Stopwatch.StartNew();
        Assert.Empty(await silent.ReadUntilClosedAsync(TimeSpan.FromSeconds(6)));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(6));
    }

    [Fact]
    public async Task PublishRate_MosquittoPubV5_SeesMessageRateTooHigh()
    {
        await using var broker = await MidgeProcess.StartAsync("max_publish_rate 2", "publish_rate_disconnect_after 0");
        var r = await MosquittoClients.PublishAsync(broker.Port, "-V", "mqttv5", "-q", "1", "-d", "-t", "rate/t", "-m", "x",
            "--repeat", "6", "-i", "rate-pub");
        Assert.False(r.TimedOut, r.ToString());
        // PUBACK reason code 150 (0x96 Message rate too high) for the messages beyond the burst.
        Assert.Contains("RC:150", r.Stdout + r.Stderr, StringComparison.Ordinal);
        Assert.True(await broker.WaitForLogAsync("exceeds its publish rate", Short), broker.Log);
    }
}
