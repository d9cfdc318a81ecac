using System.Buffers;
using Midge.Core.Messages;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>A message as it crosses between nodes, and back.</summary>
public class ClusterWireTests
{
    [Fact]
    public void EverythingForwarded_SurvivesTheCrossing()
    {
        var properties = new MqttProperties
        {
            PayloadFormatIndicator = 1,
            ContentType = "text/plain",
            ResponseTopic = "reply/here",
            CorrelationData = [1, 2, 3],
            MessageExpiryInterval = 60,
            UserProperties = [new UserProperty("k", "v"), new UserProperty("k", "v2")],
        };
        var sent = Message.Create("a/b c/é", "payload"u8.ToArray(), QoS.ExactlyOnce, retain: true, properties, "publisher", nowMs: 1_000, "user");
        var buffer = new ArrayBufferWriter<byte>();
        ClusterWire.Write(buffer, sent, nowMs: 11_000); // 10 s later: 50 s left

        var got = ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), nowMs: 500_000);
        Assert.Equal(("a/b c/é", "payload", QoS.ExactlyOnce, true), (got.Topic, System.Text.Encoding.UTF8.GetString(got.Payload.Span), got.QoS, got.Retain));
        Assert.Equal(("publisher", "user"), (got.OriginClientId, got.OriginUserName));
        Assert.Equal(550_000, got.ExpiresAtMs);
        var p = got.Properties!;
        Assert.Equal((1, "text/plain", "reply/here"), (p.PayloadFormatIndicator!.Value, p.ContentType, p.ResponseTopic));
        Assert.Equal([1, 2, 3], p.CorrelationData!.Value.ToArray());
        Assert.Equal([new UserProperty("k", "v"), new UserProperty("k", "v2")], p.UserProperties.ToArray());
    }

    [Fact]
    public void BrokerMessages_HaveNoOrigin()
    {
        var sent = Message.Create("$SYS/x", ReadOnlyMemory<byte>.Empty, QoS.AtMostOnce, retain: false, null, null, nowMs: 0);
        var buffer = new ArrayBufferWriter<byte>();
        ClusterWire.Write(buffer, sent, nowMs: 0);
        var got = ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), nowMs: 0);
        Assert.Equal((null, null, 0L, 0, (PublishProperties?)null), (got.OriginClientId, got.OriginUserName, got.ExpiresAtMs, got.PayloadLength, got.Properties));
    }

    [Fact]
    public void The_groups_served_flag_crosses_and_a_version_1_message_is_still_read()
    {
        var sent = Message.Create("t", "p"u8.ToArray(), QoS.AtLeastOnce, retain: false, null, "c", nowMs: 0);
        var buffer = new ArrayBufferWriter<byte>();
        ClusterWire.Write(buffer, sent, nowMs: 0, groupsServed: true);
        Assert.Equal("t", ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), 0, out bool served, out _).Topic);
        Assert.True(served);

        buffer.ResetWrittenCount();
        ClusterWire.Write(buffer, sent, nowMs: 0);
        var version1 = buffer.WrittenMemory.ToArray() is var bytes && bytes[1] == 0 ? [1, .. bytes[2..]] : bytes;
        Assert.Equal(("t", "c"), ClusterWire.Read(new ReadOnlySequence<byte>(version1), 0, out served, out _) is var got ? (got.Topic, got.OriginClientId) : default);
        Assert.False(served);
    }

    [Fact]
    public void A_confirmation_request_crosses_with_the_publishing_node_and_its_number()
    {
        var sent = Message.Create("t/x", "p"u8.ToArray(), QoS.ExactlyOnce, retain: false, null, "c", nowMs: 0);
        var buffer = new ArrayBufferWriter<byte>();
        ClusterWire.Write(buffer, sent, nowMs: 0, groupsServed: true, confirm: new ClusterWire.Confirmation("node-a", 1L << 40));
        var got = ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), 0, out bool served, out var confirm);
        Assert.Equal(("t/x", "c", QoS.ExactlyOnce), (got.Topic, got.OriginClientId, got.QoS));
        Assert.True(served);
        Assert.Equal(new ClusterWire.Confirmation("node-a", 1L << 40), confirm);

        // Truncated inside the confirmation: refused, not misread.
        Assert.Throws<FormatException>(() => ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory[..12]), 0, out _, out _));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 2, 0, 0 })]
    [InlineData(new byte[] { 1, 0xFF, 0xFF, 0xFF, 0xFF })]
    [InlineData(new byte[] { 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x30, 5, 0 })]
    [InlineData(new byte[] { 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x20, 2, 0, 0 })]
    [InlineData(new byte[] { 1, 0, 0, 0, 9, 0x61 })]
    public void Garbage_IsAFormatException(byte[] bytes) =>
        Assert.Throws<FormatException>(() => ClusterWire.Read(new ReadOnlySequence<byte>(bytes), 0));
}
