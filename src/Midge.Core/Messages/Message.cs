using System.Buffers;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Messages;

/// <summary>
/// One application message inside the broker: an immutable value, created once per incoming PUBLISH (or will, or
/// $SYS update) and shared, payload and properties included, by every subscriber queue, retained slot and route
/// destination that holds it. What differs per receiver (packet id, QoS, retain, DUP, subscription identifiers,
/// remaining expiry, topic alias, mount point) travels beside it as <see cref="OutgoingPublish"/> and is written at
/// encode time (<see cref="Encode"/>).
/// </summary>
/// <remarks>
/// Everything that rewrites a PUBLISH (a mount point prefixed to the topic, a topic alias resolved) happens on the
/// decoded packet before the message is built from it; nothing changes a message after.
/// </remarks>
public sealed class Message
{
    public Message(string topic, ReadOnlyMemory<byte> payload, QoS qos, bool retain, PublishProperties? properties,
        string? originClientId, string? originUserName, long expiresAtMs)
    {
        Topic = topic;
        Payload = payload;
        QoS = qos;
        Retain = retain;
        Properties = properties;
        OriginClientId = originClientId;
        OriginUserName = originUserName;
        ExpiresAtMs = expiresAtMs;
    }

    /// <summary>The topic, with the publisher's mount point already prefixed.</summary>
    public string Topic { get; }

    /// <summary>The payload: the bytes the decoder copied out of the receive buffer, which nothing writes to.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    public int PayloadLength => Payload.Length;

    /// <summary>The QoS it was published with.</summary>
    public QoS QoS { get; }

    /// <summary>The retain flag it was published with.</summary>
    public bool Retain { get; }

    /// <summary>The MQTT 5 properties forwarded to every receiver; null when it has none.</summary>
    public PublishProperties? Properties { get; }

    /// <summary>Client id of the publisher (for No Local), or null for broker-made messages.</summary>
    public string? OriginClientId { get; }

    /// <summary>User name of the publisher, for <c>check_retain_source</c>.</summary>
    public string? OriginUserName { get; }

    /// <summary>Broker clock (ms) at which the MQTT 5 Message Expiry Interval runs out; 0 = never.</summary>
    public long ExpiresAtMs { get; }

    /// <summary>The record a session store keeps of this message, made once (<see cref="Sessions.Store.StoredForms"/>)
    /// and shared by every session that records it, so that a store can keep one copy of a message fanned out to
    /// many stored sessions. Set at most once; a race makes two equal records, never a wrong one.</summary>
    internal Sessions.Store.StoredMessage? StoredForm { get; set; }

    public bool IsExpired(long nowMs) => ExpiresAtMs != 0 && nowMs >= ExpiresAtMs;

    /// <summary>Seconds left, rounded up, for the Message Expiry Interval forwarded to a receiver.</summary>
    public uint? RemainingExpirySeconds(long nowMs)
    {
        if (ExpiresAtMs == 0) return null;
        long left = ExpiresAtMs - nowMs;
        return left <= 0 ? 0u : (uint)((left + 999) / 1000);
    }

    /// <summary>Writes this message as a PUBLISH to one receiver, with that receiver's <paramref name="fields"/>.</summary>
    public void Encode(IBufferWriter<byte> output, ProtocolVersion version, in OutgoingPublish fields) =>
        PacketEncoder.WritePublish(output, version, Topic, Payload.Span, Properties, fields);

    /// <summary>The size of what <see cref="Encode"/> writes.</summary>
    public int EncodedSize(ProtocolVersion version, in OutgoingPublish fields) =>
        PacketEncoder.GetPublishSize(version, Topic, Payload.Length, Properties, fields);

    /// <summary>Builds a message from a decoded PUBLISH (its topic already resolved and prefixed), computing its
    /// expiry from the properties. The packet is not kept.</summary>
    public static Message FromPublish(PublishPacket packet, string? originClientId, long nowMs, string? originUserName = null) =>
        Create(packet.Topic, packet.Payload, packet.QoS, packet.Retain, packet.Properties, originClientId, nowMs, originUserName);

    /// <summary>Builds a message (a PUBLISH's, a will, $SYS); of <paramref name="properties"/> it keeps the forwarded
    /// ones and the Message Expiry Interval, as an expiry time.</summary>
    public static Message Create(string topic, ReadOnlyMemory<byte> payload, QoS qos, bool retain,
        MqttProperties? properties, string? originClientId, long nowMs, string? originUserName = null)
    {
        uint? expiry = properties?.MessageExpiryInterval;
        return new Message(topic, payload, qos, retain, PublishProperties.From(properties), originClientId, originUserName,
            expiry is { } s ? nowMs + (long)s * 1000 : 0);
    }
}
