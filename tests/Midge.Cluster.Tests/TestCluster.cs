using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Midge.Client;
using Midge.Hosting;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Cluster.Tests;

/// <summary>A nats-server with JetStream (or a three-server NATS cluster: <see cref="StartOnNatsClusterAsync"/>) and
/// brokers in this process, each a node of one cluster on it, on free loopback ports. Disposed nodes first, then
/// NATS.</summary>
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

    private readonly NatsServer? _nats;
    private readonly string _natsConfig;

    private TestCluster(NatsServer? nats, NatsCluster? natsCluster)
    {
        _nats = nats;
        NatsCluster = natsCluster;
        // A node on the three servers names each (docs/cluster.md, "Three nodes behind a TCP load balancer").
        _natsConfig = natsCluster is null
            ? $"cluster_nats_url {nats!.Url}"
            : string.Join("\n", natsCluster.Urls.Select(u => $"cluster_nats_url {u}")) + $"\ncluster_replicas {NatsCluster.Size}";
    }

    /// <summary>The one nats-server (not for a cluster on <see cref="NatsCluster"/>).</summary>
    public NatsServer Nats => _nats ?? throw new InvalidOperationException("this cluster runs on a NATS cluster");

    /// <summary>The three NATS servers, for a cluster started with <see cref="StartOnNatsClusterAsync"/>.</summary>
    public NatsCluster? NatsCluster { get; }

    public IReadOnlyList<Node> Nodes => _nodes;

    public Node this[int index] => _nodes[index];

    public static async Task<TestCluster> StartAsync(int nodes, string extraConfig = "") =>
        await StartNodesAsync(new TestCluster(await NatsServer.StartAsync(), null), nodes, extraConfig);

    /// <summary>Nodes on a three-server NATS cluster, each configured with the three URLs and
    /// <c>cluster_replicas 3</c>.</summary>
    public static async Task<TestCluster> StartOnNatsClusterAsync(int nodes, string extraConfig = "") =>
        await StartNodesAsync(new TestCluster(null, await NatsCluster.StartAsync()), nodes, extraConfig);

    private static async Task<TestCluster> StartNodesAsync(TestCluster cluster, int nodes, string extraConfig)
    {
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
        var log = new ClusterLog();
        var server = await MidgeServer.StartAsync(o => o.UseConfig($"""
            listener {port} 127.0.0.1
            allow_anonymous true
            {_natsConfig}
            cluster_name test
            cluster_node_name {name}
            {extraConfig}
            """), logging => logging.AddProvider(log));
        var node = new Node(name, port, server, log);
        _nodes.Add(node);
        await node.Cluster.Joined.WaitAsync(Patience);
        return node;
    }

    /// <summary>Starts a node of this cluster as a real <c>midge</c> process (one a test can kill with SIGKILL), named
    /// <paramref name="name"/>, and waits until it has joined.</summary>
    public async Task<MidgeProcess> StartProcessNodeAsync(string name)
    {
        var node = await MidgeProcess.StartAsync($"cluster_nats_url {Nats.Url}", "cluster_name test", $"cluster_node_name {name}");
        if (!await node.WaitForLogAsync($"Cluster test: node {name} joined", Patience))
        {
            await node.DisposeAsync();
            throw new TimeoutException($"node {name} did not join: {node.Log}");
        }
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
        if (_nats is not null) await _nats.DisposeAsync();
        if (NatsCluster is not null) await NatsCluster.DisposeAsync();
    }

    internal sealed class Node(string name, int port, MidgeServer server, ClusterLog log) : IAsyncDisposable
    {
        private bool _disposed;

        /// <summary>What the node's cluster part logged (<c>Midge.Cluster</c>), line by line.</summary>
        public ClusterLog Log { get; } = log;

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

    /// <summary>The lines a node's cluster part logs (the <c>Midge.Cluster</c> category only: NATS.Net's own are many).</summary>
    internal sealed class ClusterLog : ILoggerProvider
    {
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines) return [.. _lines];
            }
        }

        public override string ToString() => string.Join("\n", Lines);

        public ILogger CreateLogger(string categoryName) => categoryName == "Midge.Cluster" ? new Logger(this) : NullLogger.Instance;

        public void Dispose()
        {
        }

        private sealed class Logger(ClusterLog log) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel)) return;
                lock (log._lines) log._lines.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel}: {formatter(state, exception)}");
            }
        }
    }
}
