using Midge.Core.Messages;

namespace Midge.Core.Routing;

/// <summary>
/// The cluster's side of routing (docs/cluster.md): set as <see cref="Router.Cluster"/> by a node of a cluster; null
/// on a broker that runs alone.
/// </summary>
/// <remarks>
/// Every message the broker routes from its own publishers goes to <see cref="Deliver"/> once, after this node's
/// subscribers had theirs. Shared groups are the cluster's: while <see cref="TakesSharedGroups"/> says so, the router
/// leaves this node's groups out and the cluster hands the message to one node holding each group, which delivers it
/// to one of its members (<see cref="Broker.SharedFromCluster"/>); otherwise (the cluster unreachable) this node's
/// groups have it here, and the cluster must not give it to any group again.
/// </remarks>
public interface IClusterRoute
{
    /// <summary>Whether the cluster chooses the member of each shared group for <paramref name="message"/>, this node's
    /// groups included. Asked once per routed message that matched a shared group here, on the publisher's thread:
    /// quick, never blocking.</summary>
    bool TakesSharedGroups(Message message);

    /// <summary>Takes one routed message, after this node's subscribers had theirs, on the publisher's thread: must
    /// neither block nor throw (see <see cref="IRouteDestination.Deliver"/>). <paramref name="groupsServed"/>: shared
    /// groups of this node matched it and had it here (<see cref="TakesSharedGroups"/> said no), so no node's group may
    /// have it again.</summary>
    void Deliver(Message message, bool groupsServed);

    /// <summary>A message for this node's shared group <paramref name="group"/> of <paramref name="filter"/> that has
    /// no member online here (the member it was with went away, or the cluster chose this node): true when the cluster
    /// takes it, to give it to another node holding the group (and back to this node's group, through
    /// <see cref="Broker.SharedFromCluster"/>, when no other node takes it); false when it cannot (unreachable, too
    /// many waiting): the group's queue here keeps it. Quick, never blocking.</summary>
    bool HandOffShared(Message message, string filter, string group);

    /// <summary>A member of this node's shared group <paramref name="group"/> of <paramref name="filter"/> came online
    /// (connected, or subscribed): the cluster gives it what waits for the group in the cluster's own queue. Quick,
    /// never blocking.</summary>
    void SharedMemberOnline(string filter, string group);

    /// <summary>
    /// Completes once the filters that the subscriptions just made on this thread added to the routing index are
    /// subscribed in the cluster, so that a message published on any node from then on reaches them: at once when they
    /// added none (a filter this node already has in the cluster costs nothing) or the cluster is unreachable, and
    /// within a bounded wait otherwise. Called by a SUBSCRIBE on its thread right after its filters went into the index,
    /// before its SUBACK; <paramref name="allChanges"/>: the SUBSCRIBE awaited between its filters (on more than one
    /// thread), so it waits for every change made so far, whatever thread made it.
    /// </summary>
    ValueTask SubscribedAsync(bool allChanges = false);

    /// <summary>
    /// Claims <c>$exclusive/</c><paramref name="filter"/> for <paramref name="clientId"/> across the cluster: true when
    /// the client holds it now (no client held it, or this client id did, on any node), false when another client
    /// holds it on some node; true, logged, when the cluster cannot answer in a bounded time (this node decides alone).
    /// </summary>
    ValueTask<bool> ClaimExclusiveAsync(string filter, string clientId);

    /// <summary>Gives up this node's cluster-wide claim of <paramref name="filter"/> for <paramref name="clientId"/>, if it
    /// holds one (in the background: quick, never blocking).</summary>
    void ReleaseExclusive(string filter, string clientId);
}
