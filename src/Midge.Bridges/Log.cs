using Microsoft.Extensions.Logging;

namespace Midge.Bridges;

public sealed partial class Bridge
{
    private static partial class Log
    {
        [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Connecting bridge {Name} ({Host}:{Port})")]
        public static partial void Connecting(ILogger logger, string name, string host, int port);

        [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Bridge {Name} connected to {Host}:{Port} (session present: {SessionPresent})")]
        public static partial void Connected(ILogger logger, string name, string host, int port, bool sessionPresent);

        [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Bridge {Name}: {Host}:{Port} refused the connection: {Reason}")]
        public static partial void Refused(ILogger logger, string name, string host, int port, string reason);

        [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Bridge {Name}: cannot connect to {Host}:{Port}: {Error}")]
        public static partial void ConnectFailed(ILogger logger, string name, string host, int port, string error);

        [LoggerMessage(EventId = 1304, Level = LogLevel.Information, Message = "Bridge {Name}: next attempt in {Seconds:0.#} s")]
        public static partial void Waiting(ILogger logger, string name, double seconds);

        [LoggerMessage(EventId = 1305, Level = LogLevel.Information, Message = "Bridge {Name} disconnected ({Why})")]
        public static partial void Disconnected(ILogger logger, string name, string why);

        [LoggerMessage(EventId = 1306, Level = LogLevel.Information, Message = "Bridge {Name} stopped ({Why})")]
        public static partial void Stopped(ILogger logger, string name, string why);

        [LoggerMessage(EventId = 1307, Level = LogLevel.Information, Message = "Bridge {Name}: primary address {Host}:{Port} is back; reconnecting to it")]
        public static partial void PrimaryBack(ILogger logger, string name, string host, int port);

        [LoggerMessage(EventId = 1308, Level = LogLevel.Warning, Message = "Bridge {Name}: the local broker refused client id {ClientId}: {Reason} (check local_username, local_password and the ACL)")]
        public static partial void LocalRefused(ILogger logger, string name, string clientId, string reason);

        [LoggerMessage(EventId = 1309, Level = LogLevel.Warning, Message = "Bridge {Name}: the remote refused the subscription {Filter}: {Reason}")]
        public static partial void RemoteSubscribeRefused(ILogger logger, string name, string filter, string reason);

        [LoggerMessage(EventId = 1310, Level = LogLevel.Warning, Message = "Bridge {Name}: a message to {Topic} is larger than bridge_max_packet_size ({Max}); dropped")]
        public static partial void TooLarge(ILogger logger, string name, string topic, int max);

        [LoggerMessage(EventId = 1311, Level = LogLevel.Warning, Message = "Bridge {Name}: the remote refused a message: {Reason}")]
        public static partial void RemoteRefusedMessage(ILogger logger, string name, string reason);
    }
}
