using System.Collections.Frozen;
using System.Text;
using Midge.Protocol;

namespace Midge.Security;

/// <summary>Access bits of an ACL rule or request. <c>deny</c> rules carry <see cref="None"/>.</summary>
[Flags]
public enum AclAccess
{
    None = 0,
    /// <summary>Receive messages on the topic (checked when a message is delivered).</summary>
    Read = 1,
    /// <summary>Publish to the topic.</summary>
    Write = 2,
    ReadWrite = Read | Write,
}

/// <summary>One <c>topic</c> or <c>pattern</c> line.</summary>
/// <param name="Topic">The topic filter as written (patterns keep their <c>%u</c>/<c>%c</c>).</param>
/// <param name="Access">Granted bits; <see cref="AclAccess.None"/> for a <c>deny</c> rule.</param>
/// <param name="Line">1-based line number in the file.</param>
public sealed record AclRule(string Topic, AclAccess Access, int Line)
{
    public bool IsDeny => Access == AclAccess.None;
}

/// <summary>A malformed ACL file; the message starts with <c>file:line:</c>.</summary>
public sealed class AclFileException(string message) : FormatException(message);

/// <summary>
/// An immutable snapshot of a Mosquitto <c>acl_file</c>, swapped whole on SIGHUP.
/// </summary>
/// <remarks>
/// Grammar (Mosquitto 2.0): <c>user NAME</c> starts a section for that user (NAME is the rest of the line, trimmed);
/// <c>topic [read|write|readwrite|deny] FILTER</c> adds a rule to the current section, or to the anonymous section
/// (clients without a user name) before the first <c>user</c> line; <c>pattern [read|write|readwrite|deny] FILTER</c>
/// adds a rule for every client wherever it appears, with a level that is exactly <c>%u</c> replaced by the user name
/// and one that is exactly <c>%c</c> by the client id (Mosquitto 2.0.11 also substitutes inside a longer level, as in
/// <c>pre%u</c>; Midge keeps such text literally and reports it in <see cref="Diagnostics"/>). Without an access word the rule is readwrite, and as in
/// Mosquitto the filter is the rest of the line, so it may contain spaces (<c>topic read</c> alone is a readwrite
/// rule for the topic "read"). Lines starting with '#' (after blanks) and blank lines are ignored. Any other line,
/// an unknown access word, a missing topic or user name, or an invalid filter is an error naming file:line.
///
/// Evaluation (Mosquitto's <c>mosquitto_acl_check_default</c>), for each requested bit:
/// 1. the client's own section (its user's, or the anonymous one): a matching deny rule refuses, else a matching rule
///    with the bit grants;
/// 2. then the patterns, unless the user name or client id contains '+', '#' or '/' (such identities never match
///    patterns): a matching deny pattern refuses, else a matching pattern with the bit grants;
/// 3. otherwise refused. A client whose user has no section and with no patterns in the file is refused everything.
/// Rules never match a topic starting with '$' unless they start with '$' themselves (so <c>#</c> does not grant
/// <c>$SYS/...</c>). Writes to <c>$SYS</c> (except <c>$SYS/broker/connection/+/state</c>) and to <c>$share</c> are
/// refused before the file is consulted, as Mosquitto's <c>acl__check_dollar</c> does.
/// </remarks>
public sealed class AclFile
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly FrozenDictionary<string, RuleSet> _users;
    private readonly RuleSet? _anonymous;
    private readonly RuleSet? _patterns;

    private AclFile(FrozenDictionary<string, RuleSet> users, RuleSet? anonymous, RuleSet? patterns, string fileName,
        IReadOnlyList<string> diagnostics)
    {
        Diagnostics = diagnostics;
        _users = users;
        _anonymous = anonymous;
        _patterns = patterns;
        FileName = fileName;
    }

    public string FileName { get; }

    /// <summary>
    /// Warnings for the log, each <c>file:line: message</c>: patterns with neither %u nor %c as a whole level, and
    /// patterns where %u or %c is part of a longer level (Mosquitto 2.0.11 substitutes those too; Midge takes them
    /// literally).
    /// </summary>
    public IReadOnlyList<string> Diagnostics { get; }

    /// <summary>Rules of the anonymous section (before the first <c>user</c> line), in file order.</summary>
    public IReadOnlyList<AclRule> AnonymousRules => _anonymous?.All ?? [];

    /// <summary>All <c>pattern</c> rules, in file order.</summary>
    public IReadOnlyList<AclRule> Patterns => _patterns?.All ?? [];

    public IEnumerable<string> Users => _users.Keys;

    /// <summary>Rules of <c>user</c> sections named <paramref name="user"/> (sections with the same name merge).</summary>
    public IReadOnlyList<AclRule> RulesFor(string user) => _users.TryGetValue(user, out var set) ? set.All : [];

    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    /// <exception cref="SecurityFileException">The file cannot be read.</exception>
    /// <exception cref="AclFileException">A line is malformed.</exception>
    public static AclFile Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new SecurityFileException($"Error: Unable to open acl_file \"{path}\": {e.Message}", e);
        }
        string text;
        try
        {
            text = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            int line = 1 + bytes.AsSpan(0, FirstInvalidUtf8(bytes)).Count((byte)'\n');
            throw new AclFileException($"{path}:{line}: line is not valid UTF-8");
        }
        return Parse(text, path);
    }

    /// <summary>Parses the text of an ACL file.</summary>
    /// <exception cref="AclFileException">A line is malformed; the message starts with <c>fileName:line:</c>.</exception>
    public static AclFile Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        var users = new Dictionary<string, RuleSet.Builder>(StringComparer.Ordinal);
        var anonymous = new RuleSet.Builder();
        var patterns = new RuleSet.Builder();
        var diagnostics = new List<string>();
        string? currentUser = null;
        int lineNo = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNo++;
            var line = rawLine.AsSpan().Trim();
            if (line.IsEmpty || line[0] == '#') continue;
            int sp = line.IndexOfAny(' ', '\t');
            var keyword = sp < 0 ? line : line[..sp];
            var rest = sp < 0 ? [] : line[(sp + 1)..].TrimStart();
            if (keyword.SequenceEqual("user"))
            {
                if (rest.IsEmpty) throw Error(fileName, lineNo, "Missing username");
                currentUser = rest.ToString();
                if (!users.ContainsKey(currentUser)) users[currentUser] = new RuleSet.Builder();
            }
            else if (keyword.SequenceEqual("topic") || keyword.SequenceEqual("pattern"))
            {
                bool isPattern = keyword[0] == 'p';
                if (rest.IsEmpty) throw Error(fileName, lineNo, $"Empty topic in {keyword.ToString()} line");
                int sp2 = rest.IndexOfAny(' ', '\t');
                AclAccess access;
                string topic;
                if (sp2 < 0)
                {
                    access = AclAccess.ReadWrite;
                    topic = rest.ToString();
                }
                else
                {
                    var word = rest[..sp2];
                    topic = rest[(sp2 + 1)..].Trim().ToString();
                    access = word switch
                    {
                        "read" => AclAccess.Read,
                        "write" => AclAccess.Write,
                        "readwrite" => AclAccess.ReadWrite,
                        "deny" => AclAccess.None,
                        _ => throw Error(fileName, lineNo, $"Invalid topic access type \"{word.ToString()}\""),
                    };
                }
                if (!Topics.IsValidTopicFilter(topic))
                    throw Error(fileName, lineNo, $"Invalid ACL topic \"{topic}\"");
                var rule = new AclRule(topic, access, lineNo);
                if (isPattern)
                {
                    var levels = topic.Split('/');
                    if (levels.Any(l => l.Length > 2 && (l.Contains("%u", StringComparison.Ordinal) || l.Contains("%c", StringComparison.Ordinal))))
                        diagnostics.Add($"{fileName}:{lineNo}: %u/%c are substituted only as a whole level; \"{topic}\" keeps them literally");
                    else if (!levels.Any(l => l is "%u" or "%c"))
                        diagnostics.Add($"{fileName}:{lineNo}: ACL pattern \"{topic}\" does not contain %u or %c");
                    patterns.Add(rule);
                }
                else if (currentUser is null) anonymous.Add(rule);
                else users[currentUser].Add(rule);
            }
            else
            {
                throw Error(fileName, lineNo, $"Invalid line: {line.ToString()}");
            }
        }
        return new AclFile(
            users.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.Build(), StringComparer.Ordinal),
            anonymous.Count > 0 ? anonymous.Build() : null,
            patterns.Count > 0 ? patterns.Build() : null,
            fileName,
            diagnostics);
    }

    /// <summary>
    /// The bits of <paramref name="requested"/> that <paramref name="user"/> (null for an anonymous client) with
    /// <paramref name="clientId"/> is granted on the topic name <paramref name="topic"/>. Each bit is decided on its
    /// own (see the class remarks).
    /// </summary>
    public AclAccess Check(string? user, string clientId, string topic, AclAccess requested) =>
        ForClient(user, clientId).Check(topic, requested);

    /// <summary>
    /// The rules that apply to one client, with patterns already substituted; compute it once per connection and
    /// reuse it for every publish and delivery.
    /// </summary>
    public ClientAcl ForClient(string? user, string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        RuleSet? own = user is null ? _anonymous : _users.GetValueOrDefault(user);
        RuleSet? patterns = null;
        if (_patterns is not null && IsSafeForPatterns(user) && IsSafeForPatterns(clientId))
            patterns = _patterns.Substitute(user, clientId);
        return new ClientAcl(own, patterns);
    }

    /// <summary>
    /// Mosquitto's <c>acl__check_dollar</c> for a publish: writes to <c>$SYS</c> (other than a bridge's
    /// <c>$SYS/broker/connection/+/state</c>) and to <c>$share</c> are always refused.
    /// </summary>
    public static bool IsForbiddenDollarWrite(string topic)
    {
        if (topic.Length == 0 || topic[0] != '$') return false;
        if (topic.StartsWith("$SYS", StringComparison.Ordinal))
            return !Topics.Matches("$SYS/broker/connection/+/state", topic);
        return topic.StartsWith("$share", StringComparison.Ordinal);
    }

    // Mosquitto 2.0 refuses '+' and '#'; '/' is refused too so that a user name cannot reach into another level
    // of the tree (user "a/b" with "pattern home/%u/#" would otherwise read inside user "a"'s home).
    private static bool IsSafeForPatterns(string? name) => name is null || name.AsSpan().IndexOfAny("+#/") < 0;

    private static AclFileException Error(string file, int line, string message) => new($"{file}:{line}: {message}");

    private static int FirstInvalidUtf8(byte[] bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes.AsSpan(i), out _, out int consumed);
            if (status != System.Buffers.OperationStatus.Done) return i;
            i += consumed;
        }
        return bytes.Length;
    }
}

