using System.Globalization;
using Midge.Client;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The cluster on NATS (docs/cluster.md) with real `midge` processes (the JIT build, and the Native AOT one when the
/// suite runs against it): Debian's nats-server with JetStream, two nodes, Debian's mosquitto clients and the Midge
/// client on different nodes.
/// </summary>
public class ClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static async Task<MidgeProcess> NodeAsync(NatsServer nats, string name)
    {
        var node = await MidgeProcess.StartAsync($"cluster_nats_url {nats.Url}", "cluster_name it", $"cluster_node_name {name}");
        Assert.True(await node.WaitForLogAsync($"Cluster it: node {name} joined", Timeout), node.Log);
        return node;
    }

    [Fact]
    public async Task Messages_cross_nodes_once_and_a_client_moving_to_another_node_keeps_its_session()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var a = await NodeAsync(nats, "a");
        await using var b = await NodeAsync(nats, "b");

        // A mosquitto_pub on node a reaches a subscriber on node b, once (the subscription reaches NATS within moments
        // of its SUBACK: publish until the first arrives, then count).
        await using var sub = await Collector.StartAsync(b.Port, QoS.AtLeastOnce, "it/#");
        for (int i = 0; i < 50 && sub.Messages.IsEmpty; i++)
        {
            Assert.Equal(0, (await MosquittoClients.PublishAsync(a.Port, "-t", "it/warm", "-m", "w", "-q", "1")).ExitCode);
            await sub.WaitForAsync(m => m.Length > 0, TimeSpan.FromMilliseconds(100));
        }
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(0, (await MosquittoClients.PublishAsync(a.Port, "-t", "it/n", "-m", i.ToString(CultureInfo.InvariantCulture), "-q", "1")).ExitCode);
        }
        Assert.True(await sub.WaitForAsync(m => m.Count(x => x.StartsWith("it/n ", StringComparison.Ordinal)) == 5, Timeout), a.Log + b.Log);
        await Task.Delay(300);
        Assert.Equal(["it/n 0", "it/n 1", "it/n 2", "it/n 3", "it/n 4"], sub.Messages.Where(x => x.StartsWith("it/n ", StringComparison.Ordinal)));

        // A persistent MQTT 5 client moves from node a to node b: DISCONNECT 0x8E on a, Session Present on b.
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = a.Port,
            ClientId = "mover",
            ProtocolVersion = ProtocolVersion.V500,
            CleanStart = false,
            SessionExpiryInterval = 300,
        };
        await using var first = new MqttClient(options);
        var disconnected = new TaskCompletionSource<ReasonCode>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.Disconnected += (_, e) => disconnected.TrySetResult(e.ReasonCode);
        await first.ConnectAsync();
        await first.SubscribeAsync("moved/#", QoS.AtLeastOnce);
        await using var second = new MqttClient(options with { Port = b.Port });
        Assert.True((await second.ConnectAsync()).SessionPresent);
        Assert.Equal(ReasonCode.SessionTakenOver, await disconnected.Task.WaitAsync(Timeout));
        Assert.True(await b.WaitForLogAsync("client mover taken over from node a", Timeout), b.Log);
    }

    [Fact]
    public async Task A_node_says_when_it_loses_NATS_and_when_it_is_back()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var a = await NodeAsync(nats, "a");
        await nats.KillAsync();
        Assert.True(await a.WaitForLogAsync("node a lost NATS; serving its own clients alone", Timeout), a.Log);
        // Still serving its own clients.
        await using (var local = await Collector.StartAsync(a.Port, QoS.AtLeastOnce, "local/#"))
        {
            Assert.Equal(0, (await MosquittoClients.PublishAsync(a.Port, "-t", "local/x", "-m", "y", "-q", "1")).ExitCode);
            Assert.True(await local.WaitForAsync("local/x y", Timeout));
        }
        await nats.RestartAsync();
        var deadline = DateTime.UtcNow + Timeout;
        while (Connections(a.Log) < 2 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(Connections(a.Log) >= 2, a.Log); // the first connection, and this one

        static int Connections(string log) => log.Split("node a connected to NATS server").Length - 1;
    }
}
