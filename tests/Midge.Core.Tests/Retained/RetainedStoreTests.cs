using Midge.Core.Retained;
using Midge.Core.Tests.Routing;

namespace Midge.Core.Tests.Retained;

public class RetainedStoreTests
{
    private sealed record Msg(string Topic, int Version = 0);

    private static string[] MatchTopics(RetainedStore<Msg> store, string filter)
    {
        var results = new List<Msg>();
        store.Match(filter, results);
        return results.Select(m => m.Topic).Order(StringComparer.Ordinal).ToArray();
    }

    private static RetainedStore<Msg> Store(params string[] topics)
    {
        var store = new RetainedStore<Msg>();
        foreach (string t in topics) store.Set(t, new Msg(t));
        return store;
    }

    [Fact]
    public void Set_replace_get_remove()
    {
        var store = new RetainedStore<Msg>();
        Assert.False(store.TryGet("a/b", out _));
        store.Set("a/b", new Msg("a/b", 1));
        Assert.Equal(1, store.Count);
        store.Set("a/b", new Msg("a/b", 2));
        Assert.Equal(1, store.Count);
        Assert.True(store.TryGet("a/b", out Msg? m));
        Assert.Equal(2, m!.Version);
        Assert.False(store.TryGet("a", out _));
        Assert.False(store.Remove("a"));
        Assert.True(store.Remove("a/b"));
        Assert.False(store.Remove("a/b"));
        Assert.False(store.TryGet("a/b", out m));
        Assert.Null(m);
        Assert.Equal(0, store.Count);
        Assert.Equal(0, store.NodeCount);
    }

    private static readonly string[] SpecTopics =
    [
        "sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon", "sport/tennis/player2", "sport/golf", "/finance", "finance",
        "$SYS/broker/uptime", "$SYS/monitor/Clients", "$SYS", "a//c", "a/$x", "",
    ];

    [Theory]
    [InlineData("sport/tennis/player1/#")]
    [InlineData("sport/#")]
    [InlineData("sport/+")]
    [InlineData("sport/tennis/+")]
    [InlineData("+/+")]
    [InlineData("/+")]
    [InlineData("+")]
    [InlineData("#")]
    [InlineData("+/#")]
    [InlineData("+/tennis/#")]
    [InlineData("+/monitor/Clients")]
    [InlineData("$SYS/#")]
    [InlineData("$SYS/monitor/+")]
    [InlineData("$SYS/monitor/Clients")]
    [InlineData("a/+/c")]
    [InlineData("a/+")]
    [InlineData("a/#")]
    [InlineData("sport/tennis")]
    [InlineData("nothing/#")]
    public void Match_follows_the_spec(string filter)
    {
        RetainedStore<Msg> store = Store(SpecTopics);
        string[] expected = SpecTopics.Where(t => ReferenceMatcher.Matches(filter, t)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, MatchTopics(store, filter));
    }

    [Fact]
    public void Spot_checks()
    {
        RetainedStore<Msg> store = Store(SpecTopics);
        Assert.Equal(new[] { "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon" },
            MatchTopics(store, "sport/tennis/player1/#"));
        Assert.DoesNotContain("$SYS/broker/uptime", MatchTopics(store, "#"));
        Assert.Equal(new[] { "$SYS", "$SYS/broker/uptime", "$SYS/monitor/Clients" }, MatchTopics(store, "$SYS/#"));
        Assert.Equal(new[] { "/finance" }, MatchTopics(store, "/+"));
        Assert.Equal(new[] { "", "finance", "sport" }, MatchTopics(store, "+"));
    }

