namespace Midge.Security.Tests;

public class AclFileTests
{
    private const string Sample = """
        # anonymous clients
        topic read public/#
        topic deny public/secret/#

        user alice
        topic readwrite alice/#
        topic write shared/in
        topic read $SYS/#
        topic deny alice/private

        user bob
        topic bob/#
        pattern read devices/%c/config
        pattern write devices/%c/state
        pattern readwrite users/%u/#
        pattern deny users/%u/locked
        pattern read prefix%u/x
        """;

    private static readonly AclFile Acl = AclFile.Parse(Sample, "acl");

    [Theory]
    // user, client id, topic, read, write
    [InlineData(null, "anon1", "public/news", true, false)]
    [InlineData(null, "anon1", "public/secret/x", false, false)]
    [InlineData(null, "anon1", "alice/x", false, false)]
    [InlineData("alice", "c1", "alice/x", true, true)]
    [InlineData("alice", "c1", "alice", true, true)]
    [InlineData("alice", "c1", "alice/private", false, false)]
    [InlineData("alice", "c1", "shared/in", false, true)]
    [InlineData("alice", "c1", "public/news", false, false)]
    [InlineData("alice", "c1", "$SYS/broker/uptime", true, false)]
    [InlineData("alice", "c1", "bob/x", false, false)]
    [InlineData("bob", "c2", "bob/x", true, true)]
    [InlineData("bob", "c2", "alice/x", false, false)]
    // Patterns apply to everyone, even when written inside a user section.
    [InlineData("alice", "dev7", "devices/dev7/config", true, false)]
    [InlineData("alice", "dev7", "devices/dev7/state", false, true)]
    [InlineData("alice", "dev7", "devices/dev8/config", false, false)]
    [InlineData(null, "dev7", "devices/dev7/config", true, false)]
    [InlineData("carol", "c3", "users/carol/a/b", true, true)]
    [InlineData("carol", "c3", "users/carol", true, true)]
    [InlineData("carol", "c3", "users/dave/a", false, false)]
    [InlineData("carol", "c3", "users/carol/locked", false, false)]
    // %u needs a user name; anonymous clients never match it.
    [InlineData(null, "c3", "users/%u/a", false, false)]
    [InlineData(null, "c3", "users//a", false, false)]
    // Only whole levels are substituted: "prefix%u" is a literal level.
    [InlineData("carol", "c3", "prefixcarol/x", false, false)]
    [InlineData("carol", "c3", "prefix%u/x", true, false)]
    // A user with no section of its own gets only the patterns.
    [InlineData("zed", "c9", "public/news", false, false)]
    public void Read_and_write_table(string? user, string clientId, string topic, bool read, bool write)
    {
        var expected = (read ? AclAccess.Read : 0) | (write ? AclAccess.Write : 0);
        Assert.Equal(expected, Acl.Check(user, clientId, topic, AclAccess.ReadWrite));
        Assert.Equal(read, Acl.ForClient(user, clientId).CanRead(topic));
        Assert.Equal(write, Acl.ForClient(user, clientId).CanWrite(topic));
    }

    [Theory]
    [InlineData("a+b", "c1")]
    [InlineData("a#b", "c1")]
    [InlineData("a/b", "c1")]
    [InlineData("carol", "c+1")]
    [InlineData("carol", "c#1")]
    [InlineData("carol", "c/1")]
    public void Wildcards_or_slashes_in_identities_never_match_patterns(string user, string clientId)
    {
        var acl = AclFile.Parse("pattern readwrite users/%u/#\npattern readwrite devices/%c/#\npattern read everyone/#\n", "acl");
        var c = acl.ForClient(user, clientId);
        Assert.False(c.CanRead($"users/{user}/x"));
        Assert.False(c.CanWrite($"devices/{clientId}/x"));
        Assert.False(c.CanRead("everyone/x"));
        Assert.False(c.CanRead("users/a/x"));
        Assert.False(c.CanEverRead("#"));
        // A plain identity still matches.
        Assert.True(acl.ForClient("carol", "c1").CanRead("everyone/x"));
    }

    [Fact]
    public void Own_rules_still_apply_to_identities_with_wildcards()
    {
        var acl = AclFile.Parse("user a+b\ntopic read x/#\npattern read users/%u\n", "acl");
        Assert.True(acl.ForClient("a+b", "c").CanRead("x/y"));
        Assert.False(acl.ForClient("a+b", "c").CanRead("users/a+b"));
    }

