using Midge.Core.Protection;

namespace Midge.Core.Sessions.Store;

/// <summary>
/// Where the sessions that outlive their connections are kept, so that they survive the broker: the seam for an
/// embedded database (persistence across a restart, kill -9 included) and for a replicated store (a cluster). The
/// broker uses one only when it is given one (<see cref="Broker(Midge.Config.BrokerConfig, Microsoft.Extensions.Logging.ILoggerFactory?, TimeProvider?, ISessionStore?)"/>);
/// without one nothing is recorded and nothing costs. <see cref="MemorySessionStore"/> keeps the state in memory
/// (a broker restarted in the same process gets its sessions back); the contract tests
/// (<c>tests/Midge.Core.Tests/Sessions/SessionStoreContract.cs</c>) run against every implementation.
/// <para><b>What is stored.</b> Sessions whose Session Expiry Interval is not 0: a session that ends with its
/// connection cannot outlive a restart, which ends every connection. <see cref="SessionSaved"/> comes when a session
/// gains a lifetime (a new persistent session, or one whose connection set a lifetime), with its whole state;
/// <see cref="SessionRemoved"/> when it ends (expiry, clean start, an administrator) or loses its lifetime; in between,
/// one call per change. Retained messages are not session state (the retained store keeps them), nor is the retained
/// backlog of a connected client (messages the retained store holds anyway).</para>
/// <para><b>Order and threads.</b> The broker records the changes of one client id in the order it makes them (under
/// the session's lock, under the client id's lock in the client registry, or from its connection's read loop for
/// incoming QoS 2), so a store sees them in order per client id and must apply them in that order; changes of
/// different client ids come concurrently from many threads. A change that names a client id the store does not hold
/// (the session was removed meanwhile) is ignored. Queue sequence numbers increase within a session; packet ids are
/// unique among a session's messages in flight.</para>
/// <para><b>Cost.</b> The recording methods are called on the delivery path, some under a session's lock: they must
/// be quick and must not block or do I/O. A database store appends each change to its pending batch and writes
/// batches in one transaction each, in order (group commit); a change never reaches the disk without the changes
/// recorded before it.</para>
/// <para><b>Durability.</b> <see cref="FlushAsync"/> is the durability point: it completes when every change recorded
/// before the call is durable (committed to disk, or replicated). Before acknowledging what a restart must not lose,
/// the broker is to await it: the PUBACK/PUBREC of a QoS 1/2 PUBLISH that went to a stored session, so that the
/// message is on disk first; many acknowledgements then share one flush (the group commit). The in-memory store has
/// nothing to wait for, and the broker does not call it yet: holding acknowledgements back until a flush completes
/// (in order, without blocking a read loop) comes with the first store that writes to disk.</para>
/// <para><b>Restart.</b> <see cref="LoadAll"/> gives back every session held, as the changes left it; the broker calls
/// it once, when it starts, before any client connects.</para>
/// <para><b>Besides sessions</b> a store keeps the retained messages (<see cref="RetainedSet"/>, <see cref="RetainedRemoved"/>,
/// read back by <see cref="LoadRetained"/>; not <c>$SYS/</c> ones, which the broker makes again) and the broker's
/// running totals (<see cref="TotalsSaved"/>, <see cref="LoadTotals"/>), and the bans an administrator made
/// (<see cref="BanSet"/>, <see cref="BanRemoved"/>, <see cref="LoadBans"/>; not <c>flapping_detect</c>'s, which last
/// minutes). The changes of one retained topic, and of one ban, come in the order the broker made them.</para>
/// <para>The broker keeps the records it passes in (and their payloads) unchanged; a store may keep references to
/// them.</para>
/// </summary>
public interface ISessionStore
{
    /// <summary>Every session held, in no particular order.</summary>
    IReadOnlyList<SessionState> LoadAll();

    /// <summary>Stores a session, replacing whatever was held for its client id.</summary>
    void SessionSaved(SessionState state);

    /// <summary>Forgets a session and everything in it. Nothing to do when none is held.</summary>
    void SessionRemoved(string clientId);

