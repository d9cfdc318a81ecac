namespace Midge.Core;

/// <summary>
/// What the broker knows of the cluster it is a node of (docs/cluster.md), for <c>$SYS</c> and the HTTP API. Set
/// on <see cref="Broker.Cluster"/> by the cluster's service when the configuration has <c>cluster_nats_url</c>;
/// null when the broker runs alone.
/// </summary>
public interface IClusterDirectory
{
    /// <summary>This node and the others it has heard from, this node first.</summary>
    IReadOnlyList<ClusterNodeStatus> Nodes();
}

/// <summary>One node of the cluster as this node sees it.</summary>
/// <param name="Name">Its <c>cluster_node_name</c>.</param>
/// <param name="IsSelf">Whether it is this node.</param>
/// <param name="Running">Whether it is up as far as this node knows (for this node: connected to NATS).</param>
/// <param name="Connections">Clients connected to it (as it last said).</param>
/// <param name="Sessions">Sessions it holds (as it last said).</param>
/// <param name="LastSeen">When this node last heard from it.</param>
public sealed record ClusterNodeStatus(string Name, bool IsSelf, bool Running, int Connections, int Sessions, DateTimeOffset LastSeen)
{
    /// <summary>Messages it sent to other nodes (as it last said).</summary>
    public long MessagesSent { get; init; }

    /// <summary>Messages it received from other nodes (as it last said).</summary>
    public long MessagesReceived { get; init; }

    /// <summary>Messages it could not send to the other nodes (as it last said).</summary>
    public long MessagesDropped { get; init; }
}
