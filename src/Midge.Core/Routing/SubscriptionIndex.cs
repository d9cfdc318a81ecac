using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

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
/// <remarks>
/// Readers never lock and never allocate: every structure a reader touches is either a
/// <see cref="ConcurrentDictionary{TKey,TValue}"/> (lock-free reads, looked up per level by
/// <see cref="ReadOnlySpan{T}"/> through an alternate lookup) or an immutable array replaced as a whole
/// (copy-on-write) and published with a volatile write. Writers serialise on one lock.
/// </remarks>
public sealed class SubscriptionIndex<TKey, TValue> where TKey : class
{
    private readonly object _gate = new();
    private readonly ConcurrentDictionary<string, Leaf> _exact = new(StringComparer.Ordinal);
    private readonly Node _root = new();
    private int _count;
    private int _wildcardLeaves;
    private Action<string, string?, bool>? _filterWatcher;

    /// <summary>
    /// Calls <paramref name="watcher"/> with (filter, null, true) for every filter that has plain subscribers now and
    /// (filter, group, true) for every shared group, then each time a filter gains its first plain subscriber or a
    /// shared group is made, and with false when a filter loses its last plain subscriber or a group its last member,
    /// for as long as the index lives (one watcher). A filter's plain subscribers and its groups are told apart: a
    /// cluster node subscribes to each in its own way. Every call happens under the writers' lock, so the calls are in
    /// the order of the changes, and the watcher must be quick and must not call back into the index.
    /// </summary>
    public void WatchFilters(Action<string, string?, bool> watcher)
    {
        ArgumentNullException.ThrowIfNull(watcher);
        lock (_gate)
        {
            if (_filterWatcher is not null) throw new InvalidOperationException("the index already has a filter watcher");
            _filterWatcher = watcher;
            foreach (var leaf in _exact.Values) Announce(leaf, watcher);
            var stack = new Stack<Node>();
            stack.Push(_root);
            while (stack.Count > 0)
            {
                Node node = stack.Pop();
                if (node.Leaf is { } leaf) Announce(leaf, watcher);
                if (node.Plus is { } plus) stack.Push(plus);
                if (node.Hash is { } hash) stack.Push(hash);
                if (node.Children is { } children)
                {
                    foreach (Node child in children.Map.Values) stack.Push(child);
                }
            }
        }

        static void Announce(Leaf leaf, Action<string, string?, bool> watcher)
        {
            if (leaf.Subscribers.Length > 0) watcher(leaf.Filter, null, true);
            foreach (var group in leaf.Groups) watcher(leaf.Filter, group.Name, true);
        }
    }

