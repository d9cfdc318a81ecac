using System.Text;

namespace Midge.Protocol;

/// <summary>Topic name and topic filter rules (MQTT 3.1.1 section 4.7, MQTT 5.0 section 4.7 and 4.8.2).</summary>
public static class Topics
{
    /// <summary>Prefix of an MQTT 5 shared subscription: <c>$share/{ShareName}/{filter}</c>.</summary>
    public const string SharePrefix = "$share/";

    /// <summary>Prefix of the non-standard shared subscription form <c>$queue/{filter}</c> (one unnamed group).</summary>
    public const string QueuePrefix = "$queue/";

    private const int MaxUtf8Length = ushort.MaxValue;

    /// <summary>A topic name: at least one character, no '+' or '#', no U+0000, at most 65535 UTF-8 bytes.</summary>
    public static bool IsValidTopicName(ReadOnlySpan<char> topic) =>
        topic.Length != 0 && topic.IndexOfAny('+', '#', '\0') < 0 && FitsLength(topic);

    /// <summary>A topic filter: '#' only as the last level and alone in it, '+' alone in its level; at least
    /// one character, no U+0000, at most 65535 UTF-8 bytes. Shared-subscription prefixes are not interpreted
    /// here (see <see cref="IsValidSubscriptionFilter"/>).</summary>
    public static bool IsValidTopicFilter(ReadOnlySpan<char> filter)
    {
        if (filter.Length == 0 || !FitsLength(filter)) return false;
        int levelStart = 0;
        for (int i = 0; i < filter.Length; i++)
        {
            char c = filter[i];
            if (c == '/')
            {
                levelStart = i + 1;
            }
            else if (c == '+')
            {
                // '+' must occupy the entire level (MQTT-4.7.1-3).
                if (i != levelStart || (i + 1 < filter.Length && filter[i + 1] != '/')) return false;
            }
            else if (c == '#')
            {
                // '#' must be alone in the last level (MQTT-4.7.1-2).
                if (i != levelStart || i != filter.Length - 1) return false;
            }
            else if (c == '\0')
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// A filter as it may appear in SUBSCRIBE/UNSUBSCRIBE: a valid topic filter, or a well-formed shared
    /// subscription (<see cref="TryParseShared(string, out string, out string)"/>) whose inner filter is valid.
    /// </summary>
    public static bool IsValidSubscriptionFilter(string filter)
    {
        if (IsShared(filter)) return TryParseShared(filter, out _, out _);
        return IsValidTopicFilter(filter);
    }

    /// <summary>Whether <paramref name="filter"/> starts with <c>$share/</c> or <c>$queue/</c> (well-formed or not).</summary>
    public static bool IsShared(ReadOnlySpan<char> filter) =>
        filter.StartsWith(SharePrefix, StringComparison.Ordinal) || filter.StartsWith(QueuePrefix, StringComparison.Ordinal);

    /// <summary>
    /// Splits a shared subscription. <c>$share/{group}/{filter}</c>: the group must be non-empty and contain no
    /// '/', '+' or '#' (MQTT 5.0 section 4.8.2), and the filter must be a valid, non-empty topic filter.
    /// <c>$queue/{filter}</c> gives group "" (a single unnamed group). Returns false for anything else, including
    /// malformed <c>$share/</c> filters (check <see cref="IsShared"/> to tell the two apart).
    /// </summary>
    public static bool TryParseShared(string filter, out string group, out string topicFilter)
    {
        group = "";
        topicFilter = "";
        if (filter.StartsWith(SharePrefix, StringComparison.Ordinal))
        {
            var rest = filter.AsSpan(SharePrefix.Length);
            int slash = rest.IndexOf('/');
            if (slash <= 0) return false;
            var name = rest[..slash];
            if (name.IndexOfAny('+', '#') >= 0) return false;
            var inner = rest[(slash + 1)..];
            if (!IsValidTopicFilter(inner)) return false;
            group = name.ToString();
            topicFilter = inner.ToString();
            return true;
        }
        if (filter.StartsWith(QueuePrefix, StringComparison.Ordinal))
        {
            var inner = filter.AsSpan(QueuePrefix.Length);
            if (!IsValidTopicFilter(inner)) return false;
            topicFilter = inner.ToString();
            return true;
        }
        return false;
    }

    /// <summary>
    /// Whether a topic name matches a (non-shared) filter. '+' matches exactly one level (possibly empty),
    /// '#' matches the parent level and any number of levels below ("a/#" matches "a"), and a filter starting
    /// with a wildcard does not match a topic starting with '$' (MQTT-4.7.2-1).
    /// </summary>
    public static bool Matches(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic)
    {
        if (filter.Length == 0 || topic.Length == 0) return false;
        if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
        while (true)
        {
            int fEnd = filter.IndexOf('/');
            var fLevel = fEnd < 0 ? filter : filter[..fEnd];
            if (fLevel.Length == 1 && fLevel[0] == '#') return true;
            int tEnd = topic.IndexOf('/');
            var tLevel = tEnd < 0 ? topic : topic[..tEnd];
            if (!(fLevel.Length == 1 && fLevel[0] == '+') && !fLevel.SequenceEqual(tLevel)) return false;
            if (tEnd < 0)
            {
                if (fEnd < 0) return true;
                // Topic exhausted: only a trailing "/#" still matches (the parent level).
                var restFilter = filter[(fEnd + 1)..];
                return restFilter.Length == 1 && restFilter[0] == '#';
            }
            if (fEnd < 0) return false;
            filter = filter[(fEnd + 1)..];
            topic = topic[(tEnd + 1)..];
        }
    }

    public static bool HasWildcards(ReadOnlySpan<char> filter) => filter.IndexOfAny('+', '#') >= 0;

    private static bool FitsLength(ReadOnlySpan<char> s) =>
        s.Length <= MaxUtf8Length / 3 || Encoding.UTF8.GetByteCount(s) <= MaxUtf8Length;
}
