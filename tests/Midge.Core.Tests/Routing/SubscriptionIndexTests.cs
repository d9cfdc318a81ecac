using Midge.Core.Routing;

namespace Midge.Core.Tests.Routing;

public class SubscriptionIndexTests
{
    [Fact]
    public void Subscribe_returns_true_when_new_and_false_when_it_replaces()
    {
        var index = new SubscriptionIndex<string, int>();
        Assert.True(index.Subscribe("a/b", "c1", 1));
        Assert.True(index.Subscribe("a/b", "c2", 2));
        Assert.True(index.Subscribe("a/+", "c1", 3));
        Assert.Equal(3, index.Count);

        Assert.False(index.Subscribe("a/b", "c1", 10));
        Assert.False(index.Subscribe("a/+", "c1", 30));
        Assert.Equal(3, index.Count);

        CollectingVisitor v = index.MatchAll("a/b");
        Assert.Equal(new[] { "c1|a/+|30", "c1|a/b|10", "c2|a/b|2" }, v.Subscriptions.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Subscribers_are_compared_by_equality()
    {
        var index = new SubscriptionIndex<string, int>();
        Assert.True(index.Subscribe("a", new string('x', 3), 1));
        Assert.False(index.Subscribe("a", new string('x', 3), 2));
        Assert.Equal(1, index.Count);
    }

    [Fact]
    public void Unsubscribe_returns_false_when_absent()
    {
        var index = new SubscriptionIndex<string, int>();
        Assert.False(index.Unsubscribe("a/b", "c1"));
        Assert.False(index.Unsubscribe("a/+", "c1"));
        Assert.False(index.Unsubscribe("$share/g/a/+", "c1"));
        index.Subscribe("a/b", "c1", 1);
        index.Subscribe("a/+/c", "c1", 1);
        Assert.False(index.Unsubscribe("a/b", "c2"));
        Assert.False(index.Unsubscribe("a/+", "c1"));
        Assert.False(index.Unsubscribe("a/+/c/d", "c1"));
        Assert.False(index.Unsubscribe("$share/g/a/b", "c1"));
        Assert.Equal(2, index.Count);
        Assert.True(index.Unsubscribe("a/b", "c1"));
        Assert.False(index.Unsubscribe("a/b", "c1"));
        Assert.Equal(1, index.Count);
    }

    [Fact]
    public void Unsubscribe_removes_only_that_subscription()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("a/+", "c1", 1);
        index.Subscribe("a/+", "c2", 2);
        index.Subscribe("a/#", "c1", 3);
        Assert.True(index.Unsubscribe("a/+", "c1"));
        Assert.Equal(new[] { "c1|a/#|3", "c2|a/+|2" }, index.MatchAll("a/x").Subscriptions.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Unsubscribing_everything_prunes_every_node()
    {
        var index = new SubscriptionIndex<string, int>();
        string[] filters =
        [
            "a", "a/b", "a/b/c", "a/+", "a/+/c", "a/#", "#", "+", "+/+/#", "/+", "a/b/+/d/#",
            "$SYS/#", "$share/g/a/+", "$share/h/a/+", "$queue/x/#", "$share/g/exact/topic",
        ];
        foreach (string f in filters)
            for (int c = 0; c < 3; c++)
                Assert.True(index.Subscribe(f, "c" + c, c));
        Assert.Equal(filters.Length * 3, index.Count);
        Assert.True(index.TrieNodeCount > 0);

        foreach (string f in filters.Reverse())
            for (int c = 0; c < 3; c++)
                Assert.True(index.Unsubscribe(f, "c" + c), f);

        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.TrieNodeCount);
        Assert.Equal(0, index.ExactFilterCount);
        Assert.Empty(index.MatchedFilters("a/b/c"));
    }

    [Fact]
    public void Pruning_keeps_nodes_still_in_use()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("a/+/c/#", "c1", 1);
        index.Subscribe("a/+", "c1", 1);
        int before = index.TrieNodeCount;
        index.Subscribe("a/+/c/d/+", "c1", 1);
        Assert.True(index.TrieNodeCount > before);
        index.Unsubscribe("a/+/c/d/+", "c1");
        Assert.Equal(before, index.TrieNodeCount);
        Assert.Equal(new[] { "a/+", }, index.MatchedFilters("a/b"));
        Assert.Equal(new[] { "a/+/c/#" }, index.MatchedFilters("a/b/c/d"));
        index.Unsubscribe("a/+/c/#", "c1");
        Assert.Equal(2, index.TrieNodeCount); // "a" and "+"
        index.Unsubscribe("a/+", "c1");
        Assert.Equal(0, index.TrieNodeCount);
    }

    [Fact]
    public void Shared_subscriptions_join_a_group_matched_by_its_inner_filter()
    {
        var index = new SubscriptionIndex<string, int>();
        Assert.True(index.Subscribe("$share/g/sensors/+/temp", "c1", 1));
        Assert.True(index.Subscribe("$share/g/sensors/+/temp", "c2", 2));
        Assert.True(index.Subscribe("$share/h/sensors/+/temp", "c3", 3));
        Assert.True(index.Subscribe("$queue/sensors/#", "c4", 4));
        Assert.Equal(4, index.Count);

        CollectingVisitor v = index.MatchAll("sensors/k1/temp");
        Assert.Empty(v.Subscriptions);
        Assert.Equal(3, v.Groups.Count);
        SharedGroup<string, int> g = v.Groups.Single(x => x.Name == "g");
        Assert.Equal("sensors/+/temp", g.Filter);
        Assert.Equal(new[] { ("c1", 1), ("c2", 2) }, g.Members.Select(m => (m.Subscriber, m.Value)));
        SharedGroup<string, int> q = v.Groups.Single(x => x.Name == "");
        Assert.Equal("sensors/#", q.Filter);
        Assert.Equal(new[] { "c4" }, q.Members.Select(m => m.Subscriber));

        Assert.Equal(new[] { "group::sensors/#" }, index.MatchedFilters("sensors/k1/humidity"));
        Assert.Empty(index.MatchedFilters("$share/g/sensors/k1/temp"));
    }

    [Fact]
    public void Shared_and_plain_subscriptions_of_one_filter_live_side_by_side()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("a/b", "c1", 1);
        index.Subscribe("$share/g/a/b", "c1", 2);
        index.Subscribe("$share/g/a/+", "c1", 3);
        Assert.Equal(3, index.Count);
        Assert.Equal(new[] { "a/b", "group:g:a/+", "group:g:a/b" }, index.MatchedFilters("a/b"));
        Assert.True(index.Unsubscribe("a/b", "c1"));
        Assert.Equal(new[] { "group:g:a/+", "group:g:a/b" }, index.MatchedFilters("a/b"));
    }

