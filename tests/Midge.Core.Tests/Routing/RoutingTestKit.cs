using Midge.Core.Routing;

namespace Midge.Core.Tests.Routing;

/// <summary>A naive matcher written straight from MQTT 5.0 section 4.7, to compare the index against.</summary>
internal static class ReferenceMatcher
{
    public static bool Matches(string filter, string topic)
    {
        string[] f = filter.Split('/');
        string[] t = topic.Split('/');
        if (topic.StartsWith('$') && (f[0] == "+" || f[0] == "#")) return false;
        for (int i = 0; i < f.Length; i++)
        {
            if (f[i] == "#") return true;
            if (i >= t.Length) return false;
            if (f[i] != "+" && f[i] != t[i]) return false;
        }
        return f.Length == t.Length;
    }
}

/// <summary>Collects every visit as "subscriber|filter|value" and every shared group.</summary>
internal struct CollectingVisitor : ISubscriptionVisitor<string, int>
{
    public List<string> Subscriptions;
    public List<SharedGroup<string, int>> Groups;

    public static CollectingVisitor Create() => new() { Subscriptions = [], Groups = [] };

    public readonly void OnSubscription(string subscriber, string filter, int value) =>
        Subscriptions.Add($"{subscriber}|{filter}|{value}");

    public readonly void OnSharedGroup(SharedGroup<string, int> group) => Groups.Add(group);
}

/// <summary>Counts visits without allocating.</summary>
internal struct CountingVisitor : ISubscriptionVisitor<string, int>
{
    public int Subscriptions;
    public int Groups;

    public void OnSubscription(string subscriber, string filter, int value) => Subscriptions++;

    public void OnSharedGroup(SharedGroup<string, int> group) => Groups++;
}

internal static class IndexExtensions
{
    public static CollectingVisitor MatchAll(this SubscriptionIndex<string, int> index, string topic)
    {
        var visitor = CollectingVisitor.Create();
        index.Match(topic, ref visitor);
        return visitor;
    }

    /// <summary>The filters that matched, sorted, one entry per visit (duplicates kept).</summary>
    public static string[] MatchedFilters(this SubscriptionIndex<string, int> index, string topic)
    {
        CollectingVisitor v = index.MatchAll(topic);
        return v.Subscriptions.Select(s => s.Split('|')[1])
            .Concat(v.Groups.Select(g => "group:" + g.Name + ":" + g.Filter))
            .Order(StringComparer.Ordinal).ToArray();
    }
}
