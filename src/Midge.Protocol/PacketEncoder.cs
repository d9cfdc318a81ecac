using System.Buffers;
using Midge.Protocol.Packets;

namespace Midge.Protocol;

/// <summary>
/// What differs per receiver when one shared <see cref="PublishPacket"/> is sent to many subscribers.
/// </summary>
public struct OutgoingPublish
{
    public QoS QoS;
    public ushort PacketId;
    public bool Retain;
    public bool Dup;
    /// <summary>MQTT 5: a topic alias to send (0 = none).</summary>
    public ushort TopicAlias;
    /// <summary>MQTT 5: send an empty topic name (the alias is already known to the receiver).</summary>
    public bool OmitTopic;
    /// <summary>MQTT 5: subscription identifiers to send (replacing any on the message).</summary>
    public uint[]? SubscriptionIdentifiers;
    /// <summary>MQTT 5: the remaining Message Expiry Interval to send (replacing the message's), or null to
    /// send none when the message had none.</summary>
    public uint? MessageExpiryInterval;
    /// <summary>Overrides <see cref="PublishPacket.Topic"/> (for mount points); null keeps the message's topic.</summary>
    public string? Topic;
}

/// <summary>Encodes packets into an <see cref="IBufferWriter{T}"/>.</summary>
public static class PacketEncoder
{
    /// <summary>Writes any packet. For PUBLISH it writes the packet as it is (its own QoS, id, flags and
    /// properties).</summary>
    public static void Write(IBufferWriter<byte> writer, MqttPacket packet, ProtocolVersion version)
    {
        throw new NotImplementedException();
    }

    /// <summary>The whole encoded size of <paramref name="packet"/> (fixed header included).</summary>
    public static int GetSize(MqttPacket packet, ProtocolVersion version)
    {
        throw new NotImplementedException();
    }

    /// <summary>
    /// Writes a PUBLISH of a shared message with per-receiver fields. For MQTT 5 the message's properties are
    /// written except Topic Alias, Subscription Identifier and Message Expiry Interval, which come from
    /// <paramref name="o"/>. For 3.x no properties are written.
    /// </summary>
    public static void WritePublish(IBufferWriter<byte> writer, ProtocolVersion version, PublishPacket message, in OutgoingPublish o)
    {
        throw new NotImplementedException();
    }

    /// <summary>The whole encoded size of what <see cref="WritePublish"/> would write.</summary>
    public static int GetPublishSize(ProtocolVersion version, PublishPacket message, in OutgoingPublish o)
    {
        throw new NotImplementedException();
    }
}
