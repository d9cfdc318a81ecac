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
            SubscriptionIds = value != 0 ? [value] : null;
        }
    }

    /// <summary>The identifier as a delivery carries it (<see cref="Protocol.OutgoingPublish.SubscriptionIdentifiers"/>):
    /// made once, when the subscription is, and shared by every delivery through it; null when there is none.
    /// Nothing writes to it.</summary>
    internal uint[]? SubscriptionIds { get; private init; }
    /// <summary>Taken through <c>$exclusive/</c>: no other session may hold this filter meanwhile.</summary>
    public bool Exclusive { get; init; }
    /// <summary>The filter as the client sent it (before the mount point was applied).</summary>
    public string ClientFilter { get; init; } = Filter;
}