/// <summary>The deny and grant rules of one section, deny rules apart since they are checked first.</summary>
internal sealed class RuleSet
{
    public RuleSet(AclRule[] all)
    {
        All = all;
        Denies = all.Where(r => r.IsDeny).Select(r => r.Topic).ToArray();
        Reads = all.Where(r => (r.Access & AclAccess.Read) != 0).Select(r => r.Topic).ToArray();
        Writes = all.Where(r => (r.Access & AclAccess.Write) != 0).Select(r => r.Topic).ToArray();
    }

    public AclRule[] All { get; }
    public string[] Denies { get; }
    public string[] Reads { get; }
    public string[] Writes { get; }

    /// <summary>Replaces levels that are exactly %u or %c; drops rules with %u when there is no user name.</summary>
    public RuleSet? Substitute(string? user, string clientId)
    {
        var result = new List<AclRule>(All.Length);
        foreach (var rule in All)
        {
            var levels = rule.Topic.Split('/');
            bool skip = false;
            for (int i = 0; i < levels.Length; i++)
            {
                if (levels[i] == "%c")
                {
                    levels[i] = clientId;
                }
                else if (levels[i] == "%u")
                {
                    if (user is null)
                    {
                        skip = true;
                        break;
                    }
                    levels[i] = user;
                }
            }
            if (!skip) result.Add(rule with { Topic = string.Join('/', levels) });
        }
        return result.Count == 0 ? null : new RuleSet(result.ToArray());
    }

