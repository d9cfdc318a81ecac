namespace Midge.Persistence;

/// <summary>What a recorded change does (one per recording method of the store).</summary>
internal enum ChangeKind : byte
{
    SessionSaved,
    SessionRemoved,
    SessionUpdated,
    SubscriptionSet,
    SubscriptionRemoved,
    MessageQueued,
    MessageDequeued,
    InflightAdded,
    InflightAdvanced,
    InflightCompleted,
    IncomingQoS2Added,
    IncomingQoS2Removed,
    WillChanged,
    RetainedSet,
    RetainedRemoved,
    TotalsSaved,
    BanSet,
    BanRemoved,
}

/// <summary>
/// One change as the store records it, waiting in a batch: a struct in a list, so recording one allocates nothing.
/// <see cref="Key"/> is the client id (the topic for a retained message, who for a ban); <see cref="Record"/> the
/// record passed in (or the filter of a removed subscription); <see cref="Number"/> a sequence, packet id, expiry
/// interval or ban kind;
/// <see cref="Extra"/> an inflight state, or a disconnection time in UTC ticks (<see cref="NoTime"/> for none).
/// </summary>
internal readonly record struct Change(ChangeKind Kind, string Key, object? Record = null, long Number = 0, long Extra = 0)
{
    public const long NoTime = -1;
}
