using System.Runtime.InteropServices;
using Midge.Core.Messages;
using Midge.Core.Sessions;

namespace Midge.Core.Routing;

/// <summary>
/// Where routed messages go besides the local sessions: a bridge to another broker, a link to another node of a
/// cluster. Added with <see cref="Router.AddDestination"/>, it receives every message the broker routes, once.
/// </summary>
public interface IRouteDestination
{
    /// <summary>
    /// Takes one routed message, after the local subscribers had theirs, on the publisher's thread (a connection's
    /// read loop, the housekeeping tick): it must neither block nor throw. A destination with filters of its own
    /// applies them here and queues what it forwards. The message is immutable and may be kept. Messages the
    /// destination published into the broker itself come back here too; it knows them by their origin
    /// (<see cref="Message.OriginClientId"/>).
    /// </summary>
    void Deliver(Message message);
}

/// <summary>
/// Fans a message out: one lookup in the subscription index collects the matching subscriptions of local sessions
/// and the matching shared groups; the subscriptions of one session that overlap are merged into one delivery
/// (overlapping_subscriptions merge) or each delivered (per_subscription); one member of each shared group is
/// chosen (<see cref="Routing.SharedGroups"/>); then every destination gets the message. What each receiver gets is
/// decided by <see cref="DeliveryRule"/>, the one place that decides it.
/// </summary>
/// <remarks>
/// No global lock: each delivery takes only the receiving session's lock. Nothing is allocated per message or per
/// delivery: the lists a routing needs are reused per thread, and a subscription's identifier array is made once,
/// when it subscribes; only a merged delivery that carries two identifiers or more makes an array for them.
/// </remarks>
public sealed class Router
{
    [ThreadStatic] private static RouteScratch? t_scratch;

    private readonly Broker _broker;
    private readonly object _destinationsLock = new();
    private IRouteDestination[] _destinations = [];

    internal Router(Broker broker)
    {
        _broker = broker;
        SharedGroups = new SharedGroups(broker);
    }

    /// <summary>Subscriptions of local sessions, and shared groups, by filter.</summary>
    internal SubscriptionIndex<Session, Subscription> Subscriptions { get; } = new();

    /// <summary>The waiting queues and chosen members of shared groups.</summary>
    internal SharedGroups SharedGroups { get; }

    /// <summary>The cluster this broker is a node of (docs/cluster.md); null when it runs alone.</summary>
    public IClusterRoute? Cluster { get; set; }

    /// <summary>Routes every message from now on to <paramref name="destination"/> too (once, however many are
    /// added).</summary>
    public void AddDestination(IRouteDestination destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        lock (_destinationsLock)
        {
            if (Array.IndexOf(_destinations, destination) >= 0) return;
            Volatile.Write(ref _destinations, [.. _destinations, destination]);
        }
    }

    /// <summary>Stops routing to <paramref name="destination"/>; false when it was not a destination. A routing
    /// already under way may still deliver one message to it.</summary>
    public bool RemoveDestination(IRouteDestination destination)
    {
        lock (_destinationsLock)
        {
            int at = Array.IndexOf(_destinations, destination);
            if (at < 0) return false;
            var copy = new IRouteDestination[_destinations.Length - 1];
            Array.Copy(_destinations, 0, copy, 0, at);
            Array.Copy(_destinations, at + 1, copy, at, copy.Length - at);
            Volatile.Write(ref _destinations, copy);
            return true;
        }
    }

    /// <summary>
    /// Calls <paramref name="watcher"/> with <c>true</c> for every filter this broker's plain subscriptions hold now
    /// (group null) and every shared group (its name), then whenever a filter gains its first plain subscriber or a
    /// group is made (<c>true</c>), or a filter loses its last plain subscriber or a group its last member
    /// (<c>false</c>), in order: what a cluster node subscribes to on its clients' behalf. The watcher runs under the
    /// index's lock, on the subscribing thread: it must be quick, must not block, and must not subscribe.
    /// </summary>
    public void WatchFilters(Action<string, string?, bool> watcher) => Subscriptions.WatchFilters(watcher);

