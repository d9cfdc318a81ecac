using System.Diagnostics.CodeAnalysis;

namespace Midge.Core.Sessions;

/// <summary>
/// Which session owns each client id, and the one place where that changes: the seam where a cluster-wide registry
/// plugs in. <see cref="ClientRegistry"/> is the single-node one.
/// <para><b>Ownership.</b> A client id has at most one session, and a session at most one connection. Sessions are
/// added only by <see cref="Connect"/> (and, at start, by <see cref="Restore"/>), and removed only by
/// <see cref="Remove"/> and <see cref="EndIfOffline"/>.</para>
/// <para><b>Locking.</b> Every change of a client id's ownership happens under that client id's lock
/// (<see cref="Lock"/>): a CONNECT taking the session, a connection's close detaching it or ending it, expiry, an
/// administrator ending it. Deliveries never take it (they take only the session's own lock, which is taken after
/// it, never before). A cluster-wide registry keeps the local lock for this node's connections and, inside
/// <see cref="Connect"/>, also claims the client id across the cluster (taking it over from the node that holds it).</para>
/// <para><b>Takeover.</b> <see cref="Connect"/> decides what becomes of an existing session, all under the lock: a will
/// still waiting for its delay is cancelled (the client id is back, MQTT-3.1.3-9); a connection still attached is
/// taken over (detached, then closed: MQTT 5 DISCONNECT 0x8E); a session that ended with that connection (Session
/// Expiry 0) or any session under Clean Start is removed and a new one made; otherwise it is resumed (Session Present).
/// Concurrent CONNECTs of one client id are serialised by the lock: the last one owns the session, every earlier one is
/// taken over.</para>
/// </summary>
public interface IClientRegistry : IReadOnlyCollection<Session>
{
    /// <summary>The session of <paramref name="clientId"/>, if there is one.</summary>
    bool TryGet(string clientId, [NotNullWhen(true)] out Session? session);

    /// <summary>The lock of <paramref name="clientId"/>'s ownership (see the type's remarks); locks may be shared
    /// between client ids.</summary>
    object Lock(string clientId);

    /// <summary>
    /// A CONNECT of <paramref name="clientId"/> was accepted: under its lock, cancels a will waiting for its delay,
    /// takes over or ends an existing session as the type's remarks say, makes a session when there is none left,
    /// sets its Session Expiry Interval, and calls <paramref name="attach"/> (still under the lock) with the session and
    /// whether it was resumed (Session Present), for the connection to answer CONNACK and attach itself.
    /// </summary>
    Session Connect(string clientId, bool cleanStart, uint expiryInterval, long nowMs, Action<Session, bool> attach);

    /// <summary>Ends <paramref name="session"/>: it leaves the registry (if it is still the one registered), the session
    /// store, the routing index; messages it got through shared subscriptions go to other members; its state is
    /// dropped. The caller holds <see cref="Lock"/> of its client id.</summary>
    void Remove(Session session);

    /// <summary>Ends <paramref name="session"/> (expiry, an administrator) unless a connection is attached to it again
    /// by the time its lock is taken; a will still waiting for its delay goes now. Returns whether it ended.</summary>
    bool EndIfOffline(Session session);

    /// <summary>Registers a session read back from a session store when the broker starts; false when the client id
    /// has one already.</summary>
    bool Restore(Session session);
}
