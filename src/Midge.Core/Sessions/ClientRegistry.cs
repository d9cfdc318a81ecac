using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Midge.Core.Channel;

namespace Midge.Core.Sessions;

/// <summary>
/// The client registry of a single broker (<see cref="IClientRegistry"/>: ownership, locking, takeover): sessions by
/// client id in a concurrent dictionary, and 64 striped locks for the client ids.
/// </summary>
internal sealed class ClientRegistry(Broker broker) : IClientRegistry
{
    private const int LockStripes = 64;

    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly object[] _locks = CreateLocks();

    public int Count => _sessions.Count;

    public bool TryGet(string clientId, [NotNullWhen(true)] out Session? session) => _sessions.TryGetValue(clientId, out session);

    public object Lock(string clientId) => _locks[(StringComparer.Ordinal.GetHashCode(clientId) & int.MaxValue) % LockStripes];

    public Session Connect(string clientId, bool cleanStart, uint expiryInterval, long nowMs, Action<Session, bool> attach)
    {
        lock (Lock(clientId))
        {
            // Whatever happens to the session, a will still waiting for its delay is not sent: the client id is
            // back (MQTT-3.1.3-9; with Clean Start too, and for a session that ended, as Mosquitto does).
            broker.CancelDelayedWill(clientId);
            if (_sessions.TryGetValue(clientId, out var existing))
            {
                var old = existing.Channel;
                // A session with no lifetime beyond its connection (Clean Session 1, Session Expiry 0) ends with
                // that connection, even when a takeover ends it: it is never resumed (MQTT-3.1.2-6, 5.0 3.1.2.11.2).
                bool ended = old is not null && existing.ExpiryInterval == 0;
                if (old is not null)
                {
                    Log.TakingOver(broker.Logger, clientId);
                    existing.Detach(old, nowMs);
                    old.TakeOver();
                }
                if (cleanStart || ended)
                {
                    Remove(existing);
                    existing = null;
                }
            }
            bool present = existing is not null;
            var session = existing ?? Create(clientId);
            session.ExpiryInterval = expiryInterval;
            attach(session, present);
            return session;
        }
    }

    public void Remove(Session session)
    {
        if (_sessions.TryRemove(new KeyValuePair<string, Session>(session.ClientId, session))) broker.SessionStore?.SessionRemoved(session.ClientId);
        broker.DiscardSession(session);
    }

    public bool EndIfOffline(Session session)
    {
        lock (Lock(session.ClientId))
        {
            if (session.IsOnline) return false;
            broker.PublishDelayedWill(session.ClientId); // the session ends: a will still waiting goes now
            Remove(session);
            return true;
        }
    }

    public bool Restore(Session session) => _sessions.TryAdd(session.ClientId, session);

    /// <summary>Enumerates the sessions without taking a snapshot (the dictionary's own enumerator).</summary>
    public IEnumerator<Session> GetEnumerator()
    {
        foreach (var (_, session) in _sessions) yield return session;
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private Session Create(string clientId)
    {
        var session = new Session(broker, clientId);
        _sessions[clientId] = session;
        return session;
    }

    private static object[] CreateLocks()
    {
        var locks = new object[LockStripes];
        for (int i = 0; i < LockStripes; i++) locks[i] = new object();
        return locks;
    }
}
