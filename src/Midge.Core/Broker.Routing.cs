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

    /// <summary>A member came online (connected, or subscribed): its groups' waiting messages go out.</summary>
    internal void DrainSharedQueues(Session session) => Router.SharedGroups.Drain(session);

    /// <summary>Messages waiting in shared groups with no member online.</summary>
    public int SharedWaitingCount => Router.SharedGroups.WaitingCount;
}
