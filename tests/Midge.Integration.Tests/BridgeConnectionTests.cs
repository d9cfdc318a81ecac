using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Midge.Protocol;
using Midge.TestKit;
using static Midge.Integration.Tests.BridgeSupport;

namespace Midge.Integration.Tests;

/// <summary>
/// When a bridge connects and to which address (docs/bridges.md, "Connection and state"): <c>start_type lazy</c>
/// with <c>threshold</c> and <c>idle_timeout</c>, <c>start_type once</c>, several <c>addresses</c> with and without
/// <c>round_robin</c>, and what a QoS 2 message in flight becomes when the bridge moves to another address.
/// </summary>
public class BridgeConnectionTests
{
    [Theory]
    [InlineData("false")]
    [InlineData("true")]
    public async Task Lazy_ConnectsOnceThresholdMessagesWait_AndDisconnectsWhenIdle(string cleanSession)
    {
        await using var remote = await MidgeProcess.StartAsync();
        await using var midge = await MidgeProcess.StartAsync([.. Lines(remote.Port, "mqttv311", "lazy/# out 1"),
            "start_type lazy", "threshold 3", "idle_timeout 2", $"cleansession {cleanSession}"]);
        await using var onRemote = await Collector.StartAsync(remote.Port, QoS.AtLeastOnce, "lazy/#");
        await PublishAsync(midge.Port, "lazy/1", "a", 1);
        await PublishAsync(midge.Port, "lazy/2", "b", 1);
        await Task.Delay(2000);
        Assert.DoesNotContain("Connecting bridge up", midge.Log, StringComparison.Ordinal);
        Assert.Empty(onRemote.Messages);

        await PublishAsync(midge.Port, "lazy/3", "c", 1);
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Patience), midge.Log);
        Assert.True(await onRemote.WaitForAsync(m => m.Length == 3, Patience), string.Join('\n', onRemote.Messages) + midge.Log);
        Assert.Equal(["lazy/1 a", "lazy/2 b", "lazy/3 c"], onRemote.Messages);
        Assert.True(await midge.WaitForLogAsync("Bridge up disconnected (idle)", Patience), midge.Log);

        // Idle again: the next three messages wait, then start it again.
        await PublishAsync(midge.Port, "lazy/4", "d", 1);
        await PublishAsync(midge.Port, "lazy/5", "e", 1);
        await Task.Delay(1500);
        Assert.Equal(1, Occurrences(midge.Log, "Bridge up connected"));
        await PublishAsync(midge.Port, "lazy/6", "f", 1);
        Assert.True(await WaitForLogAsync(midge, "Bridge up connected", 2), midge.Log);
        Assert.True(await onRemote.WaitForAsync(m => m.Length == 6, Patience), string.Join('\n', onRemote.Messages) + midge.Log);
        Assert.Equal(["lazy/4 d", "lazy/5 e", "lazy/6 f"], onRemote.Messages.Skip(3));
    }

    [Fact]
    public async Task Once_DoesNotReconnectAfterADrop()
    {
        await using var remote = new RestartableMosquitto();
        await remote.StartAsync();
        await using var midge = await MidgeProcess.StartAsync([.. Lines(remote.Port, "mqttv311", "once/# out 1"), "start_type once"]);
        Assert.True(await midge.WaitForLogAsync("Bridge up connected", Patience), midge.Log);
        await remote.StopAsync();
        Assert.True(await midge.WaitForLogAsync("Bridge up stopped (start_type once)", Patience), midge.Log);
        await remote.StartAsync();
        await Task.Delay(3000); // restart_timeout 1: an automatic bridge would be back by now
        Assert.Equal(1, Occurrences(midge.Log, "Connecting bridge up"));
        Assert.Equal(1, Occurrences(midge.Log, "Bridge up connected"));
    }

    /// <summary>Publishes on the bridging broker and waits for the message on <paramref name="remotePort"/>.</summary>
    private static async Task CarriedToAsync(MidgeProcess midge, int remotePort, string payload)
    {
        await using var onRemote = await Collector.StartAsync(remotePort, QoS.AtLeastOnce, "rr/#");
        await PublishAsync(midge.Port, "rr/x", payload, 1);
        Assert.True(await onRemote.WaitForAsync("rr/x " + payload, Patience), $"'{payload}' did not reach {remotePort}\n{midge.Log}");
    }

    [Fact]
    public async Task Addresses_NoRoundRobin_UsesTheFirst_MovesToTheSecond_GoesBackToTheFirst()
    {
        await using var a = new RestartableMosquitto();
        await using var b = new RestartableMosquitto();
        await a.StartAsync();
        await b.StartAsync();
        await using var midge = await MidgeProcess.StartAsync("connection up", $"addresses 127.0.0.1:{a.Port} 127.0.0.1:{b.Port}",
            "restart_timeout 1", "round_robin false", "topic rr/# out 1");
        string onA = $"Bridge up connected to 127.0.0.1:{a.Port}", onB = $"Bridge up connected to 127.0.0.1:{b.Port}";
        Assert.True(await midge.WaitForLogAsync(onA, Patience), midge.Log);
        await CarriedToAsync(midge, a.Port, "1");

        await a.StopAsync();
        Assert.True(await midge.WaitForLogAsync(onB, Patience), midge.Log);
        await CarriedToAsync(midge, b.Port, "2");

        await a.StartAsync();
        Assert.True(await midge.WaitForLogAsync($"primary address 127.0.0.1:{a.Port} is back", Patience), midge.Log);
        Assert.True(await WaitForLogAsync(midge, onA, 2), midge.Log);
        await CarriedToAsync(midge, a.Port, "3");
        Assert.Equal(1, Occurrences(midge.Log, onB));
    }

    [Fact]
    public async Task Addresses_RoundRobin_StaysWhereItIsUntilThatConnectionFails()
    {
        await using var a = new RestartableMosquitto();
        await using var b = new RestartableMosquitto();
        await a.StartAsync();
        await b.StartAsync();
        await using var midge = await MidgeProcess.StartAsync("connection up", $"addresses 127.0.0.1:{a.Port} 127.0.0.1:{b.Port}",
            "restart_timeout 1", "round_robin true", "topic rr/# out 1");
        string onA = $"Bridge up connected to 127.0.0.1:{a.Port}", onB = $"Bridge up connected to 127.0.0.1:{b.Port}";
        Assert.True(await midge.WaitForLogAsync(onA, Patience), midge.Log);
        await a.StopAsync();
        Assert.True(await midge.WaitForLogAsync(onB, Patience), midge.Log);
        await a.StartAsync();
        await Task.Delay(7000); // without round_robin it would have gone back to a within 5 s
        Assert.DoesNotContain("is back", midge.Log, StringComparison.Ordinal);
        Assert.Equal(1, Occurrences(midge.Log, onA));
        await CarriedToAsync(midge, b.Port, "on-b");

        await b.StopAsync();
        Assert.True(await WaitForLogAsync(midge, onA, 2), midge.Log);
        await CarriedToAsync(midge, a.Port, "on-a");
    }

    /// <summary>
    /// A remote that takes one connection and ends it in the middle of a QoS 2 exchange: after the PUBLISH (no
    /// PUBREC), or after PUBREC and the bridge's PUBREL (no PUBCOMP). It refuses connections after that one, so the
    /// bridge stays on its second address.
    /// </summary>
    private sealed class BrokenRemote : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task _run;
        public readonly ConcurrentQueue<string> Published = new();

        public BrokenRemote(bool answerPubRec)
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _run = Task.Run(() => RunAsync(answerPubRec));
        }

        public int Port { get; }

        private async Task RunAsync(bool answerPubRec)
        {
            using var client = await _listener.AcceptTcpClientAsync();
            _listener.Stop();
            var stream = client.GetStream();
            while (await ReadAsync(stream) is var (type, flags, body))
            {
                switch (type)
                {
                    case 1: // CONNECT
                        await stream.WriteAsync(new byte[] { 0x20, 2, 0, 0 });
                        break;
                    case 12: // PINGREQ
                        await stream.WriteAsync(new byte[] { 0xD0, 0 });
                        break;
                    case 3: // PUBLISH
                        int qos = (flags >> 1) & 3;
                        int offset = 2 + ((body[0] << 8) | body[1]);
                        byte[] id = qos > 0 ? body[offset..(offset + 2)] : [];
                        if (qos > 0) offset += 2;
                        Published.Enqueue(Encoding.UTF8.GetString(body.AsSpan(offset)));
                        if (qos == 1) await stream.WriteAsync(new byte[] { 0x40, 2, id[0], id[1] });
                        if (qos == 2)
                        {
                            if (!answerPubRec) return;
                            await stream.WriteAsync(new byte[] { 0x50, 2, id[0], id[1] });
                        }
                        break;
                    case 6: // PUBREL: the bridge knows the message was taken; end without PUBCOMP
                        return;
                }
            }
        }

        private static async Task<(int Type, int Flags, byte[] Body)?> ReadAsync(NetworkStream stream)
        {
            var one = new byte[1];
            if (await stream.ReadAsync(one) == 0) return null;
            int header = one[0], length = 0, shift = 0;
            do
            {
                await stream.ReadExactlyAsync(one);
                length |= (one[0] & 0x7f) << shift;
                shift += 7;
            }
            while ((one[0] & 0x80) != 0);
            var body = new byte[length];
            await stream.ReadExactlyAsync(body);
            return (header >> 4, header & 0x0f, body);
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _run.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or TimeoutException)
            {
            }
        }
    }

    /// <summary>
    /// The first remote drops the connection in the middle of a QoS 2 exchange and the bridge moves to the second.
    /// A message the first one took (PUBREC) is finished with a PUBREL to the second, never sent again; one it did not
    /// acknowledge is sent to the second, with its packet id, and arrives there once. Mosquitto's bridge does the same.
    /// </summary>
    [Theory]
    [InlineData(true, 0)]
    [InlineData(false, 1)]
    public async Task QoS2_InFlightWhenTheBridgeMovesToAnotherAddress(bool firstAnswersPubRec, int expectedOnSecond)
    {
        await using var first = new BrokenRemote(firstAnswersPubRec);
        await using var second = await MidgeProcess.StartAsync();
        await using var midge = await MidgeProcess.StartAsync("connection up", $"addresses 127.0.0.1:{first.Port} 127.0.0.1:{second.Port}",
            "restart_timeout 1", "notifications false", "bridge_attempt_unsubscribe false", "topic fo/# out 2", "sys_interval 1");
        Assert.True(await midge.WaitForLogAsync($"Bridge up connected to 127.0.0.1:{first.Port}", Patience), midge.Log);
        await using var onSecond = await Collector.StartAsync(second.Port, QoS.ExactlyOnce, "fo/#");
        await PublishAsync(midge.Port, "fo/1", "in-flight", 2);
        Assert.True(await midge.WaitForLogAsync($"Bridge up connected to 127.0.0.1:{second.Port}", Patience), midge.Log);
        await PublishAsync(midge.Port, "fo/2", "after", 2);
        Assert.True(await onSecond.WaitForAsync("fo/2 after", Patience), midge.Log);
        await Task.Delay(1000);
        Assert.Equal(["in-flight"], first.Published);
        Assert.Equal(expectedOnSecond, onSecond.Count("fo/1 in-flight"));
        Assert.Equal(1, onSecond.Count("fo/2 after"));
        // And nothing waits in the bridge's local session: the message was settled, not left in flight.
        await using var sys = await Collector.StartAsync(midge.Port, QoS.AtMostOnce, "$SYS/broker/bridges/up/messages/queued");
        Assert.True(await sys.WaitForAsync(m => m.Length > 0 && m[^1].EndsWith(" 0", StringComparison.Ordinal), Patience), string.Join('\n', sys.Messages));
    }
}
