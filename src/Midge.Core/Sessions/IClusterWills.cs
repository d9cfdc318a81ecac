using Midge.Core.Messages;

namespace Midge.Core.Sessions;

/// <summary>
/// Where a cluster keeps the wills of this node's connections, so that another node publishes them if this node dies
/// (docs/cluster.md): set as <see cref="Broker.ClusterWills"/>; null on a broker that runs alone. Both calls are quick
/// and never block (they queue); calls for one client id come in the order of its connections' lives.
/// </summary>
public interface IClusterWills
{
    /// <summary>A connection of <paramref name="clientId"/> (<paramref name="connection"/>: its identity) has a will:
    /// <paramref name="will"/>, as it would be published, after <paramref name="delaySeconds"/>.</summary>
    void WillSet(string clientId, object connection, Message will, uint delaySeconds);

    /// <summary>That connection has ended and this node dealt with its will (published it or discarded it), or a will
    /// it waited with (<see cref="WillDelayed"/>) was published or cancelled: the cluster forgets it, unless a later
    /// connection of the client id has set its own.</summary>
    void WillEnded(string clientId, object connection);

    /// <summary>That connection has ended without DISCONNECT and its will waits on this node until
    /// <paramref name="dueAt"/> (its Will Delay Interval, or its session's expiry if sooner): the cluster keeps it, so
    /// that another node publishes it then if this node is gone, and forgets it at <see cref="WillEnded"/>.</summary>
    void WillDelayed(string clientId, object connection, Message will, DateTimeOffset dueAt);
}
