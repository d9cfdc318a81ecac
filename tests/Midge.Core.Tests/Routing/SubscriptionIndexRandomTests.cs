using Midge.Core.Routing;

namespace Midge.Core.Tests.Routing;

public class SubscriptionIndexRandomTests
{
    private static readonly string[] Words = ["a", "b", "c", "$x", "", "sport", "tennis"];

    private static string RandomTopic(Random rng)
    {
        int levels = rng.Next(1, 6);
        return string.Join('/', Enumerable.Range(0, levels).Select(_ => Words[rng.Next(Words.Length)]));
    }

    private static string RandomFilter(Random rng)
    {
        int levels = rng.Next(1, 6);
        var parts = new List<string>();
        for (int i = 0; i < levels; i++)
        {
            int roll = rng.Next(10);
            if (roll < 2) parts.Add("+");
            else if (roll == 2 && i == levels - 1) parts.Add("#");
            else parts.Add(Words[rng.Next(Words.Length)]);
        }
        return string.Join('/', parts);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Match_agrees_with_a_naive_matcher(int seed)
    {
        var rng = new Random(seed);
        var index = new SubscriptionIndex<string, int>();
        var model = new Dictionary<(string Filter, string Subscriber), int>();
        for (int step = 0; step < 3000; step++)
        {
            string filter = RandomFilter(rng);
            if (rng.Next(4) == 0) filter = "$share/g" + rng.Next(2) + "/" + filter;
            string subscriber = "c" + rng.Next(5);
            if (rng.Next(3) == 0)
            {
                Assert.Equal(model.Remove((filter, subscriber)), index.Unsubscribe(filter, subscriber));
            }
            else
            {
                int value = rng.Next();
                Assert.Equal(model.TryAdd((filter, subscriber), value), index.Subscribe(filter, subscriber, value));
                model[(filter, subscriber)] = value;
            }
            Assert.Equal(model.Count, index.Count);
        }

        for (int i = 0; i < 2000; i++)
        {
            string topic = RandomTopic(rng);
            var expectedSubs = new List<string>();
            var expectedGroups = new List<string>();
            foreach (((string filter, string subscriber), int value) in model)
            {
                if (Midge.Protocol.Topics.TryParseShared(filter, out string group, out string inner))
                {
                    if (ReferenceMatcher.Matches(inner, topic)) expectedGroups.Add($"{group}|{inner}|{subscriber}|{value}");
                }
                else if (ReferenceMatcher.Matches(filter, topic))
                {
                    expectedSubs.Add($"{subscriber}|{filter}|{value}");
                }
            }

            CollectingVisitor v = index.MatchAll(topic);
            Assert.Equal(expectedSubs.Order(StringComparer.Ordinal), v.Subscriptions.Order(StringComparer.Ordinal));
            Assert.Equal(v.Groups.Count, v.Groups.Distinct().Count());
            Assert.Equal(
                expectedGroups.Order(StringComparer.Ordinal),
                v.Groups.SelectMany(g => g.Members.Select(m => $"{g.Name}|{g.Filter}|{m.Subscriber}|{m.Value}")).Order(StringComparer.Ordinal));
        }

        foreach ((string filter, string subscriber) in model.Keys.ToList())
            Assert.True(index.Unsubscribe(filter, subscriber));
        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.TrieNodeCount);
        Assert.Equal(0, index.ExactFilterCount);
    }

    [Fact]
    public async Task Concurrent_subscribe_unsubscribe_and_match_stay_consistent()
    {
        var index = new SubscriptionIndex<string, int>();
        // Stable subscriptions every Match must always see.
        index.Subscribe("s/1/x", "stable", 1);
        index.Subscribe("s/+/x", "stable", 2);
        index.Subscribe("s/#", "stable", 3);
        index.Subscribe("$share/g/s/+/x", "stable", 4);

        string[] filters = ["s/1/x", "s/+/x", "s/#", "+/1/+", "#", "s/1", "s/1/x/y", "$share/g/s/+/x", "$queue/s/1/x", "s/+/x/#"];
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(800));
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        long matches = 0;

        void Writer(int id)
        {
            var rng = new Random(id);
            var mine = new HashSet<string>();
            try
            {
                while (!cts.IsCancellationRequested)
                {
                    string filter = filters[rng.Next(filters.Length)];
                    string subscriber = $"w{id}-{rng.Next(20)}";
                    string key = filter + "\n" + subscriber;
                    if (mine.Contains(key))
                    {
                        if (!index.Unsubscribe(filter, subscriber)) throw new InvalidOperationException("lost " + key);
                        mine.Remove(key);
                    }
                    else
                    {
                        if (!index.Subscribe(filter, subscriber, id)) throw new InvalidOperationException("dup " + key);
                        mine.Add(key);
                    }
                }
                foreach (string key in mine)
                {
                    string[] parts = key.Split('\n');
                    if (!index.Unsubscribe(parts[0], parts[1])) throw new InvalidOperationException("lost " + key);
                }
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
            }
        }

        void Reader()
        {
            try
            {
                while (!cts.IsCancellationRequested)
                {
                    CollectingVisitor v = index.MatchAll("s/1/x");
                    int stable = v.Subscriptions.Count(s => s.StartsWith("stable|", StringComparison.Ordinal));
                    if (stable != 3) throw new InvalidOperationException($"saw {stable} stable subscriptions");
                    SharedGroup<string, int> g = v.Groups.Single(x => x.Name == "g");
                    // Take one snapshot and pick from it, as the broker does.
                    (string Subscriber, int Value)[] members = g.Members;
                    if (!members.Any(m => m.Subscriber == "stable")) throw new InvalidOperationException("stable member missing");
                    _ = members[g.NextIndex() % members.Length];
                    var counter = new CountingVisitor();
                    index.Match("$SYS/1/x", ref counter);
                    index.Match("s", ref counter);
                    Interlocked.Increment(ref matches);
                }
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
            }
        }

        Task[] tasks =
        [
            Task.Run(() => Writer(1)), Task.Run(() => Writer(2)),
            Task.Run(Reader), Task.Run(Reader),
        ];
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(errors);
        Assert.True(matches > 0);

        Assert.Equal(4, index.Count);
        Assert.True(index.Unsubscribe("s/1/x", "stable"));
        Assert.True(index.Unsubscribe("s/+/x", "stable"));
        Assert.True(index.Unsubscribe("s/#", "stable"));
        Assert.True(index.Unsubscribe("$share/g/s/+/x", "stable"));
        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.TrieNodeCount);
        Assert.Equal(0, index.ExactFilterCount);
    }
}