    internal sealed class Builder
    {
        private readonly List<AclRule> _rules = [];
        public int Count => _rules.Count;
        public void Add(AclRule rule) => _rules.Add(rule);
        public RuleSet Build() => new(_rules.ToArray());
    }
}

/// <summary>
/// The ACL of one connected client: its own section plus the substituted patterns. Immutable and cheap to query;
/// <see cref="AclFile.ForClient"/> builds it.
/// </summary>
public sealed class ClientAcl
{
    private readonly RuleSet? _own;
    private readonly RuleSet? _patterns;

    internal ClientAcl(RuleSet? own, RuleSet? patterns)
    {
        _own = own;
        _patterns = patterns;
    }

    /// <summary>May the client receive a message published on <paramref name="topic"/>?</summary>
    public bool CanRead(string topic) => Decide(topic, AclAccess.Read);

    /// <summary>May the client publish to <paramref name="topic"/>? (Includes the <c>$SYS</c>/<c>$share</c> rule.)</summary>
    public bool CanWrite(string topic) => !AclFile.IsForbiddenDollarWrite(topic) && Decide(topic, AclAccess.Write);

    /// <summary>The granted subset of <paramref name="requested"/> on the topic name <paramref name="topic"/>.</summary>
    public AclAccess Check(string topic, AclAccess requested)
    {
        var granted = AclAccess.None;
        if ((requested & AclAccess.Read) != 0 && CanRead(topic)) granted |= AclAccess.Read;
        if ((requested & AclAccess.Write) != 0 && CanWrite(topic)) granted |= AclAccess.Write;
        return granted;
    }