    /// <summary>Routes <paramref name="message"/> to every matching subscriber and shared group, every destination and
    /// the cluster; or, <paramref name="fromCluster"/>, a message another node published, to the plain subscriptions
    /// only (its shared groups come through <see cref="DeliverToSharedGroup"/>). In a cluster the shared groups are left
    /// to it while it takes them (<see cref="IClusterRoute.TakesSharedGroups"/>). Returns how many subscriptions or
    /// shared groups it matched.</summary>
    internal int Route(Message message, bool fromCluster = false)
    {
        var cluster = fromCluster ? null : Cluster;
        bool groupsServed = false;
        // Taken out of its slot while in use: a delivery may route another message on this thread (the log line of a
        // dropped message published to $SYS/broker/log), which must not reuse the lists this routing walks.
        var scratch = t_scratch ?? new RouteScratch();
        t_scratch = null;
        int matched;
        try
        {
            var visitor = new Collector(scratch);
            Subscriptions.Match(message.Topic, ref visitor);
            var matches = scratch.Matches;
            matched = matches.Count + scratch.Groups.Count;
            long now = _broker.NowMs;
            var config = _broker.Config;
            var rule = new DeliveryRule(message, config.UpgradeOutgoingQoS);
            if (matches.Count > 1 && config.OverlappingSubscriptions == Midge.Config.OverlappingSubscriptions.Merge)
            {
                DeliverMerged(message, scratch, rule, now);
            }
            else
            {
                // One match; or per_subscription: one copy per matching subscription, as Mosquitto.
                foreach (var (session, sub) in matches)
                {
                    if (rule.TryDecide(session, sub, out var delivery)) session.Deliver(message, delivery, now);
                }
            }
            if (scratch.Groups.Count > 0 && !fromCluster && (cluster is null || !cluster.TakesSharedGroups(message)))
            {
                foreach (var group in scratch.Groups) SharedGroups.Deliver(message, group, now);
                groupsServed = true;
            }
        }
        finally
        {
            scratch.Clear();
            t_scratch = scratch;
        }
        if (!fromCluster)
        {
            foreach (var destination in Volatile.Read(ref _destinations)) destination.Deliver(message);
            cluster?.Deliver(message, groupsServed);
        }
        return matched;
    }

    /// <summary>A message for this node's shared group <paramref name="name"/> of <paramref name="filter"/>, which the
    /// cluster chose: to one of its members, or (<paramref name="mayHandOff"/>) another node's, or its queue. False
    /// when this node has no such group (any more).</summary>
    internal bool DeliverToSharedGroup(Message message, string filter, string name, bool mayHandOff)
    {
        if (Subscriptions.FindGroup(filter, name) is not { } group) return false;
        SharedGroups.Deliver(message, group, _broker.NowMs, mayHandOff: mayHandOff);
        return true;
    }

    /// <summary>Delivers to one member of the group online now; false (nothing queued) when it has none, or is not here.</summary>
    internal bool DeliverToOnlineMember(Message message, string filter, string name) =>
        Subscriptions.FindGroup(filter, name) is { } group && SharedGroups.TryDeliverOnline(message, group, _broker.NowMs);

    internal bool HasOnlineMember(string filter, string name) =>
        Subscriptions.FindGroup(filter, name) is { } group && group.Members.Any(m => m.Subscriber.IsOnline);

    /// <summary>One delivery per session, at the highest QoS of its matching subscriptions and carrying every
    /// matching subscription identifier (MQTT 5 section 3.3.4).</summary>
    private static void DeliverMerged(Message message, RouteScratch scratch, in DeliveryRule rule, long now)
    {
        var merged = scratch.Merged;
        foreach (var (session, sub) in scratch.Matches)
        {
            if (!rule.TryDecide(session, sub, out var delivery)) continue;
            ref int at = ref CollectionsMarshal.GetValueRefOrAddDefault(scratch.Index, session, out bool seen);
            if (seen)
            {
                ref var entry = ref CollectionsMarshal.AsSpan(merged)[at];
                entry.Delivery = entry.Delivery.MergeWith(delivery);
            }
            else
            {
                at = merged.Count;
                merged.Add((session, delivery));
            }
        }
        foreach (var (session, delivery) in merged) session.Deliver(message, delivery, now);
    }

    /// <summary>What one routing collects, kept per thread so routing allocates nothing.</summary>
    private sealed class RouteScratch
    {
        public readonly List<(Session Session, Subscription Sub)> Matches = [];
        public readonly List<SharedGroup<Session, Subscription>> Groups = [];
        public readonly List<(Session Session, Delivery Delivery)> Merged = [];
        public readonly Dictionary<Session, int> Index = new(ReferenceEqualityComparer.Instance);

        public void Clear()
        {
            Matches.Clear();
            Groups.Clear();
            if (Merged.Count > 0)
            {
                Merged.Clear();
                Index.Clear();
            }
        }
    }

    private readonly struct Collector(RouteScratch scratch) : ISubscriptionVisitor<Session, Subscription>
    {
        public void OnSubscription(Session subscriber, string filter, Subscription value) => scratch.Matches.Add((subscriber, value));

        public void OnSharedGroup(SharedGroup<Session, Subscription> group) => scratch.Groups.Add(group);
    }
}
