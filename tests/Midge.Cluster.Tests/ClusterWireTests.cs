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
    public void A_numbered_message_crosses_with_the_publishing_node_its_run_and_each_receiving_nodes_number()
    {
        var sent = Message.Create("t/x", "p"u8.ToArray(), QoS.ExactlyOnce, retain: false, null, "c", nowMs: 0);
        var buffer = new ArrayBufferWriter<byte>();
        var numbering = new ClusterWire.Numbering("node-a", 77, [new("node-b", 1L << 40, 5), new("node-c", 3, 1)]);
        ClusterWire.Write(buffer, sent, nowMs: 0, groupsServed: true, numbering);
        var got = ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), 0, out bool served, out var read);
        Assert.Equal(("t/x", "c", QoS.ExactlyOnce), (got.Topic, got.OriginClientId, got.QoS));
        Assert.True(served);
        Assert.Equal(("node-a", 77L), (read!.Origin, read.Epoch));
        Assert.Equal(numbering.Numbers, read.Numbers);
        Assert.Equal(new ClusterWire.Number("node-c", 3, 1), read.For("node-c"));
        Assert.Null(read.For("node-d"));

        // Truncated inside the numbering: refused, not misread; a count larger than what follows is refused before
        // anything is allocated for it.
        Assert.Throws<FormatException>(() => ClusterWire.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory[..30]), 0, out _, out _));
        var huge = buffer.WrittenMemory.ToArray();
        int count = 2 + 4 + "node-a".Length + 8;
        huge[count] = 0x7F;
        Assert.Throws<FormatException>(() => ClusterWire.Read(new ReadOnlySequence<byte>(huge), 0, out _, out _));
    }

    [Fact]
    public void A_version_2_message_with_its_single_number_is_read_unnumbered()
    {
        var sent = Message.Create("t/x", "p"u8.ToArray(), QoS.AtLeastOnce, retain: false, null, "c", nowMs: 0);
        var buffer = new ArrayBufferWriter<byte>();
        ClusterWire.Write(buffer, sent, nowMs: 0);
        var rest = buffer.WrittenMemory.ToArray()[2..];
        byte[] version2 = [2, 2, 0, 0, 0, 1, (byte)'a', 0, 0, 0, 0, 0, 0, 0, 9, .. rest];
        var got = ClusterWire.Read(new ReadOnlySequence<byte>(version2), 0, out _, out var numbering);
        Assert.Equal("t/x", got.Topic);
        Assert.Null(numbering);
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
