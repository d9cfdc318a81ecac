using System.Collections.Concurrent;
using Midge.Core.Routing;

namespace Midge.Core.Retained;

/// <summary>
/// Retained messages by topic: set, replace, clear, and match a subscription filter (wildcards included,
/// '$'-topics not matched by leading wildcards) without scanning every retained topic. Thread-safe.
/// </summary>
/// <remarks>
/// A topic tree (one node per level): <see cref="Set"/>, <see cref="Remove"/> and <see cref="TryGet"/> walk it level
/// by level without splitting the topic (the children are looked up by a span of it; a level string is made only for
/// a new node), and <see cref="Match"/> walks it for wildcards. There is no second index by whole topic: a million
/// retained messages (a restart restores them all) cost a tree node each and nothing more. Writers serialise on one
/// lock; readers take none (children live in <see cref="ConcurrentDictionary{TKey,TValue}"/>, messages in volatile
/// fields), so readers never block each other or writers.
/// </remarks>
public sealed class RetainedStore<TMessage> where TMessage : class
{
    private readonly object _gate = new();
    private readonly Node _root = new(null, "");
    private int _count;

    /// <summary>Stores or replaces the retained message of <paramref name="topic"/>; returns the one replaced.</summary>
    public TMessage? Set(string topic, TMessage message)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentNullException.ThrowIfNull(message);
        lock (_gate)
        {
            var node = Walk(topic, create: true)!;
            var previous = node.Message;
            if (previous is null) Volatile.Write(ref _count, _count + 1);
            node.Message = message;
            return previous;
        }
    }

    /// <summary>Removes the retained message of <paramref name="topic"/>; false if there was none.</summary>
    public bool Remove(string topic) => Remove(topic, out _);

    /// <summary>Removes the retained message of <paramref name="topic"/>, giving it back; false if there was none.</summary>
    public bool Remove(string topic, out TMessage? removed)
    {
        ArgumentNullException.ThrowIfNull(topic);
        lock (_gate)
        {
            removed = null;
            if (Walk(topic, create: false) is not { Message: { } message } node) return false;
            removed = message;
            node.Message = null;
            Volatile.Write(ref _count, _count - 1);
            // Prune empty nodes up towards the root.
            while (node.Parent is { } parent && node.IsEmpty)
            {
                parent.RemoveChild(node.Level);
                node = parent;
            }
            return true;
        }
    }

    public bool TryGet(string topic, out TMessage? message)
    {
        ArgumentNullException.ThrowIfNull(topic);
        message = Walk(topic, create: false)?.Message;
        return message is not null;
    }

    /// <summary>The node of <paramref name="topic"/> (it may hold no message); null when the tree has none, unless
    /// <paramref name="create"/> (writers only, under the lock) makes the missing levels.</summary>
    private Node? Walk(string topic, bool create)
    {
        Node? node = _root;
        int start = 0;
        while (true)
        {
            int end = topic.IndexOf('/', start);
            if (end < 0) end = topic.Length;
            var level = topic.AsSpan(start, end - start);
            node = node.GetChild(level) ?? (create ? node.AddChild(level.ToString()) : null);
            if (node is null || end == topic.Length) return node;
            start = end + 1;
        }
    }

    /// <summary>Appends every retained message whose topic matches <paramref name="filter"/>.</summary>
    public void Match(string filter, List<TMessage> results)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(results);
        if (!TopicLevels.HasWildcardLevel(filter))
        {
            if (TryGet(filter, out TMessage? exact)) results.Add(exact!);
            return;
        }

        string[] levels = TopicLevels.Split(filter);
        var pending = new Stack<(Node Node, int Depth)>();
        pending.Push((_root, 0));
        while (pending.Count > 0)
        {
            (Node node, int depth) = pending.Pop();
            if (depth == levels.Length)
            {
                if (node.Message is { } m) results.Add(m);
                continue;
            }

            string level = levels[depth];
            bool atRoot = depth == 0;
            if (level == "#")
            {
                // The parent level itself ("a/#" matches "a"), then the whole subtree.
                if (!atRoot && node.Message is { } parentMessage) results.Add(parentMessage);
                AddSubtree(node, atRoot, results);
            }
            else if (level == "+")
            {
                if (node.Children is not { } children) continue;
                foreach (KeyValuePair<string, Node> child in children.Map)
                {
                    if (atRoot && child.Key.StartsWith('$')) continue;
                    pending.Push((child.Value, depth + 1));
                }
            }
            else if (node.Children is { } children && children.Map.TryGetValue(level, out Node? next))
            {
                pending.Push((next, depth + 1));
            }
        }
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>Tree nodes below the root (for tests: 0 once every message is removed).</summary>
    internal int NodeCount
    {
        get
        {
            int n = -1;
            var stack = new Stack<Node>();
            stack.Push(_root);
            while (stack.Count > 0)
            {
                Node node = stack.Pop();
                n++;
                if (node.Children is { } c)
                    foreach (Node child in c.Map.Values) stack.Push(child);
            }
            return n;
        }
    }

    /// <summary>Every message strictly below <paramref name="start"/>; '$' first levels skipped at the root.</summary>
    private static void AddSubtree(Node start, bool atRoot, List<TMessage> results)
    {
        var stack = new Stack<Node>();
        if (start.Children is not { } top) return;
        foreach (KeyValuePair<string, Node> child in top.Map)
        {
            if (atRoot && child.Key.StartsWith('$')) continue;
            stack.Push(child.Value);
        }
        while (stack.Count > 0)
        {
            Node node = stack.Pop();
            if (node.Message is { } m) results.Add(m);
            if (node.Children is { } c)
                foreach (Node child in c.Map.Values) stack.Push(child);
        }
    }

    private sealed class Children
    {
        public readonly ConcurrentDictionary<string, Node> Map;

        /// <summary><see cref="Map"/> looked up by a span of a topic.</summary>
        public readonly ConcurrentDictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> ByLevel;

        public Children()
        {
            Map = new(StringComparer.Ordinal);
            ByLevel = Map.GetAlternateLookup<ReadOnlySpan<char>>();
        }
    }

    private sealed class Node(Node? parent, string level)
    {
        private volatile Children? _children;
        private volatile TMessage? _message;

        public Node? Parent { get; } = parent;
        public string Level { get; } = level;
        public Children? Children => _children;
        public TMessage? Message { get => _message; set => _message = value; }
        public bool IsEmpty => _message is null && _children is null;

        public Node? GetChild(ReadOnlySpan<char> level) =>
            _children is { } c && c.ByLevel.TryGetValue(level, out Node? n) ? n : null;

        public Node AddChild(string level)
        {
            var node = new Node(this, level);
            (_children ??= new Children()).Map[level] = node;
            return node;
        }

        public void RemoveChild(string level)
        {
            if (_children is not { } c) return;
            c.Map.TryRemove(level, out _);
            if (c.Map.IsEmpty) _children = null;
        }
    }
}
