using Midge.Core.Messages;
using Midge.Core.Sessions;
using Midge.Protocol;

namespace Midge.Core.Routing;

/// <summary>
/// What one receiver gets of a message, besides the message itself: the per-subscriber fields a
/// <see cref="DeliveryRule"/> decided, written into the PUBLISH at encode time.
/// </summary>
/// <param name="QoS">The outgoing QoS.</param>
/// <param name="Retain">The RETAIN flag to send.</param>
/// <param name="SubscriptionIds">The subscription identifiers to send; null for none. An array the
/// subscription made once (<see cref="Subscription.SubscriptionIds"/>), or, for a merged delivery that carries two
/// or more, one made for it; nobody writes to it.</param>
internal readonly record struct Delivery(QoS QoS, bool Retain, uint[]? SubscriptionIds)
{
    /// <summary>One delivery for two subscriptions of one session that both match (overlapping_subscriptions
    /// merge): the higher QoS, RETAIN if either keeps it, and both subscriptions' identifiers, in match order. Only
    /// here is an array allocated, and only when both carry identifiers (a session with 2+ matching
    /// identified subscriptions: one array per further identifier).</summary>
    public Delivery MergeWith(in Delivery other) => new(
        other.QoS > QoS ? other.QoS : QoS,
        Retain | other.Retain,
        SubscriptionIds is null ? other.SubscriptionIds
            : other.SubscriptionIds is null ? SubscriptionIds
            : [.. SubscriptionIds, .. other.SubscriptionIds]);
}

/// <summary>
/// The delivery decision, written once for every path a message takes to a subscriber (single, merged and
/// per-subscription fan-out, shared groups, retained messages on subscribe): whether it goes at all (No Local), at
/// which QoS (the lower of published and granted, or the granted with <c>upgrade_outgoing_qos</c>), with which
/// RETAIN flag (Retain As Published) and which subscription identifiers. A subscriber that is another broker's
/// bridge (<see cref="Session.IsBridge"/>: the bridge bit in its CONNECT) gets No Local and Retain As Published on
/// every subscription, as Mosquitto treats its <c>is_bridge</c> clients: a message the bridge brought in never goes
/// back out through it, and a retained message crosses as retained. Allocates nothing.
/// </summary>
internal readonly struct DeliveryRule(Message message, bool upgradeOutgoingQoS)
{
    /// <summary>Decides the delivery of the message to <paramref name="subscriber"/> through
    /// <paramref name="subscription"/>; false when No Local keeps the publisher's own message from it
    /// (MQTT-3.8.3-3), or the subscriber is the bridge that brought the message in.</summary>
    public bool TryDecide(Session subscriber, Subscription subscription, out Delivery delivery)
    {
        bool bridge = subscriber.IsBridge;
        if ((subscription.NoLocal || bridge) && subscriber.ClientId == message.OriginClientId)
        {
            delivery = default;
            return false;
        }
        // Without Retain As Published, a message routed live goes with RETAIN 0 (MQTT-3.3.1-12).
        delivery = Decide(subscription, (subscription.RetainAsPublished || bridge) && message.Retain);
        return true;
    }

    /// <summary>The delivery of a retained message because of a new subscription: RETAIN 1 whatever Retain As
    /// Published says (MQTT-3.3.1-8). No Local filters messages as they are routed; Midge has never applied it to
    /// retained ones sent on subscribe.</summary>
    public Delivery ForRetained(Subscription subscription) => Decide(subscription, retain: true);

    private Delivery Decide(Subscription subscription, bool retain) =>
        new(OutgoingQoS(message.QoS, subscription.QoS, upgradeOutgoingQoS), retain, subscription.SubscriptionIds);

    public static QoS OutgoingQoS(QoS published, QoS granted, bool upgrade) =>
        upgrade ? granted : (published < granted ? published : granted);
}
