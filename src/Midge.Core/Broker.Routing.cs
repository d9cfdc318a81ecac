using Midge.Core.Routing;
using Midge.Core.Sessions;

namespace Midge.Core;

public sealed partial class Broker
{
    /// <summary>Routing: the subscription index, shared groups, and the destinations messages go to besides local
    /// sessions (<see cref="Router.AddDestination"/>: bridges, cluster links).</summary>
    public Router Router { get; }

    /// <summary>A member's connection ended: its unfinished shared messages go to other members, or wait.</summary>
    internal void RequeueSharedMessages(Session session) => Router.SharedGroups.Requeue(session);

    /// <summary>A member came online (connected, or subscribed): its groups' waiting messages go out, here and, in a
    /// cluster, those waiting in the cluster's queue of each of its groups (<see cref="IClusterRoute.SharedMemberOnline"/>).</summary>
    internal void DrainSharedQueues(Session session)
    {
        Router.SharedGroups.Drain(session);
        if (Router.Cluster is not { } cluster) return;
        List<(string Filter, string Group)>? groups = null;
        lock (session.Sync)
        {
            if (session.Subscriptions is not { } subscriptions) return;
            foreach (var filter in subscriptions.Keys)
            {
                if (Midge.Protocol.Topics.TryParseShared(filter, out var group, out var inner)) (groups ??= []).Add((inner, group));
            }
        }
        if (groups is null) return;
        foreach (var (filter, group) in groups) cluster.SharedMemberOnline(filter, group);
    }

    /// <summary>Messages waiting in shared groups with no member online.</summary>
    public int SharedWaitingCount => Router.SharedGroups.WaitingCount;
}
