using Midge.Core.Sessions.Store;

namespace Midge.Core.Sessions;

/// <summary>
/// Where a cluster claims a client id for this node before this node's registry takes it (docs/cluster.md): set as
/// <see cref="Broker.SessionClaims"/>; null on a broker that runs alone. The registry's contract
/// (<see cref="IClientRegistry"/>) still holds on each node; this decides which node holds the client id.
/// </summary>
public interface ISessionClaims
{
    /// <summary>
    /// Makes this node the owner of <paramref name="clientId"/> across the cluster, taking it from the node that owned
    /// it (which disconnects its connection, MQTT 5 DISCONNECT 0x8E, and gives up the session). Returns that session,
    /// for this node to resume (null when there was none, under <paramref name="cleanStart"/>, or when it could not
    /// be had in time); the CONNECT waits for it, so it must answer within seconds even when the cluster is away
    /// (the client is then served by this node alone).
    /// </summary>
    ValueTask<SessionState?> ClaimAsync(string clientId, bool cleanStart);
}