    [Fact]
    public void Deny_is_checked_before_grants_regardless_of_order()
    {
        var acl = AclFile.Parse("user u\ntopic readwrite a/#\ntopic deny a/b\ntopic readwrite a/b\n", "acl");
        var c = acl.ForClient("u", "c");
        Assert.False(c.CanRead("a/b"));
        Assert.False(c.CanWrite("a/b"));
        Assert.True(c.CanRead("a/c"));
        // A pattern deny does not beat a grant of the user's own section (Mosquitto checks the section first).
        var acl2 = AclFile.Parse("user u\ntopic read a/#\npattern deny a/%u\npattern read b/#\npattern deny b/%u\n", "acl");
        var c2 = acl2.ForClient("u", "c");
        Assert.True(c2.CanRead("a/u"));
        Assert.False(c2.CanRead("b/u"));
        Assert.True(c2.CanRead("b/v"));
    }

    [Fact]
    public void Dollar_topics_need_dollar_rules_and_sys_is_never_writable()
    {
        var acl = AclFile.Parse("topic readwrite #\ntopic readwrite +/x\ntopic readwrite $SYS/#\ntopic readwrite $share/#\n", "acl");
        var c = acl.ForClient(null, "c");
        Assert.True(c.CanRead("a/b"));
        Assert.False(AclFile.Parse("topic readwrite #\n", "acl").ForClient(null, "c").CanRead("$SYS/broker/uptime"));
        Assert.False(AclFile.Parse("topic readwrite +/x\n", "acl").ForClient(null, "c").CanRead("$foo/x"));
        Assert.True(c.CanRead("$SYS/broker/uptime"));
        Assert.False(c.CanWrite("$SYS/broker/uptime"));
        Assert.True(c.CanWrite("$SYS/broker/connection/bridge1/state"));
        Assert.False(c.CanWrite("$share/g/t"));
    }

    [Fact]
    public void No_section_and_no_patterns_means_no_access()
    {
        var acl = AclFile.Parse("user alice\ntopic a\n", "acl");
        Assert.Equal(AclAccess.None, acl.Check("bob", "c", "a", AclAccess.ReadWrite));
        Assert.Equal(AclAccess.None, acl.Check(null, "c", "a", AclAccess.ReadWrite));
        Assert.Equal(AclAccess.ReadWrite, acl.Check("alice", "c", "a", AclAccess.ReadWrite));
        var empty = AclFile.Parse("", "acl");
        Assert.Equal(AclAccess.None, empty.Check("alice", "c", "a", AclAccess.ReadWrite));
    }

    [Theory]
    // filter, can ever read (for user "u", client "c")
    [InlineData("r/x", true)]
    [InlineData("r/#", true)]
    [InlineData("#", true)]
    [InlineData("+/x", true)]
    [InlineData("+/+/+", true)]
    [InlineData("w/x", false)]
    [InlineData("w/#", false)]
    [InlineData("nothing/here", false)]
    [InlineData("r", true)]            // "r/#" matches "r"
    [InlineData("d/x", false)]          // a deny covers the whole filter
    [InlineData("d/#", true)]           // the deny covers d/x only: d/y may be readable
    [InlineData("d/+", true)]
    [InlineData("$SYS/#", true)]        // overlaps the $SYS/broker/# grant
    [InlineData("$foo/#", false)]       // "#"-style grants never match $ topics
    [InlineData("$SYS/broker/+", true)] // explicit $SYS grant
    [InlineData("own/c/in", true)]      // pattern %c
    [InlineData("own/other/in", false)]
    [InlineData("home/u/a", true)]      // pattern %u
    [InlineData("home/+/a", true)]
    [InlineData("home/v/a", false)]
    [InlineData("bad/filter/#/x", false)]
    public void CanEverRead_for_subscription_filters(string filter, bool expected)
    {
        var acl = AclFile.Parse("""
            user u
            topic read r/#
            topic write w/#
            topic read d/#
            topic deny d/x
            topic read $SYS/broker/#
            pattern read own/%c/in
            pattern read home/%u/#
            """, "acl");
        Assert.Equal(expected, acl.ForClient("u", "c").CanEverRead(filter));
    }

    [Fact]
    public void CanEverRead_with_a_read_everything_rule()
    {
        var acl = AclFile.Parse("topic read #\ntopic deny secret/#\n", "acl").ForClient(null, "c");
        Assert.True(acl.CanEverRead("#"));
        Assert.True(acl.CanEverRead("a/+/b"));
        Assert.False(acl.CanEverRead("secret/#"));
        Assert.False(acl.CanEverRead("secret/+/x"));
        Assert.False(acl.CanEverRead("$SYS/#"));
    }

