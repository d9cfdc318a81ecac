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
}
