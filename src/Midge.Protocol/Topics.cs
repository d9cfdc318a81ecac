namespace Midge.Protocol;

/// <summary>Topic name and topic filter rules (MQTT 3.1.1 section 4.7, MQTT 5.0 section 4.7).</summary>
public static class Topics
{
    /// <summary>A topic name: at least one character, no '+' or '#', no U+0000, at most 65535 UTF-8 bytes.</summary>
    public static bool IsValidTopicName(ReadOnlySpan<char> topic) => throw new NotImplementedException();

    /// <summary>A topic filter: '#' only as the last level and alone in it, '+' alone in its level.</summary>
    public static bool IsValidTopicFilter(ReadOnlySpan<char> filter) => throw new NotImplementedException();

    /// <summary>Whether a topic name matches a filter, '$'-topics not matched by a leading wildcard.</summary>
    public static bool Matches(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic) => throw new NotImplementedException();

    public static bool HasWildcards(ReadOnlySpan<char> filter) => filter.IndexOfAny('+', '#') >= 0;
}