    /// <summary>The shared group <paramref name="name"/> of <paramref name="filter"/> (the filter without its
    /// <c>$share/{group}/</c>), or null. Lock-free, like <see cref="Match"/>.</summary>
    public SharedGroup<TKey, TValue>? FindGroup(string filter, string name)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (!TopicLevels.HasWildcardLevel(filter)) return _exact.TryGetValue(filter, out Leaf? exact) ? exact.FindGroup(name) : null;
        Node? node = _root;
        foreach (string level in TopicLevels.Split(filter))
        {
            node = node.GetChild(level);
            if (node is null) return null;
        }
        return node.Leaf?.FindGroup(name);
    }

    /// <summary>Adds or replaces the subscription of <paramref name="subscriber"/> to <paramref name="filter"/>
    /// (a shared filter such as "$share/g/a/+" joins group g). Returns true if it did not exist before.</summary>
    public bool Subscribe(string filter, TKey subscriber, TValue value)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(subscriber);
        bool shared = Midge.Protocol.Topics.TryParseShared(filter, out string groupName, out string inner);
        string target = shared ? inner : filter;
        lock (_gate)
        {
            Leaf leaf = GetOrCreateLeaf(target, out _);
            bool added;
            if (shared)
            {
                SharedGroup<TKey, TValue>? group = leaf.FindGroup(groupName);
                if (group is null)
                {
                    group = new SharedGroup<TKey, TValue>(groupName, target);
                    group.AddOrReplace(subscriber, value);
                    leaf.AddGroup(group);
                    added = true;
                    _filterWatcher?.Invoke(target, groupName, true);
                }
                else
                {
                    added = group.AddOrReplace(subscriber, value);
                }
            }
            else
            {
                added = leaf.AddOrReplace(subscriber, value);
                if (added && leaf.Subscribers.Length == 1) _filterWatcher?.Invoke(target, null, true);
            }
            if (added) Volatile.Write(ref _count, _count + 1);
            return added;
        }
    }

    /// <summary>Removes it; returns false if there was none.</summary>
    public bool Unsubscribe(string filter, TKey subscriber)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(subscriber);
        bool shared = Midge.Protocol.Topics.TryParseShared(filter, out string groupName, out string inner);
        string target = shared ? inner : filter;
        lock (_gate)
        {
            bool wildcard = TopicLevels.HasWildcardLevel(target);
            List<(Node Parent, Node Child, string Level)>? path = null;
            Leaf? leaf;
            if (!wildcard)
            {
                if (!_exact.TryGetValue(target, out leaf)) return false;
            }
            else
            {
                path = new List<(Node, Node, string)>();
                Node node = _root;
                foreach (string level in TopicLevels.Split(target))
                {
                    Node? next = node.GetChild(level);
                    if (next is null) return false;
                    path.Add((node, next, level));
                    node = next;
                }
                leaf = node.Leaf;
                if (leaf is null) return false;
            }

            if (shared)
            {
                SharedGroup<TKey, TValue>? group = leaf.FindGroup(groupName);
                if (group is null || !group.Remove(subscriber)) return false;
                if (group.Members.Length == 0)
                {
                    leaf.RemoveGroup(group);
                    _filterWatcher?.Invoke(target, groupName, false);
                }
            }
            else if (!leaf.Remove(subscriber))
            {
                return false;
            }
            else if (leaf.Subscribers.Length == 0)
            {
                _filterWatcher?.Invoke(target, null, false);
            }
            Volatile.Write(ref _count, _count - 1);

            if (leaf.IsEmpty)
            {
                if (!wildcard)
                {
                    _exact.TryRemove(target, out _);
                }
                else
                {
                    path![^1].Child.Leaf = null;
                    Volatile.Write(ref _wildcardLeaves, _wildcardLeaves - 1);
                    Prune(path);
                }
            }
            return true;
        }
    }

    /// <summary>Visits every subscription and shared group matching <paramref name="topic"/>.</summary>
    public void Match<TVisitor>(string topic, ref TVisitor visitor) where TVisitor : struct, ISubscriptionVisitor<TKey, TValue>
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (!_exact.IsEmpty && _exact.TryGetValue(topic, out Leaf? leaf))
            Visit(leaf, ref visitor);
        if (Volatile.Read(ref _wildcardLeaves) != 0)
            MatchTrie(_root, topic, 0, topic.Length > 0 && topic[0] == '$', 0, ref visitor);
    }

    /// <summary>Number of (subscriber, filter) subscriptions, shared memberships included.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Trie nodes below the root (for tests: 0 once everything is unsubscribed).</summary>
    internal int TrieNodeCount
    {
        get
        {
            lock (_gate) return _root.CountDescendants();
        }
    }

    /// <summary>Distinct exact filters held in the exact-topic dictionary.</summary>
    internal int ExactFilterCount => _exact.Count;

    private static void MatchTrie<TVisitor>(Node node, string topic, int start, bool dollar, int depth, ref TVisitor visitor)
        where TVisitor : struct, ISubscriptionVisitor<TKey, TValue>
    {
        // start: index where the current level begins; start > topic.Length means every level is consumed.
        while (true)
        {
            Node? hash = node.Hash;
            if (start > topic.Length)
            {
                Leaf? here = node.Leaf;
                if (here is not null) Visit(here, ref visitor);
                // "a/#" also matches "a" (the parent level).
                if (hash?.Leaf is { } parentLevel) Visit(parentLevel, ref visitor);
                return;
            }

            int end = topic.IndexOf('/', start);
            if (end < 0) end = topic.Length;

            if (!dollar)
            {
                if (hash?.Leaf is { } rest) Visit(rest, ref visitor);
                Node? plus = node.Plus;
                if (plus is not null)
                {
                    // Recursion depth is bounded by the number of '+' levels in subscribed filters; fail with a
                    // catchable exception rather than overflow the stack on an absurd filter.
                    if (++depth > 64) RuntimeHelpers.EnsureSufficientExecutionStack();
                    MatchTrie(plus, topic, end + 1, false, depth, ref visitor);
                }
            }
            dollar = false;

            Children? children = node.Children;
            if (children is null || !children.Lookup.TryGetValue(topic.AsSpan(start, end - start), out Node? child))
                return;
            node = child;
            start = end + 1;
        }
    }

    private static void Visit<TVisitor>(Leaf leaf, ref TVisitor visitor) where TVisitor : struct, ISubscriptionVisitor<TKey, TValue>
    {
        (TKey Subscriber, TValue Value)[] subs = leaf.Subscribers;
        string filter = leaf.Filter;
        for (int i = 0; i < subs.Length; i++)
            visitor.OnSubscription(subs[i].Subscriber, filter, subs[i].Value);
        SharedGroup<TKey, TValue>[] groups = leaf.Groups;
        for (int i = 0; i < groups.Length; i++)
            visitor.OnSharedGroup(groups[i]);
    }

    private Leaf GetOrCreateLeaf(string filter, out bool created)
    {
        created = false;
        if (!TopicLevels.HasWildcardLevel(filter))
        {
            if (!_exact.TryGetValue(filter, out Leaf? leaf))
            {
                leaf = new Leaf(filter);
                _exact[filter] = leaf;
                created = true;
            }
            return leaf;
        }

        Node node = _root;
        foreach (string level in TopicLevels.Split(filter))
            node = node.GetChild(level) ?? node.AddChild(level);
        if (node.Leaf is null)
        {
            node.Leaf = new Leaf(filter);
            Volatile.Write(ref _wildcardLeaves, _wildcardLeaves + 1);
            created = true;
        }
        return node.Leaf;
    }

    private static void Prune(List<(Node Parent, Node Child, string Level)> path)
    {
        for (int i = path.Count - 1; i >= 0; i--)
        {
            (Node parent, Node child, string level) = path[i];
            if (!child.IsEmpty) return;
            parent.RemoveChild(level);
        }
    }

    /// <summary>The subscriptions of one filter: plain subscribers and shared groups, each a copy-on-write array.</summary>
    private sealed class Leaf(string filter)
    {
        private (TKey Subscriber, TValue Value)[] _subscribers = [];
        private volatile SharedGroup<TKey, TValue>[] _groups = [];

        public string Filter { get; } = filter;
        public (TKey Subscriber, TValue Value)[] Subscribers => Volatile.Read(ref _subscribers);
        public SharedGroup<TKey, TValue>[] Groups => _groups;
        public bool IsEmpty => Subscribers.Length == 0 && _groups.Length == 0;

        public bool AddOrReplace(TKey subscriber, TValue value) => CopyOnWrite.AddOrReplace(ref _subscribers, subscriber, value);

        public bool Remove(TKey subscriber) => CopyOnWrite.Remove(ref _subscribers, subscriber);

        public SharedGroup<TKey, TValue>? FindGroup(string name)
        {
            foreach (SharedGroup<TKey, TValue> group in _groups)
                if (string.Equals(group.Name, name, StringComparison.Ordinal)) return group;
            return null;
        }

        public void AddGroup(SharedGroup<TKey, TValue> group)
        {
            SharedGroup<TKey, TValue>[] old = _groups;
            var copy = new SharedGroup<TKey, TValue>[old.Length + 1];
            old.CopyTo(copy, 0);
            copy[^1] = group;
            _groups = copy;
        }

        public void RemoveGroup(SharedGroup<TKey, TValue> group)
        {
            SharedGroup<TKey, TValue>[] old = _groups;
            int index = Array.IndexOf(old, group);
            if (index < 0) return;
            var copy = new SharedGroup<TKey, TValue>[old.Length - 1];
            Array.Copy(old, 0, copy, 0, index);
            Array.Copy(old, index + 1, copy, index, old.Length - index - 1);
            _groups = copy;
        }
    }

    /// <summary>A node's named children with a span-keyed view for allocation-free lookups; published whole.</summary>
    private sealed class Children
    {
        public readonly ConcurrentDictionary<string, Node> Map = new(StringComparer.Ordinal);
        public readonly ConcurrentDictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> Lookup;

        public Children() => Lookup = Map.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>One level of the wildcard trie.</summary>
    private sealed class Node
    {
        private volatile Children? _children;
        private volatile Node? _plus;
        private volatile Node? _hash;
        private volatile Leaf? _leaf;

        public Children? Children => _children;
        public Node? Plus => _plus;
        public Node? Hash => _hash;
        public Leaf? Leaf { get => _leaf; set => _leaf = value; }

        public bool IsEmpty => _leaf is null && _plus is null && _hash is null && _children is null;

        public Node? GetChild(string level) => level switch
        {
            "+" => _plus,
            "#" => _hash,
            _ => _children is { } c && c.Map.TryGetValue(level, out Node? n) ? n : null,
        };

        public Node AddChild(string level)
        {
            var node = new Node();
            switch (level)
            {
                case "+": _plus = node; break;
                case "#": _hash = node; break;
                default:
                    (_children ??= new Children()).Map[level] = node;
                    break;
            }
            return node;
        }

        public void RemoveChild(string level)
        {
            switch (level)
            {
                case "+": _plus = null; break;
                case "#": _hash = null; break;
                default:
                    Children? c = _children;
                    if (c is null) return;
                    c.Map.TryRemove(level, out _);
                    if (c.Map.IsEmpty) _children = null;
                    break;
            }
        }

        public int CountDescendants()
        {
            int n = 0;
            var stack = new Stack<Node>();
            stack.Push(this);
            while (stack.Count > 0)
            {
                Node node = stack.Pop();
                if (node._plus is { } p) { n++; stack.Push(p); }
                if (node._hash is { } h) { n++; stack.Push(h); }
                if (node._children is { } c)
                {
                    foreach (Node child in c.Map.Values) { n++; stack.Push(child); }
                }
            }
            return n;
        }
    }
}

