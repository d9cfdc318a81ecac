using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Messages;

/// <summary>
/// One application message inside the broker. It is created once per incoming PUBLISH (or will, or $SYS
/// update) and shared, payload and properties included, by every subscriber queue that holds it; per-receiver
/// fields are chosen at encode time.
/// </summary>
public sealed class Message
{
    public Message(PublishPacket packet, string? originClientId, long expiresAtMs, string? originUserName = null)
    {
        Packet = packet;
        OriginClientId = originClientId;
        OriginUserName = originUserName;
        ExpiresAtMs = expiresAtMs;
    }

    /// <summary>The packet as received, with its topic already prefixed by the publisher's mount point.</summary>
    public PublishPacket Packet { get; }

    public string Topic => Packet.Topic;

    /// <summary>The QoS it was published with.</summary>
    public QoS QoS => Packet.QoS;

    /// <summary>The retain flag it was published with.</summary>
    public bool Retain => Packet.Retain;

    public ReadOnlyMemory<byte> Payload => Packet.Payload;

    public int PayloadLength => Packet.Payload.Length;

    /// <summary>Client id of the publisher (for No Local), or null for broker-made messages.</summary>
    public string? OriginClientId { get; }

    /// <summary>User name of the publisher, for <c>check_retain_source</c>.</summary>
    public string? OriginUserName { get; }

    /// <summary>Broker clock (ms) at which the MQTT 5 Message Expiry Interval runs out; 0 = never.</summary>
    public long ExpiresAtMs { get; }

    public bool IsExpired(long nowMs) => ExpiresAtMs != 0 && nowMs >= ExpiresAtMs;

    /// <summary>Seconds left, rounded up, for the Message Expiry Interval forwarded to a receiver.</summary>
    public uint? RemainingExpirySeconds(long nowMs)
    {
        if (ExpiresAtMs == 0) return null;
        long left = ExpiresAtMs - nowMs;
        return left <= 0 ? 0u : (uint)((left + 999) / 1000);
    }

    /// <summary>Builds a message from a decoded PUBLISH, computing its expiry from the properties.</summary>
    public static Message FromPublish(PublishPacket packet, string? originClientId, long nowMs, string? originUserName = null)
    {
        uint? expiry = packet.Properties?.MessageExpiryInterval;
        return new Message(packet, originClientId, expiry is { } s ? nowMs + (long)s * 1000 : 0, originUserName);
    }

    /// <summary>Builds a broker-made message (will, $SYS).</summary>
    public static Message Create(string topic, ReadOnlyMemory<byte> payload, QoS qos, bool retain,
        MqttProperties? properties, string? originClientId, long nowMs, string? originUserName = null)
    {
        var packet = new PublishPacket { Topic = topic, Payload = payload, QoS = qos, Retain = retain, Properties = properties };
        return FromPublish(packet, originClientId, nowMs, originUserName);
    }
}
