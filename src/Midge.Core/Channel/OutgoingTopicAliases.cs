using Midge.Protocol;

namespace Midge.Core.Channel;

/// <summary>
/// Topic aliases the broker assigns on PUBLISHes to one MQTT 5 connection (section 3.3.2.3.4): a topic seen
/// before goes out as its alias with an empty topic name; a new topic takes a free alias, or the least recently
/// used one, and goes out with both. Used only by the connection's single writer, in the order packets are
/// written, so it needs no lock.
/// </summary>
public sealed class OutgoingTopicAliases
{
    private readonly int _maximum;
    private readonly Dictionary<string, LinkedListNode<Entry>> _byTopic = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LinkedListNode<Entry>>.AlternateLookup<ReadOnlySpan<char>> _byTopicSpan;
    private readonly LinkedList<Entry> _recency = new(); // most recently used first

    public OutgoingTopicAliases(int maximum)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maximum, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maximum, 65535);
        _maximum = maximum;
        _byTopicSpan = _byTopic.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _byTopic.Count;

    /// <summary>Sets <see cref="OutgoingPublish.TopicAlias"/> (and <see cref="OutgoingPublish.OmitTopic"/> for
    /// a topic the client already knows) on <paramref name="fields"/>, for the message's <paramref name="topic"/> as
    /// the client sees it (from <see cref="OutgoingPublish.TopicStart"/> on).</summary>
    public void Apply(string topic, ref OutgoingPublish fields)
    {
        var seen = topic.AsSpan(fields.TopicStart);
        if (_byTopicSpan.TryGetValue(seen, out var node))
        {
            if (node != _recency.First)
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
            }
            fields.TopicAlias = node.Value.Alias;
            fields.OmitTopic = true;
            return;
        }
        string key = fields.TopicStart == 0 ? topic : seen.ToString(); // only for a topic new to the client
        ushort alias;
        if (_byTopic.Count < _maximum)
        {
            alias = (ushort)(_byTopic.Count + 1);
            node = new LinkedListNode<Entry>(new Entry(key, alias));
        }
        else
        {
            node = _recency.Last!;
            _recency.RemoveLast();
            _byTopic.Remove(node.Value.Topic);
            alias = node.Value.Alias;
            node.Value = new Entry(key, alias);
        }
        _recency.AddFirst(node);
        _byTopic[key] = node;
        fields.TopicAlias = alias;
        fields.OmitTopic = false;
    }

    private readonly record struct Entry(string Topic, ushort Alias);
}