/// <summary>A shared subscription group: one filter, several members; each message goes to one member.</summary>
public sealed class SharedGroup<TKey, TValue> where TKey : class
{
    private (TKey Subscriber, TValue Value)[] _members = [];
    private uint _next = uint.MaxValue;

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
    public (TKey Subscriber, TValue Value)[] Members => Volatile.Read(ref _members);

    /// <summary>A counter for round-robin selection (thread-safe increment).</summary>
    /// <remarks>Returns 0, 1, 2, ... and wraps to 0 after <see cref="int.MaxValue"/>; never negative, so
    /// <c>NextIndex() % Members.Length</c> is a valid index.</remarks>
    public int NextIndex() => (int)(Interlocked.Increment(ref _next) & int.MaxValue);

    /// <summary>Adds or replaces a member; true if it was not a member. Callers serialise writes.</summary>
    internal bool AddOrReplace(TKey subscriber, TValue value) => CopyOnWrite.AddOrReplace(ref _members, subscriber, value);

    /// <summary>Removes a member; false if it was not one. Callers serialise writes.</summary>
    internal bool Remove(TKey subscriber) => CopyOnWrite.Remove(ref _members, subscriber);
}

/// <summary>Copy-on-write updates of (subscriber, value) arrays; readers see either the old or the new array.</summary>
internal static class CopyOnWrite
{
    public static bool AddOrReplace<TKey, TValue>(ref (TKey Subscriber, TValue Value)[] array, TKey subscriber, TValue value)
        where TKey : class
    {
        (TKey Subscriber, TValue Value)[] old = Volatile.Read(ref array);
        int index = IndexOf(old, subscriber);
        var copy = new (TKey, TValue)[index >= 0 ? old.Length : old.Length + 1];
        old.CopyTo(copy, 0);
        copy[index >= 0 ? index : old.Length] = (subscriber, value);
        Volatile.Write(ref array, copy);
        return index < 0;
    }

    public static bool Remove<TKey, TValue>(ref (TKey Subscriber, TValue Value)[] array, TKey subscriber)
        where TKey : class
    {
        (TKey Subscriber, TValue Value)[] old = Volatile.Read(ref array);
        int index = IndexOf(old, subscriber);
        if (index < 0) return false;
        if (old.Length == 1)
        {
            Volatile.Write(ref array, []);
            return true;
        }
        var copy = new (TKey, TValue)[old.Length - 1];
        Array.Copy(old, 0, copy, 0, index);
        Array.Copy(old, index + 1, copy, index, old.Length - index - 1);
        Volatile.Write(ref array, copy);
        return true;
    }

    private static int IndexOf<TKey, TValue>((TKey Subscriber, TValue Value)[] array, TKey subscriber) where TKey : class
    {
        EqualityComparer<TKey> comparer = EqualityComparer<TKey>.Default;
        for (int i = 0; i < array.Length; i++)
            if (comparer.Equals(array[i].Subscriber, subscriber)) return i;
        return -1;
    }
}
