namespace Midge.TestKit;

/// <summary>
/// The broker a protocol test talks to: one <c>midge</c> process, or, when <c>MIDGE_TEST_CLUSTER_NODES</c> is set
/// (run-tests.sh sets 3 for a pass of the protocol suites), that many nodes of one cluster on a nats-server with
/// JetStream behind a <see cref="TcpBalancer"/> that sends each connection to a node picked at random: the same
/// tests, each client on a random node, as docs/cluster.md's set-up behind a load balancer.
/// </summary>
public sealed class BrokerUnderTest : IAsyncDisposable
{
    /// <summary>How long a node gets to say it joined the cluster.</summary>
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(15);

    private readonly NatsServer? _nats;
    private readonly TcpBalancer? _balancer;

    private BrokerUnderTest(IReadOnlyList<MidgeProcess> nodes, NatsServer? nats, TcpBalancer? balancer)
    {
        Nodes = nodes;
        _nats = nats;
        _balancer = balancer;
    }

    /// <summary>The cluster's size from <c>MIDGE_TEST_CLUSTER_NODES</c>; 0 for one broker alone.</summary>
    public static int ClusterNodes { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("MIDGE_TEST_CLUSTER_NODES"), out int n) && n > 1 ? n : 0;

    /// <summary>The port clients connect to: the broker's, or the balancer's in front of the nodes.</summary>
    public int Port => _balancer?.Port ?? Nodes[0].Port;

    /// <summary>The broker alone, or the cluster's first node.</summary>
    public MidgeProcess First => Nodes[0];

    public IReadOnlyList<MidgeProcess> Nodes { get; }

    /// <summary>Everything the brokers logged so far, node by node.</summary>
    public string Log => string.Join("\n", Nodes.Select((n, i) => $"--- node {i + 1}\n{n.Log}"));

    /// <summary>Starts the broker (or the cluster) with <paramref name="lines"/> added to every node's configuration
    /// and <paramref name="firstNodeOnly"/> to the first node's alone (for listeners on fixed ports).</summary>
    public static async Task<BrokerUnderTest> StartAsync(string[] lines, string[]? firstNodeOnly = null)
    {
        firstNodeOnly ??= [];
        if (ClusterNodes == 0) return new BrokerUnderTest([await MidgeProcess.StartAsync([.. lines, .. firstNodeOnly])], null, null);

        var nats = await NatsServer.StartAsync();
        var nodes = new List<MidgeProcess>();
        try
        {
            for (int i = 1; i <= ClusterNodes; i++)
            {
                var node = await MidgeProcess.StartAsync([.. lines, .. i == 1 ? firstNodeOnly : [],
                    $"cluster_nats_url {nats.Url}", "cluster_name it", $"cluster_node_name n{i}"]);
                nodes.Add(node);
                if (!await node.WaitForLogAsync($"Cluster it: node n{i} joined", JoinTimeout))
                    throw new TimeoutException($"node n{i} did not join within {JoinTimeout}: {node.Log}");
            }
        }
        catch
        {
            foreach (var node in nodes) await node.DisposeAsync();
            await nats.DisposeAsync();
            throw;
        }
        return new BrokerUnderTest(nodes, nats, new TcpBalancer([.. nodes.Select(n => n.Port)]));
    }

    public async ValueTask DisposeAsync()
    {
        if (_balancer is not null) await _balancer.DisposeAsync();
        foreach (var node in Nodes) await node.DisposeAsync();
        if (_nats is not null) await _nats.DisposeAsync();
    }
}