    [Fact]
    public void Shared_subscription_replace_and_leave()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("$share/g/t", "c1", 1);
        index.Subscribe("$share/g/t", "c2", 2);
        SharedGroup<string, int> group = index.MatchAll("t").Groups.Single();
        (string, int)[] snapshot = group.Members;

        Assert.False(index.Subscribe("$share/g/t", "c1", 10));
        Assert.Equal(2, index.Count);
        Assert.Same(group, index.MatchAll("t").Groups.Single());
        Assert.Equal(new[] { ("c1", 10), ("c2", 2) }, group.Members);
        Assert.Equal(new[] { ("c1", 1), ("c2", 2) }, snapshot); // an earlier snapshot never changes

        Assert.True(index.Unsubscribe("$share/g/t", "c1"));
        Assert.False(index.Unsubscribe("$share/g/t", "c1"));
        Assert.False(index.Unsubscribe("$share/h/t", "c2"));
        Assert.False(index.Unsubscribe("t", "c2"));
        Assert.Equal(new[] { ("c2", 2) }, group.Members);
        Assert.Equal(1, index.Count);

        Assert.True(index.Unsubscribe("$share/g/t", "c2"));
        Assert.Empty(group.Members);
        Assert.Empty(index.MatchAll("t").Groups);
        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.ExactFilterCount);

        // Joining again creates a fresh group.
        index.Subscribe("$share/g/t", "c3", 3);
        Assert.NotSame(group, index.MatchAll("t").Groups.Single());
    }

    [Fact]
    public void Empty_wildcard_groups_are_pruned()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("$share/g/a/+/c", "c1", 1);
        index.Subscribe("$queue/a/+/c", "c1", 1);
        Assert.Equal(3, index.TrieNodeCount);
        index.Unsubscribe("$share/g/a/+/c", "c1");
        Assert.Equal(3, index.TrieNodeCount);
        Assert.Equal(new[] { "group::a/+/c" }, index.MatchedFilters("a/b/c"));
        index.Unsubscribe("$queue/a/+/c", "c1");
        Assert.Equal(0, index.TrieNodeCount);
        Assert.Equal(0, index.Count);
    }

    [Theory]
    [InlineData("$share/g/#", "$SYS/x", false)]
    [InlineData("$share/g/$SYS/#", "$SYS/x", true)]
    [InlineData("$queue/+", "$x", false)]
    [InlineData("$share/g/a/#", "a", true)]
    public void Shared_groups_follow_the_dollar_rule(string filter, string topic, bool matches)
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe(filter, "c1", 1);
        Assert.Equal(matches ? 1 : 0, index.MatchAll(topic).Groups.Count);
    }

    [Fact]
    public void NextIndex_counts_from_zero_and_wraps_to_zero_without_going_negative()
    {
        var group = new SharedGroup<string, int>("g", "t");
        Assert.Equal(0, group.NextIndex());
        Assert.Equal(1, group.NextIndex());
        typeof(SharedGroup<string, int>)
            .GetField("_next", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .SetValue(group, (uint)int.MaxValue - 1);
        Assert.Equal(int.MaxValue, group.NextIndex());
        Assert.Equal(0, group.NextIndex());
        Assert.Equal(1, group.NextIndex());
        typeof(SharedGroup<string, int>)
            .GetField("_next", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .SetValue(group, uint.MaxValue - 1);
        Assert.Equal(int.MaxValue, group.NextIndex());
        Assert.Equal(0, group.NextIndex());
    }

    [Fact]
    public void NextIndex_is_thread_safe()
    {
        var group = new SharedGroup<string, int>("g", "t");
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 25_000; i++) group.NextIndex();
        });
        Assert.Equal(100_000, group.NextIndex());
    }

    [Fact]
    public void Match_allocates_nothing()
    {
        var index = new SubscriptionIndex<string, int>();
        for (int i = 0; i < 100; i++)
        {
            index.Subscribe($"dev/{i}/temp", "c" + i, i);
            index.Subscribe($"dev/{i}/+", "w" + i, i);
        }
        index.Subscribe("dev/#", "all", 0);
        index.Subscribe("+/+/temp", "any", 0);
        index.Subscribe("$share/g/dev/+/temp", "s1", 0);

        var visitor = new CountingVisitor();
        for (int i = 0; i < 100; i++) index.Match("dev/42/temp", ref visitor);
        visitor = new CountingVisitor();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            index.Match("dev/42/temp", ref visitor);
            index.Match("dev/42/humidity", ref visitor);
            index.Match("other/topic", ref visitor);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(1000 * (4 + 2), visitor.Subscriptions);
        Assert.Equal(1000, visitor.Groups);
    }

    [Fact]
    public void Deep_plus_filters_fail_with_a_catchable_exception_or_match()
    {
        var index = new SubscriptionIndex<string, int>();
        string filter = string.Join('/', Enumerable.Repeat("+", 20_000));
        string topic = string.Join('/', Enumerable.Repeat("a", 20_000));
        index.Subscribe(filter, "c", 1);
        var visitor = new CountingVisitor();
        try
        {
            index.Match(topic, ref visitor);
            Assert.Equal(1, visitor.Subscriptions);
        }
        catch (InsufficientExecutionStackException)
        {
        }
        Assert.True(index.Unsubscribe(filter, "c"));
        Assert.Equal(0, index.TrieNodeCount);
    }

    [Fact]
    public void The_filter_watcher_tells_plain_subscriptions_and_shared_groups_apart()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("x/+", "a", 1);
        index.Subscribe("$share/h/e", "a", 1);
        var seen = new List<(string, string?, bool)>();
        index.WatchFilters((filter, group, added) => seen.Add((filter, group, added)));
        Assert.Equal([("e", "h", true), ("x/+", null, true)], seen.Order());

        seen.Clear();
        index.Subscribe("$share/g/x/+", "a", 1); // a group is made
        index.Subscribe("$share/g/x/+", "b", 1); // the same group: nothing
        index.Subscribe("x/+", "b", 1); // another plain subscriber: nothing
        index.Unsubscribe("x/+", "a"); // one is left: nothing
        index.Unsubscribe("x/+", "b"); // the last plain one
        index.Unsubscribe("$share/g/x/+", "a");
        index.Unsubscribe("$share/g/x/+", "b"); // the group's last member
        Assert.Equal([("x/+", "g", true), ("x/+", null, false), ("x/+", "g", false)], seen);
    }

    [Fact]
    public void FindGroup_finds_a_shared_group_by_its_filter_and_name()
    {
        var index = new SubscriptionIndex<string, int>();
        index.Subscribe("$share/g/x/+/#", "a", 1);
        index.Subscribe("$share/g/exact", "a", 1);
        Assert.Equal(("g", "x/+/#"), index.FindGroup("x/+/#", "g") is { } g ? (g.Name, g.Filter) : default);
        Assert.Equal("exact", index.FindGroup("exact", "g")?.Filter);
        Assert.Null(index.FindGroup("x/+/#", "h"));
        Assert.Null(index.FindGroup("x/+", "g"));
        Assert.Null(index.FindGroup("other", "g"));
    }
}
