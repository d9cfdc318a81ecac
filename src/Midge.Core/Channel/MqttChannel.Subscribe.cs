using Midge.Core.Messages;
using Midge.Core.Routing;
using Midge.Core.Sessions;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;

namespace Midge.Core.Channel;

public sealed partial class MqttChannel
{
    /// <summary>SUBSCRIBE. With authorise hooks attached, every filter is put to them first (in order; a hook may
    /// answer later, and the SUBSCRIBE then waits without a thread), then the filters are taken as without hooks.</summary>
    private ValueTask HandleSubscribe(SubscribePacket subscribe)
    {
        var hooks = _broker.Hooks.Authorize;
        if (!hooks.IsAttached) return Subscribe(subscribe, null);
        var verdicts = new Hooks.HookVerdict[subscribe.Subscriptions.Count];
        for (int i = 0; i < verdicts.Length; i++)
        {
            var pending = hooks.DecideAsync(AuthorizeSubscription(subscribe.Subscriptions[i]));
            if (!pending.IsCompletedSuccessfully) return SubscribeAfterHooksAsync(subscribe, verdicts, i, pending);
            verdicts[i] = pending.Result;
        }
        return Subscribe(subscribe, verdicts);
    }

    private async ValueTask SubscribeAfterHooksAsync(SubscribePacket subscribe, Hooks.HookVerdict[] verdicts, int at,
        ValueTask<Hooks.HookVerdict> pending)
    {
        verdicts[at] = await AnswerInTime(pending).ConfigureAwait(false);
        for (int i = at + 1; i < verdicts.Length; i++)
        {
            verdicts[i] = await AnswerInTime(_broker.Hooks.Authorize.DecideAsync(AuthorizeSubscription(subscribe.Subscriptions[i])))
                .ConfigureAwait(false);
        }
        if (Volatile.Read(ref _state) == 1) await Subscribe(subscribe, verdicts).ConfigureAwait(false);
    }

    private Hooks.AuthorizeContext AuthorizeSubscription(TopicSubscription request) =>
        new(_session!.ClientId, UserName, Hooks.AuthorizeAction.Subscribe, request.Filter, request.QoS, false);

    /// <summary>Takes the filters of a SUBSCRIBE; <paramref name="verdicts"/>: the authorise hooks' answers, one per
    /// filter (null: no hook attached, the ACL file decides alone). In a cluster, the SUBACK waits (briefly, bounded)
    /// until the filters new to this node are subscribed in the cluster (<see cref="IClusterRoute.SubscribedAsync"/>).</summary>
    private async ValueTask Subscribe(SubscribePacket subscribe, Hooks.HookVerdict[]? verdicts)
    {
        var cluster = _broker.Router.Cluster;
        bool awaited = false;
        var session = _session!;
        var config = _broker.Config;
        uint subscriptionId = 0;
        if (subscribe.Properties?.SubscriptionIdentifiers is { Count: > 0 } ids) subscriptionId = ids[0];

        var suback = new SubAckPacket { PacketId = subscribe.PacketId };
        List<(Subscription Sub, bool IsNew)>? retainedToSend = null;
        bool joinedShared = false;
        for (int index = 0; index < subscribe.Subscriptions.Count; index++)
        {
            var request = subscribe.Subscriptions[index];
            PacketLog.Subscribing(_broker, request.Filter, request.QoS); // as asked for, before any decision (as Mosquitto)
            bool shared = Topics.TryParseShared(request.Filter, out string group, out string inner);
            if (shared && request.NoLocal && Version == ProtocolVersion.V500)
            {
                throw new MqttProtocolException(ReasonCode.ProtocolError, "No Local on a shared subscription"); // MQTT-3.8.3-4
            }
            if (!shared && Topics.IsShared(request.Filter))
            {
                suback.ReasonCodes.Add(ReasonCode.TopicFilterInvalid);
                continue;
            }
            var granted = (QoS)Math.Min((int)request.QoS, _listener.MaxQoS);
            string filter = request.Filter;
            bool exclusive = false;
            if (config.ExclusiveSubscriptions && !shared && filter.StartsWith(ExclusivePrefix, StringComparison.Ordinal))
            {
                filter = filter.Substring(ExclusivePrefix.Length);
                if (!Topics.IsValidTopicFilter(filter))
                {
                    suback.ReasonCodes.Add(ReasonCode.TopicFilterInvalid);
                    continue;
                }
                exclusive = true;
            }
            if (_listener.MountPoint is { } mount)
            {
                filter = shared ? SharedPrefix(request.Filter, group) + mount + inner : mount + request.Filter;
            }
            if (RefuseSubscription(session, request.Filter, shared ? inner : request.Filter, filter) is { } refused)
            {
                suback.ReasonCodes.Add(refused); // max_topic_levels, max_subscriptions_per_client (0x80 for 3.x)
                continue;
            }
            var verdict = verdicts?[index] ?? Hooks.HookVerdict.Defer;
            if (verdict == Hooks.HookVerdict.Deny ||
                (verdict == Hooks.HookVerdict.Defer && _security.Acl?.CanSubscribe(_identity!, filter) == SubscribeDecision.Deny))
            {
                // A filter the ACL can never allow is refused, not silently filtered (0x80 for 3.x).
                suback.ReasonCodes.Add(ReasonCode.NotAuthorized);
                Log.SubscribeDenied(_broker.Logger, session.ClientId, request.Filter);
                continue;
            }
            if (exclusive && !_broker.TryClaimExclusive(filter, session))
            {
                suback.ReasonCodes.Add(ReasonCode.QuotaExceeded); // another client holds it (0x80 for 3.x)
                continue;
            }
            if (exclusive && cluster is not null)
            {
                // One holder across the cluster too (docs/cluster.md): the only await of a SUBSCRIBE without hooks.
                var claim = cluster.ClaimExclusiveAsync(filter, session.ClientId);
                awaited |= !claim.IsCompleted;
                if (!await claim.ConfigureAwait(false))
                {
                    _broker.ReleaseExclusive(filter, session);
                    suback.ReasonCodes.Add(ReasonCode.QuotaExceeded); // a client of another node holds it
                    continue;
                }
            }
            var sub = new Subscription(filter, granted)
            {
                NoLocal = request.NoLocal,
                RetainAsPublished = request.RetainAsPublished,
                RetainHandling = request.RetainHandling,
                SubscriptionId = subscriptionId,
                ClientFilter = request.Filter,
                Exclusive = exclusive,
            };
            bool isNew;
            lock (session.Sync)
            {
                isNew = _broker.Subscriptions.Subscribe(filter, session, sub);
                session.SetSubscription(filter, sub);
            }
            suback.ReasonCodes.Add((ReasonCode)(byte)granted);
            Log.Subscribed(_broker.Logger, session.ClientId, request.Filter, (int)granted);
            if (_broker.Hooks.SessionSubscribed.IsAttached) _broker.Hooks.SessionSubscribed.Invoke(new(session.ClientId, filter, granted));
            joinedShared |= shared;
            // Retained messages are not sent for shared subscriptions (MQTT 5.0 section 4.8.2).
            if (!shared && config.RetainAvailable) (retainedToSend ??= []).Add((sub, isNew));
        }
        var inCluster = cluster?.SubscribedAsync(allChanges: awaited) ?? default;
        if (!inCluster.IsCompleted)
        {
            await inCluster.ConfigureAwait(false);
            if (Volatile.Read(ref _state) != 1) return;
        }
        Acknowledge(suback, joinedShared, retainedToSend);
    }

