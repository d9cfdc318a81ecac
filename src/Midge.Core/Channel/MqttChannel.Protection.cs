using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Channel;

// Rate limits and caps checked by the state machine: CONNECT rate and flapping bans at CONNECT, publish rates
// and topic depth at PUBLISH, topic depth and the subscription cap at SUBSCRIBE. The socket-level checks
// (address lists, connection rate at accept, pending handshakes) are in Midge.Transport/ConnectionGuard.cs.
public sealed partial class MqttChannel
{
    /// <summary>Made at the first PUBLISH a rate limit applies to: most brokers set none.</summary>
    private PublishRates? _publishRates;

    /// <summary>max_connection_rate (CONNECT side) and flapping_detect; false when the CONNECT was refused.</summary>
    private bool AdmitConnect(string clientId, bool assigned, string? userName)
    {
        long now = _broker.NowMs;
        if (_broker.Bans.Count > 0 && _broker.Bans.Find(clientId, userName, RemoteIp, _broker.UtcNow) is { } ban)
        {
            RejectConnect(Version, ReasonCode.Banned, $"banned ({ban.AsName} '{ban.Who}', by {ban.By})");
            return false;
        }
        if (!_broker.ConnectRates.TryConnect(_listener, now))
        {
            RejectConnect(Version, ReasonCode.ConnectionRateExceeded,
                $"connection rate exceeded (max_connection_rate {_listener.Protection.MaxConnectionRate}), client id '{clientId}'");
            return false;
        }
        var p = _broker.Config.Protection;
        if (p.FlappingDetect && !assigned && !_broker.Flapping.Admit(clientId, now, p, out bool banStarted, out long until))
        {
            long seconds = (until - now + 999) / 1000;
            if (banStarted)
            {
                Log.FlappingBanned(_broker.Logger, clientId, RemoteEndPoint, p.FlappingMaxConnects, p.FlappingWindowSeconds, seconds);
                var at = _broker.UtcNow;
                _broker.Bans.Set(new Ban(BanKind.ClientId, clientId, "flapping_detect",
                    $"connected more than {p.FlappingMaxConnects} times in {p.FlappingWindowSeconds} s", at, at.AddMilliseconds(until - now)));
            }
            RejectConnect(Version, ReasonCode.Banned, $"client id '{clientId}' is banned for flapping for {seconds} more seconds");
            return false;
        }
        return true;
    }

    /// <summary>
    /// max_topic_levels, max_publish_rate and max_publish_bytes_rate for one PUBLISH: Success, TopicNameInvalid
    /// or MessageRateTooHigh. A refused message takes no tokens.
    /// </summary>
    private ReasonCode AdmitPublish(PublishPacket publish)
    {
        var p = _broker.Config.Protection;
        if (p.MaxTopicLevels > 0 && CountLevels(publish.Topic) > p.MaxTopicLevels)
        {
            Log.TopicTooDeep(_broker.Logger, ClientId ?? RemoteEndPoint, publish.Topic, p.MaxTopicLevels);
            return ReasonCode.TopicNameInvalid;
        }
        if (p.MaxPublishRate <= 0 && p.MaxPublishBytesRate <= 0) return ReasonCode.Success;

        long now = _broker.NowMs;
        // Buckets are made on first use, and made again when a reload (SIGHUP) changed the limits, so a new
        // limit applies to connections already open from their next PUBLISH.
        var rates = _publishRates;
        if (rates is null || rates.MaxRate != p.MaxPublishRate || rates.MaxBytesRate != p.MaxPublishBytesRate)
        {
            _publishRates = rates = new PublishRates(p.MaxPublishRate, p.MaxPublishBytesRate, now);
        }
        long bytes = publish.Payload.Length;
        if ((!rates.Count.IsEnabled || rates.Count.CanTake(1, now)) &&
            (!rates.Bytes.IsEnabled || rates.Bytes.CanTake(bytes, now)))
        {
            if (rates.Count.IsEnabled) rates.Count.Take(1);
            if (rates.Bytes.IsEnabled) rates.Bytes.Take(bytes);
            return ReasonCode.Success;
        }
        // A run of refusals continues while no second passes without one; it is logged when it starts.
        if (rates.StreakStartMs < 0 || now - rates.LastRefusalMs > 1000)
        {
            rates.StreakStartMs = now;
            Log.PublishRateExceeded(_broker.Logger, ClientId ?? RemoteEndPoint, p.MaxPublishRate, p.MaxPublishBytesRate);
        }
        rates.LastRefusalMs = now;
        return ReasonCode.MessageRateTooHigh;
    }

    /// <summary>publish_rate_disconnect_after: true once the client has been refused at least once in every
    /// second for that many seconds.</summary>
    private bool PublishRateDisconnectDue()
    {
        int after = _broker.Config.Protection.PublishRateDisconnectAfterSeconds;
        if (after <= 0 || _publishRates is not { } rates || rates.LastRefusalMs - rates.StreakStartMs < after * 1000L) return false;
        Log.PublishRateDisconnect(_broker.Logger, ClientId ?? RemoteEndPoint, after);
        return true;
    }

    /// <summary>max_topic_levels (MQTT 5 0x8F) and max_subscriptions_per_client (0x97) for one filter; null when
    /// allowed. <paramref name="levelFilter"/> is the filter without a $share prefix; <paramref name="filter"/>
    /// the session key (with the mount point). Re-subscribing to a filter already held is always allowed.</summary>
    private ReasonCode? RefuseSubscription(Session session, string clientFilter, string levelFilter, string filter)
    {
        var p = _broker.Config.Protection;
        if (p.MaxTopicLevels > 0 && CountLevels(levelFilter) > p.MaxTopicLevels)
        {
            Log.SubscriptionRefused(_broker.Logger, session.ClientId, clientFilter, $"deeper than max_topic_levels {p.MaxTopicLevels}");
            return ReasonCode.TopicFilterInvalid;
        }
        if (p.MaxSubscriptionsPerClient > 0)
        {
            int count;
            lock (session.Sync)
            {
                if (session.Subscriptions?.ContainsKey(filter) == true) return null;
                count = session.SubscriptionCount;
            }
            if (count >= p.MaxSubscriptionsPerClient)
            {
                Log.SubscriptionRefused(_broker.Logger, session.ClientId, clientFilter, $"max_subscriptions_per_client {p.MaxSubscriptionsPerClient} reached");
                return ReasonCode.QuotaExceeded;
            }
        }
        return null;
    }

    /// <summary>Topic levels: one more than the number of '/'.</summary>
    internal static int CountLevels(string topic) => topic.AsSpan().Count('/') + 1;

    /// <summary>max_publish_rate and max_publish_bytes_rate for one connection: a bucket each (burst = one
    /// second's worth; a default bucket for a limit that is off) and the current run of refusals.</summary>
    private sealed class PublishRates(int maxRate, long maxBytesRate, long nowMs)
    {
        /// <summary>The limits the buckets were made for.</summary>
        public int MaxRate { get; } = maxRate;
        public long MaxBytesRate { get; } = maxBytesRate;
        public TokenBucket Count = maxRate > 0 ? new TokenBucket(maxRate, maxRate, nowMs) : default;
        public TokenBucket Bytes = maxBytesRate > 0 ? new TokenBucket(maxBytesRate, maxBytesRate, nowMs) : default;
        /// <summary>Start of the current run of refusals (-1: none) and the last refusal, for the disconnect rule.</summary>
        public long StreakStartMs = -1;
        public long LastRefusalMs;
    }
}
