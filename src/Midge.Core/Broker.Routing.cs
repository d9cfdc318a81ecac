using System.Runtime.InteropServices;
using Midge.Core.Messages;
using Midge.Core.Routing;
using Midge.Core.Sessions;

namespace Midge.Core;

public sealed partial class Broker
{
    [ThreadStatic] private static RouteScratch? t_scratch;

    /// <summary>
    /// Fans a message out: one lookup in the index, overlapping subscriptions of one session merged into one
    /// delivery at the highest QoS carrying every matching subscription identifier, and one member of each
    /// matching shared group chosen. What each receiver gets is decided by <see cref="DeliveryRule"/>. No global
    /// lock; each delivery takes only that session's lock. Nothing is allocated per delivery (see
    /// <see cref="Delivery.MergeWith"/> for the one exception).
    /// </summary>
    private int Route(Message message)
    {
        var scratch = t_scratch ??= new RouteScratch();
        var visitor = new Collector(scratch);
        Subscriptions.Match(message.Topic, ref visitor);
        var matches = scratch.Matches;
        int matched = matches.Count + scratch.Groups.Count;
        long now = NowMs;
        var config = Config;
        var rule = new DeliveryRule(message, config.UpgradeOutgoingQoS);
        try
        {
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
            foreach (var group in scratch.Groups) DeliverToGroup(message, group, now);
        }
        finally
        {
            scratch.Clear();
        }
        return matched;
    }

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
