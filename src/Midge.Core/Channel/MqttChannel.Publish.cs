using Midge.Core.Messages;
using Midge.Core.Sessions;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Channel;

public sealed partial class MqttChannel
{
    private ValueTask HandlePublish(PublishPacket publish)
    {
        var config = _broker.Config;
        var session = _session!;
        _broker.Stats.OnPublishReceived();

        if (publish.Properties?.SubscriptionIdentifiers is { Count: > 0 })
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "a client PUBLISH may not carry a Subscription Identifier"); // MQTT-3.3.4-6
        }

        // MQTT 5 topic aliases from the client (section 3.3.2.3.4).
        if (publish.Properties?.TopicAlias is { } alias)
        {
            if (Version != ProtocolVersion.V500 || alias == 0 || alias > _listener.MaxTopicAlias)
            {
                throw new MqttProtocolException(ReasonCode.TopicAliasInvalid, $"topic alias {alias} is out of range"); // MQTT-3.3.2-8/-9
            }
            if (publish.Topic.Length == 0)
            {
                if (_topicAliases is null || !_topicAliases.TryGetValue(alias, out var known))
                {
                    throw new MqttProtocolException(ReasonCode.ProtocolError, $"unknown topic alias {alias}");
                }
                publish.Topic = known;
            }
            else
            {
                (_topicAliases ??= [])[alias] = publish.Topic;
            }
        }
        else if (publish.Topic.Length == 0)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "empty topic without a topic alias");
        }

        if ((int)publish.QoS > _listener.MaxQoS)
        {
            throw new MqttProtocolException(ReasonCode.QoSNotSupported, $"QoS {(int)publish.QoS} exceeds max_qos"); // MQTT-3.2.2-11
        }
        if (publish.Retain && !config.RetainAvailable)
        {
            throw new MqttProtocolException(ReasonCode.RetainNotSupported, "retain is not available"); // MQTT-3.2.2-14
        }

        if (publish.QoS == QoS.ExactlyOnce)
        {
            if (session.IsIncomingQoS2Pending(publish.PacketId))
            {
                // A retransmission of a message already routed: acknowledge, never route twice (MQTT-4.3.3-?).
                return SendDurable(new PublishAckPacket(PacketType.PubRec, publish.PacketId));
            }
            int receiveMax = config.MaxInflightMessages is > 0 and < 65535 ? config.MaxInflightMessages : 65535;
            if (Version == ProtocolVersion.V500 && session.IncomingQoS2Count >= receiveMax)
            {
                throw new MqttProtocolException(ReasonCode.ReceiveMaximumExceeded, "receive maximum exceeded"); // MQTT-3.3.4-7
            }
        }

        // Rate limits and topic depth (MqttChannel.Protection.cs); a client refused for too long is disconnected.
        ReasonCode reason = AdmitPublish(publish);
        if (reason == ReasonCode.MessageRateTooHigh && PublishRateDisconnectDue())
        {
            _broker.Dropped(session.ClientId, null, "publish rate exceeded for too long");
            ServerDisconnect(ReasonCode.MessageRateTooHigh, publishWill: true, "publish rate exceeded for too long");
            return default;
        }
        string clientTopic = publish.Topic;
        if (_listener.MountPoint is { } mount) publish.Topic = mount + publish.Topic;
        if (reason == ReasonCode.Success && IsReservedTopic(publish.Topic))
        {
            reason = ReasonCode.NotAuthorized;
        }
        else if (reason == ReasonCode.Success && _broker.Hooks.Authorize.IsAttached)
        {
            var pending = _broker.Hooks.Authorize.DecideAsync(new Hooks.AuthorizeContext(session.ClientId, UserName,
                Hooks.AuthorizeAction.Publish, clientTopic, publish.QoS, publish.Retain));
            if (!pending.IsCompletedSuccessfully) return CompletePublishAsync(publish, pending);
            return CompletePublish(publish, ReasonCode.Success, pending.Result);
        }
        return CompletePublish(publish, reason, Hooks.HookVerdict.Defer);
    }

    /// <summary>A PUBLISH whose authorisation was answered later; nothing happens if the connection ended meanwhile
    /// (a QoS 1/2 message is then not acknowledged, and the client sends it again).</summary>
    private async ValueTask CompletePublishAsync(PublishPacket publish, ValueTask<Hooks.HookVerdict> pending)
    {
        var verdict = await AnswerInTime(pending).ConfigureAwait(false);
        if (Volatile.Read(ref _state) != 1) return;
        await CompletePublish(publish, ReasonCode.Success, verdict).ConfigureAwait(false);
    }

    /// <summary>How long an authorise hook may take before its answer counts as Deny: the connection's packets wait for
    /// it, so a backend that never answers must not hold them for ever.</summary>
    internal static readonly TimeSpan AuthorizeTimeout = TimeSpan.FromSeconds(30);

    private static async ValueTask<Hooks.HookVerdict> AnswerInTime(ValueTask<Hooks.HookVerdict> pending)
    {
        if (pending.IsCompleted) return await pending.ConfigureAwait(false);
        try
        {
            return await pending.AsTask().WaitAsync(AuthorizeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return Hooks.HookVerdict.Deny;
        }
    }

    /// <summary>The rest of a PUBLISH: authorisation (<paramref name="verdict"/> of the hooks, else the ACL file),
    /// size, format and memory checks, routing, and the acknowledgement (held until the store has the message:
    /// <see cref="SendDurable"/>).</summary>
    private ValueTask CompletePublish(PublishPacket publish, ReasonCode reason, Hooks.HookVerdict verdict)
    {
        var config = _broker.Config;
        var session = _session!;
        if (reason != ReasonCode.Success)
        {
            if (reason != ReasonCode.NotAuthorized) _broker.Dropped(session.ClientId, null, $"refused: {reason}"); // rate or topic depth
        }
        else if (verdict == Hooks.HookVerdict.Deny ||
                 (verdict == Hooks.HookVerdict.Defer && _security.Acl?.CanPublish(_identity!, publish.Topic) == false))
        {
            reason = ReasonCode.NotAuthorized;
        }
        else if (config.MessageSizeLimit > 0 && publish.Payload.Length > config.MessageSizeLimit)
        {
            reason = ReasonCode.PacketTooLarge;
        }
        else if (config.ValidatePayloadFormat && publish.Properties?.PayloadFormatIndicator == 1 &&
                 !System.Text.Unicode.Utf8.IsValid(publish.Payload.Span))
        {
            reason = ReasonCode.PayloadFormatInvalid; // MQTT 5 section 3.3.2.3.2: the receiver MAY check it
        }
        else if (config.MemoryLimit > 0 && _broker.HeldBytes + publish.Payload.Length > config.MemoryLimit)
        {
            // memory_limit: refuse new messages rather than hold more than the limit, and take them again as soon as
            // what is held falls (MQTT 5 gets 0x97 Quota exceeded).
            _broker.Dropped(session.ClientId, null, $"memory_limit {config.MemoryLimit} reached");
            if (Version != ProtocolVersion.V500 && publish.QoS != QoS.AtMostOnce)
            {
                // 3.x cannot refuse a message: a PUBACK would say it was taken. Closing instead leaves it with the
                // client, which sends it again after reconnecting.
                Close($"memory_limit {config.MemoryLimit} reached");
                return default;
            }
            reason = ReasonCode.QuotaExceeded;
        }
        else if (publish.QoS == QoS.ExactlyOnce && session.IsStored)
        {
            // Routed and remembered as awaiting PUBREL in one group: after a crash both or neither are on disk.
            var store = _broker.SessionStore!;
            store.BeginGroup();
            try
            {
                _broker.Publish(Message.FromPublish(publish, session.ClientId, _broker.NowMs, UserName));
                session.AddIncomingQoS2(publish.PacketId);
            }
            finally
            {
                store.EndGroup();
            }
        }
        else
        {
            // A message nobody receives is still acknowledged with 0x00, not 0x10 No matching subscribers: clients
            // report the code as the delivery's result, and Mosquitto (since 2.0.20) sends 0x00 too.
            _broker.Publish(Message.FromPublish(publish, session.ClientId, _broker.NowMs, UserName));
        }
        if (reason != ReasonCode.Success && reason != ReasonCode.MessageRateTooHigh)
        {
            Log.PublishDenied(_broker.Logger, session.ClientId, publish.Topic, reason);
        }

        switch (publish.QoS)
        {
            case QoS.AtLeastOnce:
                return SendDurable(new PublishAckPacket(PacketType.PubAck, publish.PacketId, Version == ProtocolVersion.V500 ? reason : ReasonCode.Success));
            case QoS.ExactlyOnce:
                if (!ReasonCodes.IsError(reason) || Version != ProtocolVersion.V500)
                {
                    session.AddIncomingQoS2(publish.PacketId);
                }
                return SendDurable(new PublishAckPacket(PacketType.PubRec, publish.PacketId, Version == ProtocolVersion.V500 ? reason : ReasonCode.Success));
            default:
                return default;
        }
    }

    /// <summary>
    /// PUBACK, PUBREC and PUBCOMP for the broker's own PUBLISHes and PUBREL for the client's QoS 2. An
    /// acknowledgement of the wrong kind for a packet id in flight (PUBREC or PUBCOMP for QoS 1, PUBACK or PUBCOMP
    /// for a QoS 2 PUBLISH, PUBACK or PUBREC after PUBREL) is a protocol violation (MQTT-4.8.0-1, 4.13.1-1): the
    /// connection is closed, MQTT 5 with DISCONNECT 0x82. An id not in flight is not one: it may be a late
    /// duplicate from before a reconnection.
    /// </summary>
    private ValueTask HandlePublishAck(PublishAckPacket ack)
    {
        var session = _session!;
        long now = _broker.NowMs;
        var outcome = ack.Type switch
        {
            PacketType.PubAck => session.OnPubAck(ack.PacketId, now),
            PacketType.PubRec => session.OnPubRec(ack.PacketId, ack.ReasonCode, now),
            PacketType.PubComp => session.OnPubComp(ack.PacketId, now),
            _ => AckOutcome.Done,
        };
        if (outcome == AckOutcome.WrongKind)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError,
                $"{ack.Type.ToString().ToUpperInvariant()} for packet id {ack.PacketId}, which awaits {session.AwaitedAck(ack.PacketId)}");
        }
        if (ack.Type == PacketType.PubRel)
        {
            // The second half of incoming QoS 2: release the id and complete (MQTT-4.3.3-?). An id already
            // released (a PUBREL resent after a reconnection, its PUBCOMP lost) gets PUBCOMP 0x00 as well: the
            // message was delivered once, which is what the client asks to know (Mosquitto answers the same).
            // PUBCOMP waits for the store too: were the id still stored as awaiting PUBREL after a crash, the
            // client's next message with that id would be taken for a resend and lost.
            session.RemoveIncomingQoS2(ack.PacketId);
            return SendDurable(new PublishAckPacket(PacketType.PubComp, ack.PacketId));
        }
        return default;
    }
}
