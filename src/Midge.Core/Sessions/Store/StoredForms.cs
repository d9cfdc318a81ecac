using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Sessions.Store;

/// <summary>
/// Turns the broker's messages into the records a store keeps and back. The broker's clock (<see cref="Broker.NowMs"/>)
/// means nothing in another process, so times are stored as wall-clock times and turned back into the clock of the
/// process that reads them.
/// </summary>
internal static class StoredForms
{
    /// <summary>The stored form of <paramref name="message"/>: made on first use and kept on the message, so every
    /// session that records it passes the same record (a store keeps one copy).</summary>
    public static StoredMessage ToStored(Message message, long nowMs, DateTimeOffset utcNow) =>
        message.StoredForm ??= Create(message, nowMs, utcNow);

    private static StoredMessage Create(Message message, long nowMs, DateTimeOffset utcNow) =>
        new(message.Topic, message.Payload, message.QoS, message.Retain)
        {
            Properties = message.Properties?.ToMqttProperties(),
            OriginClientId = message.OriginClientId,
            OriginUserName = message.OriginUserName,
            ExpiresAt = message.ExpiresAtMs == 0 ? null : utcNow.AddMilliseconds(message.ExpiresAtMs - nowMs),
        };

    public static Message ToMessage(StoredMessage stored, long nowMs, DateTimeOffset utcNow)
    {
        long expiresAtMs = 0;
        if (stored.ExpiresAt is { } at)
        {
            expiresAtMs = nowMs + (long)(at - utcNow).TotalMilliseconds;
            if (expiresAtMs == 0) expiresAtMs = -1; // 0 means never; this one has expired
        }
        return new Message(stored.Topic, stored.Payload, stored.QoS, stored.Retain, PublishProperties.From(stored.Properties),
            stored.OriginClientId, stored.OriginUserName, expiresAtMs);
    }

    /// <summary>The message of a stored record as a restart brings it back: one per record however many sessions hold
    /// it (<paramref name="restored"/> remembers them), with the record as its stored form, so that the store knows it
    /// when it is passed again.</summary>
    public static Message Restore(StoredMessage stored, long nowMs, DateTimeOffset utcNow, Dictionary<StoredMessage, Message> restored)
    {
        ref var message = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(restored, stored, out _);
        if (message is null)
        {
            message = ToMessage(stored, nowMs, utcNow);
            message.StoredForm = stored;
        }
        return message;
    }

    /// <summary>A connection's will, as it waits with the connection up (no due time yet).
    /// <paramref name="publishProperties"/>: its properties as the PUBLISH will carry them.</summary>
    public static StoredWill ToStored(WillMessage will, MqttProperties? publishProperties, string clientId) =>
        new(new StoredMessage(will.Topic, will.Payload, will.QoS, will.Retain) { Properties = publishProperties, OriginClientId = clientId },
            will.Properties?.WillDelayInterval ?? 0);

    /// <summary>The message a stored will becomes when it is published (its expiry counts from then).</summary>
    public static Message WillMessage(StoredWill will, long nowMs)
    {
        var m = will.Message;
        return Message.Create(m.Topic, m.Payload, m.QoS, m.Retain, m.Properties, m.OriginClientId, nowMs, m.OriginUserName);
    }

    /// <summary>Broker clock (ms) of a wall-clock time.</summary>
    public static long ToClock(DateTimeOffset at, long nowMs, DateTimeOffset utcNow) => nowMs + (long)(at - utcNow).TotalMilliseconds;
}
