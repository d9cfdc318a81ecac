using Midge.Core.Sessions.Store;

namespace Midge.Core.Sessions;

/// <summary>
/// A session as the rest of the broker sees it: the state of one client id that outlives its connections. The
/// broker's sessions are <see cref="Session"/>s, kept in memory (a session store, <see cref="ISessionStore"/>, records
/// their changes when the broker has one); lookups, housekeeping and administration go through this view.
/// </summary>
public interface ISession
{
    string ClientId { get; }

    /// <summary>MQTT 5 Session Expiry Interval in seconds; <see cref="uint.MaxValue"/> = never (3.x persistent), 0 =
    /// the session ends with its connection.</summary>
    uint ExpiryInterval { get; }

    /// <summary>Broker clock (ms, <see cref="Broker.NowMs"/>) when the last connection ended; 0 while connected.</summary>
    long DisconnectedAtMs { get; }

    /// <summary>Whether a connection is attached.</summary>
    bool IsOnline { get; }

    /// <summary>Whether the last connection was another broker's bridge (the bridge bit in its CONNECT): it is not
    /// sent its own messages back and gets RETAIN as published.</summary>
    bool IsBridge { get; }

    int SubscriptionCount { get; }

    /// <summary>A copy of the subscriptions, with all their options (filters carry the listener's mount point).</summary>
    IReadOnlyList<Subscription> Subscriptions { get; }

    /// <summary>Messages waiting in the queue (<see cref="MessageQueue"/>).</summary>
    int QueuedCount { get; }

    /// <summary>Messages sent and not yet acknowledged (<see cref="InflightWindow"/>).</summary>
    int InflightCount { get; }

    /// <summary>The client's QoS 2 PUBLISHes awaiting PUBREL (<see cref="IncomingQoS2"/>).</summary>
    int IncomingQoS2Count { get; }

    /// <summary>A snapshot of the whole state, as a session store would keep it.</summary>
    SessionState GetState();
}
