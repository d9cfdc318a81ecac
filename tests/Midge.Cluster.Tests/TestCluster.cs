using Midge.Client;
using Midge.Hosting;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Cluster.Tests;

/// <summary>A nats-server with JetStream and brokers in this process, each a node of one cluster on it, on free
/// loopback ports. Disposed nodes first, then NATS.</summary>
internal sealed class TestCluster : IAsyncDisposable
{
    /// <summary>How long a test waits for something that should happen within milliseconds.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly List<Node> _nodes = [];

    /// <summary>The client's next message, within <see cref="Patience"/>.</summary>
    public static async Task<ReceivedMessage> NextAsync(MqttClient client) =>
        await client.ReadMessageAsync().AsTask().WaitAsync(Patience);

    /// <summary>After NATS came back: NATS.Net subscribes again in the background, so publishes <paramref name="topic"/>
    /// until one reaches <paramref name="subscriber"/> (at most 50 tries, 200 ms each); false when none did.</summary>
    public static async Task<bool> PublishUntilReceivedAsync(MqttClient publisher, MqttClient subscriber, string topic)
    {
        for (int i = 0; i < 50; i++)
        {
            await publisher.PublishAsync(topic, "x"u8.ToArray(), Midge.Protocol.QoS.AtLeastOnce);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            try
            {
                while ((await subscriber.ReadMessageAsync(cts.Token)).Topic != topic)
                {
                }
                return true;
            }
            catch (OperationCanceledException)
            {
            }
        }
        return false;
    }

    private TestCluster(NatsServer nats) => Nats = nats;

    public NatsServer Nats { get; }

    public IReadOnlyList<Node> Nodes => _nodes;

    public Node this[int index] => _nodes[index];

    public static async Task<TestCluster> StartAsync(int nodes, string extraConfig = "")
    {
        var cluster = new TestCluster(await NatsServer.StartAsync());
        try
        {
            for (int i = 0; i < nodes; i++) await cluster.AddNodeAsync($"n{i + 1}", extraConfig);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Starts another node (joined before this returns).</summary>
    public async Task<Node> AddNodeAsync(string name, string extraConfig = "")
    {
        int port = FreePort.Next();
        var server = await MidgeServer.StartAsync(o => o.UseConfig($"""
            listener {port} 127.0.0.1
            allow_anonymous true
            cluster_nats_url {Nats.Url}
            cluster_name test
            cluster_node_name {name}
            {extraConfig}
            """));
        var node = new Node(name, port, server);
        _nodes.Add(node);
        await node.Cluster.Joined.WaitAsync(Patience);
        return node;
    }

    /// <summary>Waits until every node knows what every other node subscribes to (until then a node publishes
    /// everything, and its acknowledgements wait for no other node).</summary>
    public async Task InterestSyncedAsync()
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!_nodes.All(n => n.Cluster.InterestSynced))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the nodes did not learn each other's subscriptions in time");
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until every node's subscriptions so far are in NATS.</summary>
    public async Task SettledAsync()
    {
        foreach (var node in _nodes) await node.Cluster.InterestSettledAsync().WaitAsync(Patience);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        await Nats.DisposeAsync();
    }

    internal sealed class Node(string name, int port, MidgeServer server) : IAsyncDisposable
    {
        private bool _disposed;

        public string Name { get; } = name;

        public int Port { get; } = port;

        public MidgeServer Server { get; } = server;

        public ClusterNode Cluster => (ClusterNode)Server.Broker.Cluster!;

        public async Task<MqttClient> ConnectAsync(string clientId, ProtocolVersion version = ProtocolVersion.V500, bool cleanStart = true,
            uint? sessionExpiry = null)
        {
            var client = new MqttClient(new MqttClientOptions
            {
                Host = "127.0.0.1",
                Port = Port,
                ClientId = clientId,
                ProtocolVersion = version,
                CleanStart = cleanStart,
                SessionExpiryInterval = sessionExpiry,
            });
            await client.ConnectAsync();
            return client;
        }

        /// <summary>A client connected to this node and subscribed to <paramref name="filter"/> at QoS 1.</summary>
        public async Task<MqttClient> SubscriberAsync(string clientId, string filter)
        {
            var client = await ConnectAsync(clientId);
            await client.SubscribeAsync(filter, QoS.AtLeastOnce);
            return client;
        }

        public async ValueTask DisposeAsync()
        {
            if (_disposed) return;
            _disposed = true;
            await Server.DisposeAsync();
        }
    }
}
