using System.Collections.Concurrent;
using Midge.Config;
using Midge.Core.Messages;
using Midge.Core.Sessions;

namespace Midge.Core.Routing;

/// <summary>
/// Shared subscriptions that lose nothing: each message goes to exactly one member, chosen by the group's
/// strategy among the members that are online; with none online it waits in the group's own bounded queue
/// (not on an offline member); a member that leaves hands its unfinished messages back to the group; a member
/// that arrives drains the queue. The groups and their members live in the subscription index; this holds what
/// routing adds to them: the waiting queues and the sticky members.
/// </summary>
internal sealed class SharedGroups(Broker broker)
{
    private readonly ConcurrentDictionary<SharedGroup<Session, Subscription>, GroupState> _states = new();
    private int _waiting; // messages waiting in all groups, so a connect skips the walk when there are none

    /// <summary>Per group: its waiting messages and the sticky member.</summary>
    private sealed class GroupState
    {
        public readonly Queue<Message> Waiting = new();
        public Session? Sticky;
    }

    private GroupState StateOf(SharedGroup<Session, Subscription> group) =>
        _states.GetOrAdd(group, static _ => new GroupState());

    /// <summary>Delivers to one online member; returns false when none is online and the message was queued
    /// (or dropped at the group's limit), or, <paramref name="mayHandOff"/> and in a cluster, handed to another node
    /// holding the group (<see cref="IClusterRoute.HandOffShared"/>).</summary>
    public bool Deliver(Message message, SharedGroup<Session, Subscription> group, long now, Session? exclude = null, bool mayHandOff = false)
    {
        if (group.Members.Length == 0) return false;
        if (TryDeliverOnline(message, group, now, exclude)) return true;
        if (mayHandOff && broker.Router.Cluster is { } cluster && cluster.HandOffShared(message, group.Filter, group.Name)) return false;
        var state = StateOf(group);
        int limit = broker.Config.MaxQueuedMessages;
        lock (state)
        {
            if (limit > 0 && state.Waiting.Count >= limit)
            {
                broker.Dropped(null, message, $"shared group {group.Name} has no member online and its queue is full");
                return false;
            }
            state.Waiting.Enqueue(message);
            Interlocked.Increment(ref _waiting);
        }
        return false;
    }

    /// <summary>Delivers to one member online now (other than <paramref name="exclude"/>), by the group's strategy;
    /// false, and nothing queued, when none is.</summary>
    public bool TryDeliverOnline(Message message, SharedGroup<Session, Subscription> group, long now, Session? exclude = null)
    {
        var members = group.Members;
        if (members.Length == 0) return false;
        var config = broker.Config;
        var strategy = config.SharedGroupStrategies.TryGetValue(group.Name, out var s) ? s : config.SharedSubscriptionStrategy;
        int chosen = Choose(message, group, members, strategy, exclude);
        if (chosen < 0) return false;
        var (session, sub) = members[chosen];
        // No Local never holds one back: a shared subscription cannot have it (MQTT-3.8.3-4).
        if (new DeliveryRule(message, config.UpgradeOutgoingQoS).TryDecide(session, sub, out var delivery))
        {
            session.Deliver(message, delivery, now, group);
        }
        return true;
    }

    /// <summary>The index of the member to deliver to, or -1 when no member (other than
    /// <paramref name="exclude"/>) is online.</summary>
    private int Choose(Message message, SharedGroup<Session, Subscription> group, (Session Subscriber, Subscription Value)[] members,
        SharedSubscriptionStrategy strategy, Session? exclude)
    {
        int n = members.Length;
        int start;
        switch (strategy)
        {
            case SharedSubscriptionStrategy.Sticky:
            {
                var state = StateOf(group);
                var sticky = Volatile.Read(ref state.Sticky);
                if (sticky is not null && sticky != exclude && sticky.IsOnline)
                {
                    for (int i = 0; i < n; i++)
                    {
                        if (members[i].Subscriber == sticky) return i;
                    }
                }
                int picked = FirstOnline(members, group.NextIndex(), exclude);
                Volatile.Write(ref state.Sticky, picked >= 0 ? members[picked].Subscriber : null);
                return picked;
            }
            case SharedSubscriptionStrategy.Random:
                start = Random.Shared.Next(n);
                break;
            case SharedSubscriptionStrategy.HashClientId:
                start = StableHash(message.OriginClientId ?? "");
                break;
            case SharedSubscriptionStrategy.HashTopic:
                start = StableHash(message.Topic);
                break;
            default: // RoundRobin, and Local on a single node
                start = group.NextIndex();
                break;
        }
        return FirstOnline(members, start, exclude);
    }

    private static int FirstOnline((Session Subscriber, Subscription Value)[] members, int start, Session? exclude)
    {
        int n = members.Length;
        for (int i = 0; i < n; i++)
        {
            int at = (int)((uint)(start + i) % (uint)n);
            var member = members[at].Subscriber;
            if (member != exclude && member.IsOnline) return at;
        }
        return -1;
    }

    /// <summary>A hash that is the same in every process (string.GetHashCode is randomised per process).</summary>
    private static int StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return (int)(h & int.MaxValue);
    }

    /// <summary>A member's connection ended: its unfinished shared messages go to other members (in a cluster, on
    /// another node when none is online here), or wait.</summary>
    public void Requeue(Session session)
    {
        var taken = session.TakeSharedMessages();
        if (taken is null) return;
        long now = broker.NowMs;
        foreach (var (message, group) in taken)
        {
            if (message.IsExpired(now)) continue;
            Deliver(message, (SharedGroup<Session, Subscription>)group, now, exclude: session, mayHandOff: true);
        }
    }

    /// <summary>A member came online (connected, or subscribed): its groups' waiting messages go out.</summary>
    public void Drain(Session session)
    {
        if (Volatile.Read(ref _waiting) == 0) return;
        long now = broker.NowMs;
        foreach (var (group, state) in _states)
        {
            if (state.Waiting.Count == 0 || !IsMember(group, session)) continue;
            while (true)
            {
                Message? message;
                lock (state)
                {
                    if (!state.Waiting.TryDequeue(out message)) break;
                    Interlocked.Decrement(ref _waiting);
                }
                if (message.IsExpired(now)) continue;
                if (!Deliver(message, group, now)) break; // went back to the queue: nobody online after all
            }
        }
    }

    private static bool IsMember(SharedGroup<Session, Subscription> group, Session session)
    {
        foreach (var (member, _) in group.Members)
        {
            if (member == session) return true;
        }
        return false;
    }

    /// <summary>Messages waiting in shared groups with no member online.</summary>
    public int WaitingCount
    {
        get
        {
            int total = 0;
            foreach (var (_, state) in _states) // enumerating takes no snapshot (Values would copy)
            {
                lock (state) total += state.Waiting.Count;
            }
            return total;
        }
    }
}
