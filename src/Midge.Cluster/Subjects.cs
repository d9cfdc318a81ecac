using System.Text;

namespace Midge.Cluster;

/// <summary>
/// MQTT topics and filters as NATS subjects. Every topic level becomes one subject token, escaped so that no
/// MQTT-legal level can break NATS's grammar or mean a wildcard, and so that two different levels never give the
/// same token: printable ASCII passes except <c>.</c>, <c>*</c>, <c>&gt;</c> and the escape character <c>_</c>;
/// every other byte of the level's UTF-8 (spaces, control characters, non-ASCII, and those four) becomes
/// <c>_</c> and two upper-case hex digits; an empty level (as in <c>a//b</c> or <c>/a</c>) is <c>_</c> alone,
/// which no escape produces. Filters map level by level (<c>+</c> is <c>*</c>, <c>#</c> is <c>&gt;</c>), so NATS
/// matches a subject against a filter's subjects exactly when MQTT matches the topic against the filter.
/// </summary>
/// <remarks>
/// Topics that start with <c>$</c> live under their own prefix (<c>{prefix}.d.</c>, the others under
/// <c>{prefix}.m.</c>), so that a filter starting with <c>+</c> or <c>#</c>, which MQTT keeps from matching them
/// (MQTT-4.7.2-1), does not see them in NATS either. <c>a/#</c> matches <c>a</c> too: it maps to two subjects,
/// <c>a.&gt;</c> and <c>a</c>.
/// </remarks>
public static class Subjects
{
    /// <summary>NATS's default limit on a control line is 4,096 bytes; a subject longer than this (with the
    /// command around it) cannot be published or subscribed.</summary>
    public const int MaxSubjectLength = 3_800;

    /// <summary>The subject <paramref name="topic"/> is published on, under <paramref name="prefix"/>; null when it
    /// would be longer than <see cref="MaxSubjectLength"/>.</summary>
    public static string? ForTopic(string prefix, string topic)
    {
        var sb = new StringBuilder(prefix.Length + topic.Length + 8);
        sb.Append(prefix).Append(topic.StartsWith('$') ? ".d" : ".m");
        foreach (var level in topic.Split('/'))
        {
            sb.Append('.');
            AppendToken(sb, level);
        }
        return sb.Length > MaxSubjectLength ? null : sb.ToString();
    }

    /// <summary>Whether <paramref name="topic"/> has a subject (<see cref="ForTopic"/> is not null), without making it
    /// when it is short enough to fit whatever its characters (an escaped character takes three bytes, a UTF-16 unit at
    /// most nine).</summary>
    public static bool Fits(string prefix, string topic) =>
        prefix.Length + 3 + 9 * topic.Length <= MaxSubjectLength || ForTopic(prefix, topic) is not null;

    /// <summary>The subjects that carry every topic <paramref name="filter"/> matches (one, or two for a filter
    /// ending in <c>/#</c>); empty when one would be longer than <see cref="MaxSubjectLength"/>.</summary>
    public static IReadOnlyList<string> ForFilter(string prefix, string filter)
    {
        var levels = filter.Split('/');
        bool dollar = filter.StartsWith('$');
        var sb = new StringBuilder(prefix.Length + filter.Length + 8);
        sb.Append(prefix).Append(dollar ? ".d" : ".m");
        string? parent = null;
        for (int i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if (level == "#" && i == levels.Length - 1)
            {
                if (i > 0) parent = sb.ToString(); // "a/#" matches "a" too
                sb.Append(".>");
                break;
            }
            sb.Append('.');
            if (level == "+") sb.Append('*');
            else AppendToken(sb, level);
        }
        if (sb.Length > MaxSubjectLength) return [];
        return parent is null ? [sb.ToString()] : [sb.ToString(), parent];
    }

    /// <summary>One topic level as a subject token (see the type's remarks).</summary>
    public static string Token(string level)
    {
        var sb = new StringBuilder(level.Length + 2);
        AppendToken(sb, level);
        return sb.ToString();
    }

    private static void AppendToken(StringBuilder sb, string level)
    {
        if (level.Length == 0)
        {
            sb.Append('_');
            return;
        }
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < level.Length; i++)
        {
            char ch = level[i];
            if (ch is > ' ' and < (char)0x7F and not ('.' or '*' or '>' or '_'))
            {
                sb.Append(ch);
                continue;
            }
            int n;
            if (char.IsHighSurrogate(ch) && i + 1 < level.Length && char.IsLowSurrogate(level[i + 1]))
            {
                n = Encoding.UTF8.GetBytes(level.AsSpan(i, 2), utf8);
                i++;
            }
            else
            {
                n = Encoding.UTF8.GetBytes(level.AsSpan(i, 1), utf8);
            }
            foreach (byte b in utf8[..n]) sb.Append('_').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
