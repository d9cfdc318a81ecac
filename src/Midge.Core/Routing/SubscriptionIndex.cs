namespace Midge.Core.Routing;

/// <summary>Receives the matches of <see cref="SubscriptionIndex{TKey,TValue}.Match"/>.</summary>
public interface ISubscriptionVisitor<TKey, TValue> where TKey : class
{
    /// <summary>A non-shared subscription whose filter matches. Called once per (subscriber, filter).</summary>
    void OnSubscription(TKey subscriber, string filter, TValue value);

    /// <summary>A shared group ($share/{group}/{filter} or $queue/{filter}) whose filter matches.</summary>
    void OnSharedGroup(SharedGroup<TKey, TValue> group);
}

/// <summary>
/// The subscription routing index: exact topics in a dictionary, wildcard filters in a trie, shared groups
/// beside them. Match is lock-free and safe to call concurrently with Subscribe/Unsubscribe (which serialise
/// among themselves). '$'-topics are not matched by filters starting with '+' or '#'.
/// </summary>
public sealed class SubscriptionIndex<TKey, TValue> where TKey : class
{
    /// <summary>Adds or replaces the subscription of <paramref name="subscriber"/> to <paramref name="filter"/>
    /// (a shared filter such as "$share/g/a/+" joins group g). Returns true if it did not exist before.</summary>
    public bool Subscribe(string filter, TKey subscriber, TValue value) => throw new NotImplementedException();

    /// <summary>Removes it; returns false if there was none.</summary>
    public bool Unsubscribe(string filter, TKey subscriber) => throw new NotImplementedException();

    /// <summary>Visits every subscription and shared group matching <paramref name="topic"/>.</summary>
    public void Match<TVisitor>(string topic, ref TVisitor visitor) where TVisitor : struct, ISubscriptionVisitor<TKey, TValue> =>
        throw new NotImplementedException();

    /// <summary>Number of (subscriber, filter) subscriptions, shared memberships included.</summary>
    public int Count => throw new NotImplementedException();
}

/// <summary>A shared subscription group: one filter, several members; each message goes to one member.</summary>
public sealed class SharedGroup<TKey, TValue> where TKey : class
{
    public SharedGroup(string name, string filter)
    {
        Name = name;
        Filter = filter;
    }

    /// <summary>Group name ("" for $queue).</summary>
    public string Name { get; }

    /// <summary>The topic filter without the $share/{group}/ prefix.</summary>
    public string Filter { get; }

    /// <summary>A snapshot of the members (copy-on-write; safe to enumerate while others change it).</summary>
    public (TKey Subscriber, TValue Value)[] Members => throw new NotImplementedException();

    /// <summary>A counter for round-robin selection (thread-safe increment).</summary>
    public int NextIndex() => throw new NotImplementedException();
}
