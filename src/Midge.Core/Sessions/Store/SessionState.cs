using Midge.Protocol;

namespace Midge.Core.Sessions.Store;

/// <summary>
/// Everything about one session that a session store keeps (<see cref="ISessionStore"/>): plain data, with wall-clock
/// times, so that it means the same in another process. A snapshot: the broker never changes one it has given out.
/// </summary>
/// <param name="ClientId">The client id that owns the session.</param>
public sealed record SessionState(string ClientId)
{
    /// <summary>MQTT 5 Session Expiry Interval in seconds; <see cref="uint.MaxValue"/> = never (a 3.x persistent
    /// session). Never 0 in a store: a session that ends with its connection is not stored.</summary>
    public uint ExpiryInterval { get; init; }

    /// <summary>When its last connection ended; null while a connection is attached (a session restored with null
    /// counts its expiry from the restart).</summary>
    public DateTimeOffset? DisconnectedAt { get; init; }

    /// <summary>Subscriptions with all their options; the filters carry the listener's mount point.</summary>
    public IReadOnlyList<Subscription> Subscriptions { get; init; } = [];

    /// <summary>Messages waiting for the client, front first (ascending <see cref="QueuedMessage.Sequence"/>).</summary>
    public IReadOnlyList<QueuedMessage> Queued { get; init; } = [];

    /// <summary>Messages sent and not yet acknowledged, in send order (ascending <see cref="InflightMessage.Sequence"/>).</summary>
    public IReadOnlyList<InflightMessage> Inflight { get; init; } = [];

    /// <summary>Packet ids of the client's QoS 2 PUBLISHes that were routed and await PUBREL, ascending.</summary>
    public IReadOnlyList<ushort> IncomingQoS2 { get; init; } = [];

    /// <summary>The will of the session's client: the current connection's, or one waiting for its delay.</summary>
    public StoredWill? Will { get; init; }
}

/// <summary>An application message as a store keeps it.</summary>
/// <param name="Topic">The topic, with the publisher's mount point.</param>
/// <param name="QoS">The QoS it was published with.</param>
/// <param name="Retain">The retain flag it was published with.</param>
public sealed record StoredMessage(string Topic, ReadOnlyMemory<byte> Payload, QoS QoS, bool Retain)
{
    /// <summary>The PUBLISH properties as published (payload format, content type, response topic, correlation data,
    /// user properties); what is left of the Message Expiry Interval is <see cref="ExpiresAt"/>.</summary>
    public MqttProperties? Properties { get; init; }

    /// <summary>The publisher's client id (No Local); null for a message the broker made.</summary>
    public string? OriginClientId { get; init; }

    /// <summary>The publisher's user name (check_retain_source).</summary>
    public string? OriginUserName { get; init; }

    /// <summary>When the MQTT 5 Message Expiry Interval runs out; null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
}

/// <summary>A message in a session's queue.</summary>
/// <param name="Sequence">Its number in the session's queue: increasing within the session, it names the message in
/// <see cref="ISessionStore.MessageDequeued"/>.</param>
/// <param name="QoS">The QoS it goes to the client with.</param>
/// <param name="Retain">The RETAIN flag it goes to the client with.</param>
/// <param name="SubscriptionIds">MQTT 5 Subscription Identifiers it goes with; null = none.</param>
public sealed record QueuedMessage(long Sequence, StoredMessage Message, QoS QoS, bool Retain, uint[]? SubscriptionIds);

/// <summary>A message sent to the client and not yet acknowledged (resent, DUP set, when the client comes back; or,
/// in <see cref="InflightState.AwaitingPubComp"/>, its PUBREL resent).</summary>
/// <param name="PacketId">The packet id it was sent with: unique among the session's messages in flight.</param>
/// <param name="Sequence">Send order within the session.</param>
public sealed record InflightMessage(ushort PacketId, long Sequence, StoredMessage Message, QoS QoS, bool Retain, uint[]? SubscriptionIds,
    InflightState State)
{
    /// <summary>The <see cref="QueuedMessage.Sequence"/> of the queued message that went in flight as this one; 0 when
    /// it was sent without waiting. A store removes that queued message with this change, so the move from the queue
    /// into flight is one change: a restart never finds it in both (sent twice) or in neither (lost). Not kept.</summary>
    public long FromQueue { get; init; }
}

/// <summary>A client's will.</summary>
/// <param name="Message">The PUBLISH it becomes (its properties without the Will Delay Interval).</param>
/// <param name="DelayInterval">MQTT 5 Will Delay Interval in seconds.</param>
public sealed record StoredWill(StoredMessage Message, uint DelayInterval)
{
    /// <summary>Set once the connection has ended and the will waits for its delay: when it is due. Null while the
    /// connection is up.</summary>
    public DateTimeOffset? DueAt { get; init; }
}

/// <summary>The broker's running totals that outlive a restart (the <c>$SYS</c> counters Mosquitto reports since its
/// start, here since the store was made).</summary>
public sealed record StoredTotals
{
    public long MessagesReceived { get; init; }
    public long MessagesSent { get; init; }
    public long PublishReceived { get; init; }
    public long PublishSent { get; init; }
    public long PublishDropped { get; init; }
    public long BytesReceived { get; init; }
    public long BytesSent { get; init; }
    public long ConnectsTotal { get; init; }
    public long ClientsMaximum { get; init; }
    public long ClientsExpired { get; init; }
}