    /// <summary>The session's Session Expiry Interval, or its connection state, changed: <paramref name="disconnectedAt"/>
    /// is when its connection ended, null while one is attached.</summary>
    void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt);

    /// <summary>A subscription was made, or replaced (same <see cref="Subscription.Filter"/>).</summary>
    void SubscriptionSet(string clientId, Subscription subscription);

    /// <summary>The subscription to <paramref name="filter"/> was removed.</summary>
    void SubscriptionRemoved(string clientId, string filter);

    /// <summary>A message joined the back of the session's queue.</summary>
    void MessageQueued(string clientId, QueuedMessage message);

    /// <summary>The queued message numbered <paramref name="sequence"/> left the queue (sent, expired, dropped, or
    /// handed to another member of its shared group). Usually the front one, not always.</summary>
    void MessageDequeued(string clientId, long sequence);

    /// <summary>A message was sent and waits for its acknowledgement.</summary>
    void InflightAdded(string clientId, InflightMessage message);

    /// <summary>The message in flight under <paramref name="packetId"/> moved on (QoS 2: PUBREC came, PUBREL sent).</summary>
    void InflightAdvanced(string clientId, ushort packetId, InflightState state);

    /// <summary>The flow of the message in flight under <paramref name="packetId"/> ended: the id is free.</summary>
    void InflightCompleted(string clientId, ushort packetId);

    /// <summary>The client's QoS 2 PUBLISH with <paramref name="packetId"/> was routed; it now awaits PUBREL.</summary>
    void IncomingQoS2Added(string clientId, ushort packetId);

    /// <summary>PUBREL released <paramref name="packetId"/>.</summary>
    void IncomingQoS2Removed(string clientId, ushort packetId);

    /// <summary>The session's will was set (a connection with a will, or a will now waiting for its delay) or
    /// cleared (null: none, published, or discarded by a normal DISCONNECT).</summary>
    void WillChanged(string clientId, StoredWill? will);

    /// <summary>Every retained message held, in no particular order (expired ones included: the broker drops them).</summary>
    IReadOnlyList<StoredMessage> LoadRetained();

    /// <summary>The retained message of <see cref="StoredMessage.Topic"/> was set, replacing whatever was held.</summary>
    void RetainedSet(StoredMessage message);

    /// <summary>The retained message of <paramref name="topic"/> was removed. Nothing to do when none is held.</summary>
    void RetainedRemoved(string topic);

    /// <summary>The totals last saved; null when none were.</summary>
    StoredTotals? LoadTotals();

    /// <summary>The broker's running totals, saved now and then (they need not be durable before anything).</summary>
    void TotalsSaved(StoredTotals totals);

    /// <summary>Every ban held, in no particular order (expired ones included: the broker drops them).</summary>
    IReadOnlyList<Ban> LoadBans();

    /// <summary>A ban was added, or replaced the one of the same <see cref="Ban.As"/> and <see cref="Ban.Who"/>.</summary>
    void BanSet(Ban ban);

    /// <summary>The ban of <paramref name="kind"/> on <paramref name="who"/> was lifted. Nothing to do when none is held.</summary>
    void BanRemoved(BanKind kind, string who);

    /// <summary>
    /// Opens a group of changes that must reach the disk together or not at all: until <see cref="EndGroup"/> (on the
    /// same thread, no await in between) the store does not cut a batch, so every change recorded meanwhile (by any
    /// thread) is written in one transaction with the others. The broker routes a client's QoS 2 message and records
    /// its packet id as awaiting PUBREL in one group: a restart then finds both (a resend is not routed again) or
    /// neither (the resend is routed), never one. Groups are short (one routing) and may nest; a store that applies
    /// each change as it comes has nothing to do.
    /// </summary>
    void BeginGroup();

    /// <summary>Closes the group <see cref="BeginGroup"/> opened on this thread.</summary>
    void EndGroup();

    /// <summary>Completes when every change recorded before the call is durable (see the type's remarks); at once when
    /// the store has nothing pending.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);
}
