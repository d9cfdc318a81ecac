using Midge.Core.Messages;
using Midge.Core.Routing;
using Midge.Core.Sessions;
using Midge.Protocol;

namespace Midge.Core;

public sealed partial class Broker
{
    [ThreadStatic] private static RouteScratch? t_scratch;

    /// <summary>
    /// Fans a message out: one lookup in the index, overlapping subscriptions of one session merged into one
    /// delivery at the highest QoS carrying every matching subscription identifier, and one member of each
    /// matching shared group chosen. No global lock; each delivery takes only that session's lock.
    /// </summary>
    private int Route(Message message)
    {
        var scratch = t_scratch ??= new RouteScratch();
        var visitor = new Collector(scratch);
        Subscriptions.Match(message.Topic, ref visitor);
        int matched = scratch.Matches.Count + scratch.Groups.Count;
        long now = NowMs;
        var config = Config;
        try
        {
            if (scratch.Matches.Count == 1)
            {
                var (session, sub) = scratch.Matches[0];
                if (!(sub.NoLocal && session.ClientId == message.OriginClientId))
                {
                    var qos = OutgoingQoS(message.QoS, sub.QoS, config.UpgradeOutgoingQoS);
                    session.Deliver(message, qos, sub.RetainAsPublished && message.Retain,
                        sub.SubscriptionId != 0 ? [sub.SubscriptionId] : null, now);
                }
            }
            else if (scratch.Matches.Count > 1)
            {
                if (config.OverlappingSubscriptions == Midge.Config.OverlappingSubscriptions.Merge)
                {
                    DeliverMerged(message, scratch, config.UpgradeOutgoingQoS, now);
                }
                else
                {
                    DeliverEach(message, scratch, config.UpgradeOutgoingQoS, now);
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

    /// <summary>overlapping_subscriptions per_subscription: one copy per matching subscription, as Mosquitto.</summary>
    private static void DeliverEach(Message message, RouteScratch scratch, bool upgrade, long now)
    {
        foreach (var (session, sub) in scratch.Matches)
        {
            if (sub.NoLocal && session.ClientId == message.OriginClientId) continue;
            session.Deliver(message, OutgoingQoS(message.QoS, sub.QoS, upgrade), sub.RetainAsPublished && message.Retain,
                sub.SubscriptionId != 0 ? [sub.SubscriptionId] : null, now);
        }
    }

    private static void DeliverMerged(Message message, RouteScratch scratch, bool upgrade, long now)
    {
        var merged = scratch.Merged;
        var index = scratch.Index;
        foreach (var (session, sub) in scratch.Matches)
        {
            if (sub.NoLocal && session.ClientId == message.OriginClientId) continue;
            var qos = OutgoingQoS(message.QoS, sub.QoS, upgrade);
            if (index.TryGetValue(session, out int at))
            {
                var m = merged[at];
                if (qos > m.QoS) m.QoS = qos;
                m.RetainAsPublished |= sub.RetainAsPublished;
                if (sub.SubscriptionId != 0) (m.Ids ??= []).Add(sub.SubscriptionId);
                merged[at] = m;
            }
            else
            {
                index[session] = merged.Count;
                merged.Add(new Merge
                {
                    Session = session,
                    QoS = qos,
                    RetainAsPublished = sub.RetainAsPublished,
                    Ids = sub.SubscriptionId != 0 ? [sub.SubscriptionId] : null,
                });
            }
        }
        foreach (var m in merged)
        {
            m.Session.Deliver(message, m.QoS, m.RetainAsPublished && message.Retain, m.Ids?.ToArray(), now);
        }
    }

    internal static QoS OutgoingQoS(QoS published, QoS granted, bool upgrade) =>
        upgrade ? granted : (published < granted ? published : granted);

    private struct Merge
    {
        public Session Session;
        public QoS QoS;
        public bool RetainAsPublished;
        public List<uint>? Ids;
    }

    private sealed class RouteScratch
    {
        public readonly List<(Session Session, Subscription Sub)> Matches = [];
        public readonly List<SharedGroup<Session, Subscription>> Groups = [];
        public readonly List<Merge> Merged = [];
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
