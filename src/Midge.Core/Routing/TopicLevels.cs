namespace Midge.Core.Routing;

/// <summary>
/// Splitting of topic names and filters into levels, and recognition of shared-subscription filters.
/// Kept inside Core so that routing does not depend on the protocol layer's validation rules: the broker
/// validates filters before they get here, and these helpers accept any string without throwing.
/// </summary>
internal static class TopicLevels
{
    /// <summary>Splits on '/'; "" is one empty level, "a/" is "a" and "".</summary>
    public static string[] Split(string topicOrFilter) => topicOrFilter.Split('/');

    /// <summary>True if any level is exactly "+" or "#".</summary>
    public static bool HasWildcardLevel(string filter)
    {
        int start = 0;
        while (true)
        {
            int end = filter.IndexOf('/', start);
            if (end < 0) end = filter.Length;
            if (end - start == 1 && (filter[start] == '+' || filter[start] == '#')) return true;
            if (end == filter.Length) return false;
            start = end + 1;
        }
    }

    /// <summary>
    /// Recognises "$share/{group}/{filter}" (group non-empty without '/', '+', '#'; filter non-empty) and
    /// "$queue/{filter}" (group ""). Anything else, malformed shared filters included, is not shared.
    /// </summary>
    public static bool TryParseShared(string filter, out string group, out string inner)
    {
        if (filter.StartsWith("$share/", StringComparison.Ordinal))
        {
            int slash = filter.IndexOf('/', 7);
            if (slash > 7 && slash + 1 < filter.Length)
            {
                ReadOnlySpan<char> name = filter.AsSpan(7, slash - 7);
                if (name.IndexOfAny('+', '#') < 0)
                {
                    group = name.ToString();
                    inner = filter.Substring(slash + 1);
                    return true;
                }
            }
        }
        else if (filter.StartsWith("$queue/", StringComparison.Ordinal) && filter.Length > 7)
        {
            group = "";
            inner = filter.Substring(7);
            return true;
        }
        group = "";
        inner = "";
        return false;
    }
}