    [Fact]
    public void Checker_answers_publish_deliver_and_subscribe()
    {
        var checker = new AclFileChecker(Acl);
        var alice = new ClientIdentity("c1", "alice");
        var anon = new ClientIdentity("a1", null);
        Assert.True(checker.CanPublish(alice, "alice/x"));
        Assert.False(checker.CanPublish(alice, "public/x"));
        Assert.True(checker.CanDeliver(anon, "public/x"));
        Assert.False(checker.CanPublish(anon, "public/x"));
        Assert.Equal(SubscribeDecision.Allow, checker.CanSubscribe(anon, "public/#"));
        Assert.Equal(SubscribeDecision.Allow, checker.CanSubscribe(anon, "#"));
        Assert.Equal(SubscribeDecision.Deny, checker.CanSubscribe(anon, "alice/#"));
        Assert.Equal(SubscribeDecision.Allow, checker.CanSubscribe(anon, "$share/g/public/#"));
        Assert.Equal(SubscribeDecision.Deny, checker.CanSubscribe(anon, "$share/g/alice/#"));
        Assert.Equal(SubscribeDecision.Deny, checker.CanSubscribe(anon, "$share/bad"));

        var lenient = new AclFileChecker(Acl) { RefuseUnreadableSubscriptions = false };
        Assert.Equal(SubscribeDecision.Allow, lenient.CanSubscribe(anon, "alice/#"));

        var bridge = new ClientIdentity("br", null) { IsBridge = true };
        Assert.True(checker.CanPublish(bridge, "anything"));
        Assert.False(checker.CanPublish(bridge, "$SYS/x"));

        // Reload swaps the rules for identities already seen.
        Assert.True(checker.CanPublish(alice, "alice/x"));
        checker.Reload(AclFile.Parse("user alice\ntopic read alice/#\n", "acl2"));
        Assert.False(checker.CanPublish(alice, "alice/x"));
        Assert.True(checker.CanDeliver(alice, "alice/x"));
    }

    [Theory]
    [InlineData("topic", 1, "Empty topic")]
    [InlineData("topic foo bar", 1, "Invalid topic access type \"foo\"")]
    [InlineData("user", 1, "Missing username")]
    [InlineData("# ok\n\nbogus line", 3, "Invalid line")]
    [InlineData("topic read a/#/b", 1, "Invalid ACL topic")]
    [InlineData("user a\npattern write a+", 2, "Invalid ACL topic")]
    public void Malformed_lines_name_file_and_line(string text, int line, string message)
    {
        var e = Assert.Throws<AclFileException>(() => AclFile.Parse(text, "/etc/acl"));
        Assert.StartsWith($"/etc/acl:{line}: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Grammar_details_follow_mosquitto()
    {
        var acl = AclFile.Parse("topic read\n  # indented comment\nuser   spaced name  \r\ntopic   write    a b  \r\ntopic\tread\tt\n", "acl");
        Assert.Equal(AclAccess.ReadWrite, acl.AnonymousRules.Single().Access);
        Assert.Equal("read", acl.AnonymousRules.Single().Topic);
        Assert.Equal(["a b", "t"], acl.RulesFor("spaced name").Select(r => r.Topic));
        Assert.Equal(AclAccess.Write, acl.Check("spaced name", "c", "a b", AclAccess.ReadWrite));
        // Sections with the same name merge.
        var merged = AclFile.Parse("user u\ntopic a\nuser v\ntopic b\nuser u\ntopic c\n", "acl");
        Assert.Equal(["a", "c"], merged.RulesFor("u").Select(r => r.Topic));
    }

    [Fact]
    public void Partial_level_substitution_is_reported()
    {
        Assert.Contains(Acl.Diagnostics, d => d.StartsWith("acl:17:", StringComparison.Ordinal) && d.Contains("whole level"));
        var acl = AclFile.Parse("pattern read a/b\n", "f");
        Assert.Contains(acl.Diagnostics, d => d.StartsWith("f:1:", StringComparison.Ordinal) && d.Contains("does not contain"));
    }

    [Fact]
    public void Bad_inputs_do_not_throw_and_are_refused()
    {
        var c = Acl.ForClient("alice", "c1");
        Assert.False(c.CanRead(""));
        Assert.False(c.CanWrite(""));
        Assert.False(c.CanRead("alice/+"));
        Assert.False(c.CanWrite("alice/#"));
        Assert.False(c.CanEverRead(""));
        Assert.False(c.CanRead(new string('x', 1 << 20)));
        Assert.True(c.CanRead("alice/" + new string('x', 20000)));
        Assert.False(Acl.ForClient("\uD800", "\uDC00").CanRead("public/x"));
        Assert.Equal(AclAccess.None, Acl.Check("alice\0", "c", "alice/x", AclAccess.ReadWrite));
        var huge = AclFile.Parse(string.Concat(Enumerable.Repeat("topic read a/b/c\n", 60_000)), "huge");
        Assert.Equal(60_000, huge.AnonymousRules.Count);

        using var dir = new TempDir();
        var f = dir.File("acl");
        File.WriteAllBytes(f, [.. "topic read a\n"u8, 0xff, 0xfe, (byte)'\n']);
        var e = Assert.Throws<AclFileException>(() => AclFile.Load(f));
        Assert.StartsWith($"{f}:2:", e.Message);
        Assert.Throws<SecurityFileException>(() => AclFile.Load(dir.File("missing")));
    }
}
