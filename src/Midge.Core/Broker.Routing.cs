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
                DeliverMerged(message, scratch, config.UpgradeOutgoingQoS, now);
            }
            foreach (var group in scratch.Groups) DeliverToGroup(message, group, config.UpgradeOutgoingQoS, now);
        }
        finally
        {
            scratch.Clear();
        }
        return matched;
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

    /// <summary>Round robin over the group's online members; a group with none online queues on one of them.</summary>
    private static void DeliverToGroup(Message message, SharedGroup<Session, Subscription> group, bool upgrade, long now)
    {
        var members = group.Members;
        if (members.Length == 0) return;
        int start = group.NextIndex();
        var chosen = members[(int)((uint)start % (uint)members.Length)];
        for (int i = 0; i < members.Length; i++)
        {
            var candidate = members[(int)((uint)(start + i) % (uint)members.Length)];
            if (candidate.Subscriber.IsOnline)
            {
                chosen = candidate;
                break;
            }
        }
        var sub = chosen.Value;
        var qos = OutgoingQoS(message.QoS, sub.QoS, upgrade);
        chosen.Subscriber.Deliver(message, qos, sub.RetainAsPublished && message.Retain,
            sub.SubscriptionId != 0 ? [sub.SubscriptionId] : null, now);
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
