namespace Midge.Core;

/// <summary>A bridge to another broker as the broker reports it (the HTTP API, <c>$SYS</c>).</summary>
/// <param name="Name">Its <c>connection</c> name.</param>
/// <param name="Connected">Whether it is connected to the remote now.</param>
/// <param name="MessagesQueued">Messages waiting in its local session (queued and in flight).</param>
public sealed record BridgeStatus(string Name, bool Connected, long MessagesSent, long MessagesReceived, long MessagesDropped,
    long MessagesQueued, long Reconnects);

/// <summary>Whoever runs the broker's bridges (set as <see cref="Broker.Bridges"/>): their state on demand.</summary>
public interface IBridgeDirectory
{
    /// <summary>Every bridge, in configuration order.</summary>
    IReadOnlyList<BridgeStatus> Snapshot();
}
