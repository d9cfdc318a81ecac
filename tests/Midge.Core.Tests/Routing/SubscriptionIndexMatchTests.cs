using Midge.Core.Routing;

namespace Midge.Core.Tests.Routing;

/// <summary>Matching rules of MQTT 5.0 section 4.7 (and 3.1.1 section 4.7), one filter at a time.</summary>
public class SubscriptionIndexMatchTests
{
    [Theory]
    // 4.7.1.2 multi-level wildcard
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/ranking", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player2", false)]
    [InlineData("sport/tennis/player1/#", "sport/tennis", false)]
    [InlineData("sport/#", "sport", true)]
    [InlineData("sport/#", "sports", false)]
    [InlineData("#", "sport/tennis", true)]
    [InlineData("#", "/", true)]
    [InlineData("#", "a", true)]
    // 4.7.1.3 single-level wildcard
    [InlineData("sport/tennis/+", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player2", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1/ranking", false)]
    [InlineData("sport/+", "sport", false)]
    [InlineData("sport/+", "sport/", true)]
    [InlineData("+/+", "/finance", true)]
    [InlineData("/+", "/finance", true)]
    [InlineData("+", "/finance", false)]
    [InlineData("+", "finance", true)]
    [InlineData("+/tennis/#", "sport/tennis", true)]
    [InlineData("+/tennis/#", "sport/tennis/x/y", true)]
    [InlineData("+/tennis/#", "sport/golf", false)]
    [InlineData("+/#", "a", true)]
    [InlineData("a/+/c", "a//c", true)]
    [InlineData("a/+/c", "a/b/c", true)]
    [InlineData("a/+/c", "a/b/d", false)]
    [InlineData("+", "", true)]
    [InlineData("a/+", "a/", true)]
    // 4.7.2 topics beginning with $
    [InlineData("#", "$SYS/broker/uptime", false)]
    [InlineData("+/monitor/Clients", "$SYS/monitor/Clients", false)]
    [InlineData("+", "$SYS", false)]
    [InlineData("+/#", "$SYS/x", false)]
    [InlineData("$SYS/#", "$SYS/monitor/Clients", true)]
    [InlineData("$SYS/#", "$SYS", true)]
    [InlineData("$SYS/monitor/+", "$SYS/monitor/Clients", true)]
    [InlineData("$SYS/monitor/Clients", "$SYS/monitor/Clients", true)]
    [InlineData("a/#", "a/$x", true)]
    [InlineData("a/+", "a/$x", true)]
    // exact filters
    [InlineData("sport/tennis", "sport/tennis", true)]
    [InlineData("sport/tennis", "sport/tennis/", false)]
    [InlineData("sport/tennis", "Sport/tennis", false)]
    [InlineData("/", "/", true)]
    [InlineData("a//b", "a//b", true)]
    // '+' and '#' only as a whole level are wildcards
    [InlineData("a+/b", "ax/b", false)]
    [InlineData("a+/b", "a+/b", true)]
    public void Matches_as_the_spec_says(string filter, string topic, bool expected)
    {
        Assert.Equal(expected, ReferenceMatcher.Matches(filter, topic));
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe(filter, "c1", 7);
        CollectingVisitor v = index.MatchAll(topic);
        Assert.Equal(expected ? new[] { $"c1|{filter}|7" } : [], v.Subscriptions.ToArray());
        Assert.Empty(v.Groups);
    }

    [Fact]
    public void Every_matching_filter_of_one_subscriber_is_visited_once()
    {
        var index = new SubscriptionIndex<string, int>();
        foreach (string f in new[] { "a/b/c", "a/+/c", "a/#", "#", "+/+/+", "a/b", "x/#" })
            index.Subscribe(f, "c1", 1);
        Assert.Equal(new[] { "#", "+/+/+", "a/#", "a/+/c", "a/b/c" }, index.MatchedFilters("a/b/c"));
        Assert.Equal(new[] { "#", "a/#", "a/b" }, index.MatchedFilters("a/b"));
        Assert.Equal(new[] { "#", "a/#" }, index.MatchedFilters("a"));
        Assert.Empty(index.MatchedFilters("$a/b/c"));
    }

    [Fact]
    public void Several_subscribers_of_one_filter_are_all_visited()
    {
        var index = new SubscriptionIndex<string, int>();
        for (int i = 0; i < 5; i++)
        {
            index.Subscribe("t/1", "c" + i, i);
            index.Subscribe("t/+", "c" + i, 10 + i);
        }
        CollectingVisitor v = index.MatchAll("t/1");
        Assert.Equal(10, v.Subscriptions.Count);
        Assert.Contains("c3|t/1|3", v.Subscriptions);
        Assert.Contains("c3|t/+|13", v.Subscriptions);
    }

    [Fact]
    public void Empty_index_matches_nothing()
    {
        var index = new SubscriptionIndex<string, int>();
        Assert.Empty(index.MatchedFilters("a"));
        Assert.Empty(index.MatchedFilters(""));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("//")]
    [InlineData("#/#")]
    [InlineData("a/#/b")]
    [InlineData("++")]
    [InlineData("$share/")]
    [InlineData("$share//a")]
    [InlineData("$share/g")]
    [InlineData("$share/g/")]
    [InlineData("$share/g+/a")]
    [InlineData("$queue/")]
    [InlineData("\0/\uffff")]
    public void Odd_filters_do_not_crash_and_unsubscribe_cleanly(string filter)
    {
        var index = new SubscriptionIndex<string, int>();
        Assert.True(index.Subscribe(filter, "c", 1));
        var visitor = new CountingVisitor();
        foreach (string topic in new[] { "", "/", "a", "a/b", "$share/g", "#/#", "\0/\uffff" })
            index.Match(topic, ref visitor);
        Assert.True(index.Unsubscribe(filter, "c"));
        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.TrieNodeCount);
        Assert.Equal(0, index.ExactFilterCount);
    }
}