    /// <summary>
    /// Could any message delivered on <paramref name="filter"/> ever be readable? False only when no read rule's
    /// filter overlaps <paramref name="filter"/>, or a deny rule checked before every overlapping grant covers the
    /// whole filter; so refusing a SUBSCRIBE when this is false never refuses one that could receive something.
    /// <paramref name="filter"/> must be a plain (non-shared) topic filter.
    /// </summary>
    public bool CanEverRead(string filter)
    {
        if (!Topics.IsValidTopicFilter(filter)) return false;
        if (_own is not null)
        {
            if (AnyCovers(_own.Denies, filter)) return false;
            if (AnyOverlaps(_own.Reads, filter)) return true;
        }
        if (_patterns is not null)
        {
            if (AnyCovers(_patterns.Denies, filter)) return false;
            if (AnyOverlaps(_patterns.Reads, filter)) return true;
        }
        return false;
    }

    private bool Decide(string topic, AclAccess bit)
    {
        if (!Topics.IsValidTopicName(topic)) return false;
        if (_own is not null)
        {
            if (AnyMatches(_own.Denies, topic)) return false;
            if (AnyMatches(bit == AclAccess.Read ? _own.Reads : _own.Writes, topic)) return true;
        }
        if (_patterns is not null)
        {
            if (AnyMatches(_patterns.Denies, topic)) return false;
            if (AnyMatches(bit == AclAccess.Read ? _patterns.Reads : _patterns.Writes, topic)) return true;
        }
        return false;
    }

    private static bool AnyMatches(string[] rules, string topic)
    {
        foreach (var rule in rules)
            if (RuleMatches(rule, topic)) return true;
        return false;
    }

    private static bool AnyCovers(string[] rules, string filter)
    {
        foreach (var rule in rules)
            if (TopicAlgebra.Covers(rule, filter)) return true;
        return false;
    }

    private static bool AnyOverlaps(string[] rules, string filter)
    {
        foreach (var rule in rules)
            if (TopicAlgebra.Overlaps(rule, filter)) return true;
        return false;
    }

    // Mosquitto: a topic starting with '$' only matches a rule that starts with '$' too.
    internal static bool RuleMatches(string rule, string topic) =>
        rule.Length != 0 && topic.Length != 0 && (topic[0] != '$' || rule[0] == '$') && Topics.Matches(rule, topic);
}

/// <summary>Relations between two topic filters, with MQTT's matching rules ('$' topics excluded from wildcards).</summary>
internal static class TopicAlgebra
{
    /// <summary>Is there a topic name matched by both <paramref name="a"/> and <paramref name="b"/>?</summary>
    public static bool Overlaps(string a, string b)
    {
        var x = a.Split('/');
        var y = b.Split('/');
        // A topic starting with '$' is matched only by filters whose first level is that literal.
        if (IsWildcard(x[0]) != IsWildcard(y[0]))
        {
            var literal = IsWildcard(x[0]) ? y[0] : x[0];
            if (literal.StartsWith('$')) return false;
        }
        int i = 0;
        while (true)
        {
            bool xEnd = i == x.Length, yEnd = i == y.Length;
            if (xEnd && yEnd) return true;
            // "a/#" also matches "a": one side ended and the other continues with "#".
            if (xEnd) return y[i] == "#";
            if (yEnd) return x[i] == "#";
            if (x[i] == "#" || y[i] == "#") return true;
            if (x[i] != "+" && y[i] != "+" && x[i] != y[i]) return false;
            i++;
        }
    }

    /// <summary>Does <paramref name="outer"/> match every topic name that <paramref name="inner"/> matches?</summary>
    public static bool Covers(string outer, string inner)
    {
        var o = outer.Split('/');
        var n = inner.Split('/');
        // Topics matched by inner may start with '$' only if inner's first level is a '$' literal; then outer must
        // not start with a wildcard (a wildcard first level never matches '$' topics).
        if (!IsWildcard(n[0]) && n[0].StartsWith('$') && IsWildcard(o[0])) return false;
        int i = 0;
        while (true)
        {
            bool oEnd = i == o.Length, nEnd = i == n.Length;
            if (oEnd && nEnd) return true;
            if (!oEnd && o[i] == "#") return true;
            if (oEnd) return false;
            if (nEnd) return o.Length == i + 1 && o[i] == "#";
            if (n[i] == "#") return false;
            if (n[i] == "+")
            {
                if (o[i] != "+") return false;
            }
            else if (o[i] != "+" && o[i] != n[i])
            {
                return false;
            }
            i++;
        }
    }

    private static bool IsWildcard(string level) => level is "+" or "#";
}