    [Fact]
    public void Remove_prunes_empty_nodes_but_keeps_used_ones()
    {
        RetainedStore<Msg> store = Store("a/b/c/d", "a/b", "a/x");
        Assert.Equal(5, store.NodeCount);
        Assert.True(store.Remove("a/b/c/d"));
        Assert.Equal(3, store.NodeCount);
        Assert.Equal(new[] { "a/b", "a/x" }, MatchTopics(store, "a/#"));
        Assert.True(store.Remove("a/b"));
        Assert.Equal(2, store.NodeCount);
        Assert.True(store.Remove("a/x"));
        Assert.Equal(0, store.NodeCount);
        Assert.Equal(0, store.Count);
        Assert.Empty(MatchTopics(store, "#"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("#/#")]
    [InlineData("a/#/b")]
    [InlineData("+/+/+/+")]
    [InlineData("\0")]
    public void Odd_strings_do_not_crash(string s)
    {
        RetainedStore<Msg> store = Store(SpecTopics);
        store.Set(s, new Msg(s));
        MatchTopics(store, s);
        Assert.True(store.Remove(s) || SpecTopics.Contains(s));
    }

    [Fact]
    public void Deep_topics_do_not_overflow_the_stack()
    {
        string deep = string.Join('/', Enumerable.Repeat("a", 30_000));
        RetainedStore<Msg> store = Store(deep);
        Assert.Single(MatchTopics(store, "#"));
        Assert.Single(MatchTopics(store, deep));
        Assert.True(store.Remove(deep));
        Assert.Equal(0, store.NodeCount);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Match_agrees_with_a_naive_matcher(int seed)
    {
        var rng = new Random(seed);
        string[] words = ["a", "b", "$c", "", "d"];
        string Random(bool filter)
        {
            int n = rng.Next(1, 5);
            var parts = new List<string>();
            for (int i = 0; i < n; i++)
            {
                int roll = rng.Next(8);
                if (filter && roll == 0) parts.Add("+");
                else if (filter && roll == 1 && i == n - 1) parts.Add("#");
                else parts.Add(words[rng.Next(words.Length)]);
            }
            return string.Join('/', parts);
        }

        var store = new RetainedStore<Msg>();
        var model = new Dictionary<string, Msg>();
        for (int i = 0; i < 2000; i++)
        {
            string t = Random(false);
            if (rng.Next(3) == 0)
            {
                Assert.Equal(model.Remove(t), store.Remove(t));
            }
            else
            {
                var m = new Msg(t, i);
                store.Set(t, m);
                model[t] = m;
            }
            Assert.Equal(model.Count, store.Count);
        }
        for (int i = 0; i < 1000; i++)
        {
            string f = Random(true);
            var results = new List<Msg>();
            store.Match(f, results);
            Assert.Equal(
                model.Where(kv => ReferenceMatcher.Matches(f, kv.Key)).Select(kv => kv.Value).OrderBy(m => m.Topic, StringComparer.Ordinal),
                results.OrderBy(m => m.Topic, StringComparer.Ordinal));
        }
        foreach (string t in model.Keys.ToList()) Assert.True(store.Remove(t));
        Assert.Equal(0, store.NodeCount);
    }

    [Fact]
    public async Task Concurrent_set_remove_and_match_stay_consistent()
    {
        var store = new RetainedStore<Msg>();
        store.Set("s/stable/x", new Msg("s/stable/x"));
        string[] topics = ["s/1/x", "s/2/x", "s/1", "s/1/x/y", "t/1", "$SYS/1", "s/stable/x/z"];
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(600));
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        void Writer(int id)
        {
            var rng = new Random(id);
            try
            {
                while (!cts.IsCancellationRequested)
                {
                    string t = topics[rng.Next(topics.Length)] + "/" + id;
                    if (rng.Next(2) == 0) store.Set(t, new Msg(t)); else store.Remove(t);
                }
                foreach (string t in topics) store.Remove(t + "/" + id);
            }
            catch (Exception e) { errors.Enqueue(e); }
        }

        void Reader()
        {
            try
            {
                var results = new List<Msg>();
                while (!cts.IsCancellationRequested)
                {
                    foreach (string f in new[] { "#", "s/+/x", "s/#", "+/+/+/+" })
                    {
                        results.Clear();
                        store.Match(f, results);
                        if (f != "+/+/+/+" && !results.Any(m => m.Topic == "s/stable/x")) throw new InvalidOperationException("stable lost for " + f);
                        if (f == "#" && results.Any(m => m.Topic.StartsWith('$'))) throw new InvalidOperationException("$ topic matched");
                    }
                    if (!store.TryGet("s/stable/x", out _)) throw new InvalidOperationException("stable TryGet");
                }
            }
            catch (Exception e) { errors.Enqueue(e); }
        }

        Task[] tasks = [Task.Run(() => Writer(1)), Task.Run(() => Writer(2)), Task.Run(Reader), Task.Run(Reader)];
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(errors);
        Assert.Equal(1, store.Count);
        Assert.True(store.Remove("s/stable/x"));
        Assert.Equal(0, store.NodeCount);
    }
}
