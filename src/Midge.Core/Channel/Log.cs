using Microsoft.Extensions.Logging;
using Midge.Protocol;

namespace Midge.Core.Channel;

/// <summary>Broker log messages with stable event ids (1xxx connections, 2xxx protocol, 3xxx subscriptions).</summary>
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Information, "New client connected from {Remote} as {ClientId} (p{Version}, c{Clean}, k{KeepAlive}{UserPart}).")]
    private static partial void ClientConnectedCore(ILogger logger, string remote, string clientId, int version, int clean, int keepAlive, string userPart);

    [LoggerMessage(1009, LogLevel.Information, "New bridge connected from {Remote} as {ClientId} (p{Version}, c{Clean}, k{KeepAlive}{UserPart}).")]
    private static partial void BridgeConnectedCore(ILogger logger, string remote, string clientId, int version, int clean, int keepAlive, string userPart);

    /// <summary>
    /// Mosquitto's line: p1 = 3.1, p2 = 3.1.1, p5 = 5.0; c1 = clean start; u'name' when a username was given; "New
    /// bridge connected" for a CONNECT with the bridge bit (another broker's bridge, try_private). The remote end
    /// point is formatted only when the line is written: every connect passes here.
    /// </summary>
    public static void ClientConnected(ILogger logger, object remote, string clientId, ProtocolVersion version, bool clean, int keepAlive, string? userName, bool bridge)
    {
        if (!logger.IsEnabled(LogLevel.Information)) return;
        int p = version switch { ProtocolVersion.V310 => 1, ProtocolVersion.V311 => 2, _ => 5 };
        string userPart = userName is null ? "" : $", u'{userName}'";
        if (bridge) BridgeConnectedCore(logger, RemoteAddress.Format(remote), clientId, p, clean ? 1 : 0, keepAlive, userPart);
        else ClientConnectedCore(logger, RemoteAddress.Format(remote), clientId, p, clean ? 1 : 0, keepAlive, userPart);
    }

    [LoggerMessage(1002, LogLevel.Information, "Client {ClientId} disconnected.")]
    public static partial void ClientDisconnected(ILogger logger, string clientId);

    [LoggerMessage(1003, LogLevel.Information, "Client {Remote} refused: {Reason} ({Message}).")]
    public static partial void ConnectRejected(ILogger logger, string remote, ReasonCode reason, string message);

    [LoggerMessage(1004, LogLevel.Information, "Client {ClientId} has exceeded timeout, disconnecting.")]
    public static partial void KeepAliveTimeout(ILogger logger, string clientId);

    [LoggerMessage(1006, LogLevel.Information, "Client {ClientId} already connected, closing old connection.")]
    public static partial void TakingOver(ILogger logger, string clientId);

    [LoggerMessage(1005, LogLevel.Debug, "Closing connection {ClientId}: {Reason}.")]
    public static partial void Closing(ILogger logger, string clientId, string reason);

    [LoggerMessage(2001, LogLevel.Warning, "Protocol error from {ClientId}: {Reason} ({Message}), disconnecting.")]
    public static partial void ProtocolError(ILogger logger, string clientId, ReasonCode reason, string message);

    [LoggerMessage(2003, LogLevel.Warning, "{ClientId}: {Type} of {Size} bytes exceeds the client's Maximum Packet Size {Maximum}, disconnecting.")]
    public static partial void PacketTooLargeForClient(ILogger logger, string clientId, PacketType type, int size, uint maximum);

    [LoggerMessage(1008, LogLevel.Warning, "Outgoing messages are being dropped for client {ClientId}.")]
    public static partial void MessagesDropped(ILogger logger, string clientId);

    [LoggerMessage(2002, LogLevel.Debug, "Denied PUBLISH from {ClientId} to '{Topic}': {Reason}.")]
    public static partial void PublishDenied(ILogger logger, string clientId, string topic, ReasonCode reason);

    [LoggerMessage(3001, LogLevel.Debug, "{ClientId} {QoS} {Filter}", EventName = "Subscribe")]
    private static partial void SubscribedCore(ILogger logger, string clientId, int qoS, string filter);

    public static void Subscribed(ILogger logger, string clientId, string filter, int qos) => SubscribedCore(logger, clientId, qos, filter);

    [LoggerMessage(3003, LogLevel.Information, "Denied SUBSCRIBE from {ClientId} to '{Filter}'.")]
    public static partial void SubscribeDenied(ILogger logger, string clientId, string filter);

    [LoggerMessage(3004, LogLevel.Information, "Subscription of {ClientId} to '{Filter}' revoked: the ACL no longer allows it.")]
    public static partial void SubscriptionRevoked(ILogger logger, string clientId, string filter);

    [LoggerMessage(1007, LogLevel.Information, "Client {ClientId} disconnected: its credentials no longer hold.")]
    public static partial void CredentialsRevoked(ILogger logger, string clientId);

    [LoggerMessage(3002, LogLevel.Debug, "{ClientId} {Filter}", EventName = "Unsubscribe")]
    public static partial void Unsubscribed(ILogger logger, string clientId, string filter);

    [LoggerMessage(5031, LogLevel.Error, "Client {ClientId} disconnected: the persistence store failed ({Problem}); its unacknowledged messages were not acknowledged.")]
    public static partial void StoreFailed(ILogger logger, string clientId, string problem);

    [LoggerMessage(5001, LogLevel.Error, "Hook {Hook} failed.")]
    public static partial void HookFailed(ILogger logger, string hook, Exception exception);
}
