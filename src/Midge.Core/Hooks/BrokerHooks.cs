using Microsoft.Extensions.Logging;
using Midge.Core.Messages;
using Midge.Protocol;

namespace Midge.Core.Hooks;

/// <summary>
/// Every hook point of the broker, in one place (<c>broker.Hooks</c>). Decision points (<see cref="Authenticate"/>,
/// <see cref="Authorize"/>) are awaited; the others tell what happened and must return at once. With nothing
/// attached a point costs one check. docs/embedding.md lists them with examples.
/// </summary>
public sealed class BrokerHooks
{
    internal BrokerHooks(ILogger logger)
    {
        Authenticate = new("client.authenticate", logger);
        Authorize = new("client.authorize", logger);
        ClientConnect = new("client.connect", logger);
        ClientConnected = new("client.connected", logger);
        ClientDisconnected = new("client.disconnected", logger);
        SessionSubscribed = new("session.subscribed", logger);
        SessionUnsubscribed = new("session.unsubscribed", logger);
        SessionExpired = new("session.expired", logger);
        MessagePublish = new("message.publish", logger);
        MessageDelivered = new("message.delivered", logger);
        MessageAcknowledged = new("message.acknowledged", logger);
        MessageDropped = new("message.dropped", logger);
        RetainedChanged = new("retained.changed", logger);
    }

    /// <summary>A CONNECT's credentials, before the password file and <c>allow_anonymous</c>: Allow lets the client
    /// in (the password file is not asked), Deny refuses it (CONNACK 0x87; 3.x: 5), Defer leaves it to them.</summary>
    public DecisionPoint<AuthenticateContext> Authenticate { get; }

    /// <summary>A PUBLISH (to its topic) or one filter of a SUBSCRIBE, before the ACL file: Allow skips the ACL file,
    /// Deny refuses (PUBACK/PUBREC or SUBACK 0x87; 3.x SUBACK 0x80, and a refused 3.x PUBLISH is acknowledged and
    /// dropped, as Mosquitto does), Defer leaves it to the ACL file.</summary>
    public DecisionPoint<AuthorizeContext> Authorize { get; }

    /// <summary>A CONNECT arrived (before anything is checked).</summary>
    public HookPoint<ClientEvent> ClientConnect { get; }

    /// <summary>A client is connected: its CONNACK is on its way and its session attached.</summary>
    public HookPoint<ClientEvent> ClientConnected { get; }

    /// <summary>A connected client's connection ended (for any reason, takeover included).</summary>
    public HookPoint<ClientEvent> ClientDisconnected { get; }

    /// <summary>A session subscribed to a filter (the filter as the broker keeps it, mount point included).</summary>
    public HookPoint<SubscriptionEvent> SessionSubscribed { get; }

    /// <summary>A session's subscription ended (UNSUBSCRIBE, or an ACL reload took it away).</summary>
    public HookPoint<SubscriptionEvent> SessionUnsubscribed { get; }

    /// <summary>An offline session reached its expiry and was discarded.</summary>
    public HookPoint<SessionEvent> SessionExpired { get; }

    /// <summary>A message was accepted for routing: from a client (after authorisation), a will, <c>$SYS</c>, or an
    /// in-process publish. Fired before it reaches any subscriber.</summary>
    public HookPoint<MessageEvent> MessagePublish { get; }

    /// <summary>A PUBLISH of a message was handed to a client's writer.</summary>
    public HookPoint<DeliveryEvent> MessageDelivered { get; }

    /// <summary>A client finished a QoS 1 (PUBACK) or QoS 2 (PUBCOMP) delivery.</summary>
    public HookPoint<DeliveryEvent> MessageAcknowledged { get; }

    /// <summary>A message was dropped for a client: its queue was full, it was too large for the client, or the broker
    /// refused it (rate, memory_limit).</summary>
    public HookPoint<DropEvent> MessageDropped { get; }

    /// <summary>The retained message of a topic was set or cleared.</summary>
    public HookPoint<RetainedEvent> RetainedChanged { get; }
}

/// <summary>Who is connecting, for <see cref="BrokerHooks.Authenticate"/>.</summary>
/// <param name="ClientId">The client id (assigned by the broker when the client sent none).</param>
/// <param name="Username">The user name (the certificate's, on a listener that takes it from there); null if none.</param>
/// <param name="Password">The password bytes; null if none.</param>
/// <param name="RemoteEndPoint">The client's address, as the log shows it.</param>
/// <param name="Version">The protocol version of the CONNECT.</param>
/// <param name="ListenerPort">The port of the listener it came in on.</param>
public sealed record AuthenticateContext(string ClientId, string? Username, ReadOnlyMemory<byte>? Password, string RemoteEndPoint,
    ProtocolVersion Version, int ListenerPort);

/// <summary>What a client asks to do, for <see cref="BrokerHooks.Authorize"/>.</summary>
/// <param name="ClientId">The client id.</param>
/// <param name="Username">Its user name, if any.</param>
/// <param name="Action">Publish or subscribe.</param>
/// <param name="Topic">The topic of a PUBLISH or the filter of a subscription (mount point included).</param>
/// <param name="QoS">The QoS published with, or asked for.</param>
/// <param name="Retain">The retain flag of a PUBLISH.</param>
public sealed record AuthorizeContext(string ClientId, string? Username, AuthorizeAction Action, string Topic, QoS QoS, bool Retain);

/// <summary>What <see cref="AuthorizeContext"/> asks for.</summary>
public enum AuthorizeAction
{
    Publish,
    Subscribe,
}

/// <summary>A client connecting, connected or gone.</summary>
public readonly record struct ClientEvent(string? ClientId, string? Username, string RemoteEndPoint, ProtocolVersion Version);

/// <summary>A subscription made or ended.</summary>
public readonly record struct SubscriptionEvent(string ClientId, string Filter, QoS QoS);

/// <summary>A session's end.</summary>
public readonly record struct SessionEvent(string ClientId);

/// <summary>A message accepted for routing. <see cref="Message"/> is shared and must not be changed.</summary>
public readonly record struct MessageEvent(Message Message);

/// <summary>A message handed to, or acknowledged by, one client.</summary>
public readonly record struct DeliveryEvent(string ClientId, Message Message, QoS QoS);

/// <summary>A message dropped for the client <see cref="ClientId"/> (null: for a shared group with no member online),
/// or, with <see cref="Message"/> null, a PUBLISH refused from its publisher <see cref="ClientId"/> (rate, topic depth,
/// memory_limit). <see cref="Reason"/> says why, for a log.</summary>
public readonly record struct DropEvent(string? ClientId, Message? Message, string Reason);

/// <summary>The retained message of <see cref="Topic"/> is now <see cref="Message"/> (null: cleared).</summary>
public readonly record struct RetainedEvent(string Topic, Message? Message);
