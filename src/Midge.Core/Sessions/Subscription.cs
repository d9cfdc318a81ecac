using Midge.Protocol;

namespace Midge.Core.Sessions;

/// <summary>A subscription of one session to one filter, with its MQTT 5 options.</summary>
public sealed record Subscription(string Filter, QoS QoS)
{
    public bool NoLocal { get; init; }
    public bool RetainAsPublished { get; init; }
    public RetainHandling RetainHandling { get; init; }
    /// <summary>MQTT 5 Subscription Identifier, 0 = none.</summary>
    public uint SubscriptionId
    {
        get;
        init
        {
            field = value;
            _subscriptionIds = new IdArray(value != 0 ? [value] : null);
        }
    }

    /// <summary>The identifier as a delivery carries it (<see cref="Protocol.OutgoingPublish.SubscriptionIdentifiers"/>):
    /// made once, when the subscription is, and shared by every delivery through it; null when there is none.
    /// Nothing writes to it.</summary>
    internal uint[]? SubscriptionIds => _subscriptionIds.Array;

    private readonly IdArray _subscriptionIds;

    /// <summary>Taken through <c>$exclusive/</c>: no other session may hold this filter meanwhile.</summary>
    public bool Exclusive { get; init; }
    /// <summary>The filter as the client sent it (before the mount point was applied).</summary>
    public string ClientFilter { get; init; } = Filter;

    /// <summary>Holds <see cref="SubscriptionIds"/> out of the record's equality: it follows from
    /// <see cref="SubscriptionId"/>, which is in it, so two subscriptions alike in every option stay equal.</summary>
    private readonly struct IdArray(uint[]? array) : IEquatable<IdArray>
    {
        public uint[]? Array { get; } = array;

        public bool Equals(IdArray other) => true;

        public override bool Equals(object? obj) => obj is IdArray;

        public override int GetHashCode() => 0;
    }
}
