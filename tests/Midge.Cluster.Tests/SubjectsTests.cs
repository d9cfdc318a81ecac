using Midge.Core.Routing;

namespace Midge.Cluster.Tests;

/// <summary>MQTT topics and filters as NATS subjects: escaping, and matching that agrees with MQTT's.</summary>
public class SubjectsTests
{
    private const string P = "midge.c";

    [Theory]
    [InlineData("a/b", "midge.c.m.a.b")]
    [InlineData("a.b/c", "midge.c.m.a_2Eb.c")]
    [InlineData("*/>", "midge.c.m._2A._3E")]
    [InlineData("with space/tab\there", "midge.c.m.with_20space.tab_09here")]
    [InlineData("/", "midge.c.m._._")]
    [InlineData("a//b/", "midge.c.m.a._.b._")]
    [InlineData("under_score", "midge.c.m.under_5Fscore")]
    [InlineData("_", "midge.c.m._5F")]
    [InlineData("$SYS/x", "midge.c.d.$SYS.x")]
    [InlineData("$share-like/x", "midge.c.d.$share-like.x")]
    [InlineData("é/日本/😀", "midge.c.m._C3_A9._E6_97_A5_E6_9C_AC._F0_9F_98_80")]
    [InlineData("#+!\"%&'(),-:;<=?@[\\]^`{|}~", "midge.c.m.#+!\"%&'(),-:;<=?@[\\]^`{|}~")]
    public void Topics_AreEscaped(string topic, string subject) => Assert.Equal(subject, Subjects.ForTopic(P, topic));

    [Theory]
    [InlineData("a/+", new[] { "midge.c.m.a.*" })]
    [InlineData("a/#", new[] { "midge.c.m.a.>", "midge.c.m.a" })]
    [InlineData("#", new[] { "midge.c.m.>" })]
    [InlineData("+", new[] { "midge.c.m.*" })]
    [InlineData("+/#", new[] { "midge.c.m.*.>", "midge.c.m.*" })]
    [InlineData("$SYS/#", new[] { "midge.c.d.$SYS.>", "midge.c.d.$SYS" })]
    [InlineData("a.b/+/c d", new[] { "midge.c.m.a_2Eb.*.c_20d" })]
    [InlineData("//#", new[] { "midge.c.m._._.>", "midge.c.m._._" })]
    public void Filters_MapLevelByLevel(string filter, string[] subjects) => Assert.Equal(subjects, Subjects.ForFilter(P, filter));

    private static readonly string[] AwkwardTopics =
    [
        "a", "a/b", "a/b/c", "/", "//", "a/", "/a", "a//b", "a.b", "a.b/c", "*", ">", "a/*", "a/>", "x y", " ", "_", "__",
        "_2E", "._", "$SYS/broker", "$x", "$", "a/$", "é", "e\u0301", "😀/😀", "a\tb", "a\u0001b",
    ];

    private static readonly string[] AwkwardFilters =
    [
        "#", "+", "+/+", "a/#", "a/+", "/#", "/+", "+/", "a/+/#", "$SYS/#", "$+", "$x/+", "+/b", "a.b/#", "*", ">", "_/#",
        "//#", "a//+", "x y/#",
    ];

    /// <summary>For every awkward topic and filter, NATS's matching of the subjects agrees with MQTT's matching of the
    /// topic and filter (the broker's own routing index is the reference).</summary>
    [Fact]
    public void NatsMatching_AgreesWithMqtt()
    {
        foreach (var filter in AwkwardFilters)
        {
            var index = new SubscriptionIndex<object, int>();
            index.Subscribe(filter, new object(), 0);
            var subjects = Subjects.ForFilter(P, filter);
            foreach (var topic in AwkwardTopics)
            {
                var counter = new Counter();
                index.Match(topic, ref counter);
                bool mqtt = counter.Count > 0;
                var subject = Subjects.ForTopic(P, topic)!;
                bool nats = subjects.Any(s => NatsMatches(s, subject));
                Assert.True(mqtt == nats, $"filter '{filter}', topic '{topic}': MQTT {mqtt}, NATS {nats} ({subject} vs {string.Join(" ", subjects)})");
            }
        }
    }

    [Fact]
    public void DifferentLevels_NeverShareAToken()
    {
        var levels = new[] { "", "_", "__", "_5F", "_2E", ".", "a", "A", "a.", "a_2E", " ", "_20", "é", "_C3_A9", "*", ">", "$" };
        Assert.Equal(levels.Length, levels.Select(Subjects.Token).Distinct().Count());
        Assert.All(levels.Select(Subjects.Token), t => Assert.DoesNotMatch(@"[\s.*>]|^$", t));
    }

    [Fact]
    public void TooLongSubjects_AreRefused()
    {
        var topic = new string('.', Subjects.MaxSubjectLength / 3 + 10);
        Assert.Null(Subjects.ForTopic(P, topic));
        Assert.Empty(Subjects.ForFilter(P, topic + "/#"));
    }

    /// <summary>NATS's subject matching: <c>*</c> one token, <c>&gt;</c> one or more at the end.</summary>
    private static bool NatsMatches(string filter, string subject)
    {
        var f = filter.Split('.');
        var s = subject.Split('.');
        for (int i = 0; i < f.Length; i++)
        {
            if (f[i] == ">") return s.Length > i;
            if (i >= s.Length) return false;
            if (f[i] != "*" && f[i] != s[i]) return false;
        }
        return f.Length == s.Length;
    }

    private struct Counter : ISubscriptionVisitor<object, int>
    {
        public int Count;

        public void OnSubscription(object subscriber, string filter, int value) => Count++;

        public void OnSharedGroup(SharedGroup<object, int> group) => Count++;
    }
}
