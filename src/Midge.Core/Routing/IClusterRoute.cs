namespace Midge.Core.Routing;

/// <summary>
/// The cluster's side of routing (docs/cluster.md): set as <see cref="Router.Cluster"/> by a node of a cluster; null
/// on a broker that runs alone.
/// </summary>
public interface IClusterRoute
{
    /// <summary>
    /// Completes once the filters that the subscriptions just made on this thread added to the routing index are
    /// subscribed in the cluster, so that a message published on any node from then on reaches them: at once when they
    /// added none (a filter this node already has in the cluster costs nothing) or the cluster is unreachable, and
    /// within a bounded wait otherwise. Called by a SUBSCRIBE on its thread right after its filters went into the index,
    /// before its SUBACK.
    /// </summary>
    ValueTask SubscribedAsync();
}