    /// <summary>Sends the SUBACK, then what the new subscriptions get at once: their shared groups' waiting messages,
    /// and retained messages.</summary>
    private void Acknowledge(SubAckPacket suback, bool joinedShared, List<(Subscription Sub, bool IsNew)>? retainedToSend)
    {
        var session = _session!;
        var config = _broker.Config;
        Send(suback); // MQTT-3.8.4-1 before any retained message
        if (joinedShared) _broker.DrainSharedQueues(session);

        if (retainedToSend is null) return;
        long now = _broker.NowMs;
        List<Message>? matches = null;
        foreach (var (sub, isNew) in retainedToSend)
        {
            if (sub.RetainHandling == RetainHandling.DoNotSend) continue;
            if (sub.RetainHandling == RetainHandling.SendAtSubscribeIfNew && !isNew) continue;
            (matches ??= []).Clear();
            _broker.Retained.Match(sub.Filter, matches);
            foreach (var message in matches)
            {
                if (message.IsExpired(now)) continue;
                if (config.CheckRetainSource && _security.Acl is { } acl && message.OriginClientId is { } origin &&
                    !acl.CanPublish(new ClientIdentity(origin, message.OriginUserName), message.Topic))
                {
                    continue; // check_retain_source: the publisher lost the right to write it
                }
                session.DeliverRetained(message, new DeliveryRule(message, config.UpgradeOutgoingQoS).ForRetained(sub), now);
            }
        }
    }

    private void HandleUnsubscribe(UnsubscribePacket unsubscribe)
    {
        var session = _session!;
        var unsuback = new UnsubAckPacket { PacketId = unsubscribe.PacketId };
        foreach (var requested in unsubscribe.Filters)
        {
            PacketLog.Unsubscribing(_broker, requested);
            string filter = requested;
            if (_broker.Config.ExclusiveSubscriptions && filter.StartsWith(ExclusivePrefix, StringComparison.Ordinal))
            {
                filter = filter.Substring(ExclusivePrefix.Length);
            }
            if (_listener.MountPoint is { } mount)
            {
                filter = Topics.TryParseShared(filter, out var group, out var inner)
                    ? SharedPrefix(filter, group) + mount + inner
                    : mount + filter;
            }
            bool existed;
            Subscription? removed;
            lock (session.Sync)
            {
                existed = session.RemoveSubscription(filter, out removed);
                if (existed)
                {
                    _broker.Subscriptions.Unsubscribe(filter, session);
                    if (removed!.Exclusive) _broker.ReleaseExclusive(filter, session);
                }
            }
            if (existed && _broker.Hooks.SessionUnsubscribed.IsAttached)
            {
                _broker.Hooks.SessionUnsubscribed.Invoke(new(session.ClientId, filter, removed!.QoS));
            }
            if (Version == ProtocolVersion.V500)
            {
                unsuback.ReasonCodes.Add(existed ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted);
            }
            Log.Unsubscribed(_broker.Logger, session.ClientId, requested);
        }
        Send(unsuback); // MQTT-3.10.4-4
    }

    private const string ExclusivePrefix = "$exclusive/";

    private static string SharedPrefix(string filter, string group) =>
        filter.StartsWith(Topics.QueuePrefix, StringComparison.Ordinal) ? Topics.QueuePrefix : Topics.SharePrefix + group + "/";
}
