namespace Midge.Core.Retained;

/// <summary>
/// Retained messages by topic: set, replace, clear, and match a subscription filter (wildcards included,
/// '$'-topics not matched by leading wildcards) without scanning every retained topic. Thread-safe.
/// </summary>
public sealed class RetainedStore<TMessage> where TMessage : class
{
    /// <summary>Stores or replaces the retained message of <paramref name="topic"/>.</summary>
    public void Set(string topic, TMessage message) => throw new NotImplementedException();

    /// <summary>Removes the retained message of <paramref name="topic"/>; false if there was none.</summary>
    public bool Remove(string topic) => throw new NotImplementedException();

    public bool TryGet(string topic, out TMessage? message) => throw new NotImplementedException();

    /// <summary>Appends every retained message whose topic matches <paramref name="filter"/>.</summary>
    public void Match(string filter, List<TMessage> results) => throw new NotImplementedException();

    public int Count => throw new NotImplementedException();
}
