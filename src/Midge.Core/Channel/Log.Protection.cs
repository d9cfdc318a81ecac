using Microsoft.Extensions.Logging;

namespace Midge.Core.Channel;

/// <summary>Rate-limit and protection refusals (4xxx). Each is logged once per event: a ban when it starts, a
/// run of publish-rate refusals when it starts and when it ends in a disconnect, each refused filter or topic.</summary>
internal static partial class Log
{
    [LoggerMessage(4001, LogLevel.Warning, "Client {ClientId} from {Remote} connected more than {Max} times in {Window} s: banned for {Seconds} s (flapping_detect).")]
    public static partial void FlappingBanned(ILogger logger, string clientId, string remote, int max, int window, long seconds);

    [LoggerMessage(4002, LogLevel.Warning, "Client {ClientId} exceeds its publish rate (max_publish_rate {Rate}, max_publish_bytes_rate {Bytes}): messages refused.")]
    public static partial void PublishRateExceeded(ILogger logger, string clientId, int rate, long bytes);

    [LoggerMessage(4003, LogLevel.Warning, "Client {ClientId} exceeded its publish rate for {Seconds} s, disconnecting.")]
    public static partial void PublishRateDisconnect(ILogger logger, string clientId, int seconds);

    [LoggerMessage(4004, LogLevel.Information, "Denied PUBLISH from {ClientId} to '{Topic}': deeper than max_topic_levels {Max}.")]
    public static partial void TopicTooDeep(ILogger logger, string clientId, string topic, int max);

    [LoggerMessage(4005, LogLevel.Information, "Denied SUBSCRIBE from {ClientId} to '{Filter}': {Reason}.")]
    public static partial void SubscriptionRefused(ILogger logger, string clientId, string filter, string reason);
}
