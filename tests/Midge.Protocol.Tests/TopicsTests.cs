using FsCheck;
using FsCheck.Fluent;

namespace Midge.Protocol.Tests;

public class TopicsTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("a/b/c", true)]
    [InlineData("/", true)]
    [InlineData("//", true)]
    [InlineData("$SYS/broker", true)]
    [InlineData("sport/tennis player1", true)]
    [InlineData("é/中/😀", true)]
    [InlineData("", false)]
    [InlineData("a/+", false)]
    [InlineData("#", false)]
    [InlineData("a#", false)]
    [InlineData("a\0b", false)]
    public void IsValidTopicName(string topic, bool valid) => Assert.Equal(valid, Topics.IsValidTopicName(topic));

    [Fact]
    public void IsValidTopicName_LimitsUtf8Length()
    {
        Assert.True(Topics.IsValidTopicName(new string('a', 65_535)));
        Assert.False(Topics.IsValidTopicName(new string('a', 65_536)));
        Assert.False(Topics.IsValidTopicName(new string('é', 32_768)));
    }

    [Theory]
    [InlineData("#", true)]
    [InlineData("+", true)]
    [InlineData("a/#", true)]
    [InlineData("a/+/b", true)]
    [InlineData("+/+", true)]
    [InlineData("/+", true)]
    [InlineData("+/", true)]
    [InlineData("/#", true)]
    [InlineData("a//b", true)]
    [InlineData("$SYS/#", true)]
    [InlineData("", false)]
    [InlineData("a#", false)]
    [InlineData("a/#/b", false)]
    [InlineData("#/", false)]
    [InlineData("##", false)]
    [InlineData("a+", false)]
    [InlineData("+a", false)]
    [InlineData("a/b+/c", false)]
    [InlineData("++", false)]
    [InlineData("a\0", false)]
    public void IsValidTopicFilter(string filter, bool valid) => Assert.Equal(valid, Topics.IsValidTopicFilter(filter));

    [Theory]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/ranking", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true)]
    [InlineData("sport/#", "sport", true)]
    [InlineData("#", "a/b/c", true)]
    [InlineData("#", "/", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1/ranking", false)]
    [InlineData("sport/+", "sport", false)]
    [InlineData("sport/+", "sport/", true)]
    [InlineData("+/+", "/finance", true)]
    [InlineData("/+", "/finance", true)]
    [InlineData("+", "/finance", false)]
    [InlineData("+", "a", true)]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/b", "a/B", false)]
    [InlineData("a/b", "a/b/c", false)]
    [InlineData("a/b/c", "a/b", false)]
    [InlineData("+/#", "a", true)]
    [InlineData("a/+/#", "a/b", true)]
    [InlineData("#", "$SYS/broker", false)] // MQTT-4.7.2-1
    [InlineData("+/broker", "$SYS/broker", false)]
    [InlineData("$SYS/#", "$SYS/broker", true)]
    [InlineData("$SYS/+", "$SYS/broker", true)]
    [InlineData("a/#", "$a", false)]
    public void Matches(string filter, string topic, bool expected) => Assert.Equal(expected, Topics.Matches(filter, topic));

    [Theory]
    [InlineData("$share/g/a/b", true, "g", "a/b")]
    [InlineData("$share/group/#", true, "group", "#")]
    [InlineData("$share/g/+/x", true, "g", "+/x")]
    [InlineData("$queue/a/b", true, "", "a/b")]
    [InlineData("$share/g", false, "", "")]
    [InlineData("$share/g/", false, "", "")]
    [InlineData("$share//a", false, "", "")]
    [InlineData("$share/+/a", false, "", "")]
    [InlineData("$share/#/a", false, "", "")]
    [InlineData("$share/g/a#", false, "", "")]
    [InlineData("$queue/", false, "", "")]
    [InlineData("a/b", false, "", "")]
    [InlineData("$share", false, "", "")]
    public void TryParseShared(string filter, bool ok, string group, string inner)
    {
        Assert.Equal(ok, Topics.TryParseShared(filter, out var g, out var f));
        Assert.Equal(group, g);
        Assert.Equal(inner, f);
        Assert.Equal(ok || !Topics.IsShared(filter) && Topics.IsValidTopicFilter(filter), Topics.IsValidSubscriptionFilter(filter));
    }

    /// <summary>The obviously correct matcher: split into levels, recurse.</summary>
    private static bool ReferenceMatches(string filter, string topic)
    {
        if (topic.StartsWith('$') && (filter.StartsWith('+') || filter.StartsWith('#'))) return false;
        return Match(filter.Split('/'), 0, topic.Split('/'), 0);

        static bool Match(string[] f, int i, string[] t, int j)
        {
            if (i == f.Length) return j == t.Length;
            if (f[i] == "#") return true;
            if (j == t.Length) return false;
            return (f[i] == "+" || f[i] == t[j]) && Match(f, i + 1, t, j + 1);
        }
    }

    [Fact]
    public void Matches_AgreesWithReference()
    {
        var topicLevel = Gen.Elements("", "a", "b", "$x", "ab");
        var filterLevel = Gen.Elements("", "a", "b", "$x", "+", "+", "#");
        var topics = Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(topicLevel, n)).Select(l => string.Join('/', l))
            .Where(t => t.Length > 0); // "" is not a topic name
        var filters = Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(filterLevel, n)).Select(l => string.Join('/', l))
            .Where(f => Topics.IsValidTopicFilter(f));
        var pairs = filters.SelectMany(f => topics.Select(t => (Filter: f, Topic: t)));
        Prop.ForAll(Arb.From(pairs), p => Topics.Matches(p.Filter, p.Topic) == ReferenceMatches(p.Filter, p.Topic))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(2000));
    }
}
