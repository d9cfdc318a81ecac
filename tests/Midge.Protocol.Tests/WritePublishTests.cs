using System.Buffers;
using Midge.Protocol.Packets;
using static Midge.Protocol.Tests.Codec;

namespace Midge.Protocol.Tests;

public class WritePublishTests
{
    /// <summary>The forwarded properties of a shared message.</summary>
    private static PublishProperties Properties() => new(
        contentType: "text", correlationData: new byte[] { 7, 8 }, userProperties: [new UserProperty("k", "v")]);

    private static byte[] Write(ProtocolVersion v, OutgoingPublish o, PublishProperties? properties = null)
    {
        var writer = new ArrayBufferWriter<byte>();
        properties ??= Properties();
        PacketEncoder.WritePublish(writer, v, "a/b", "hi"u8, properties, o);
        Assert.Equal(writer.WrittenCount, PacketEncoder.GetPublishSize(v, "a/b", 2, properties, o));
        return writer.WrittenSpan.ToArray();
    }

    [Fact]
    public void V5_WritesForwardedProperties_ThenPerReceiverOnes()
    {
        var bytes = Write(ProtocolVersion.V500, new OutgoingPublish
        {
            QoS = QoS.AtLeastOnce,
            PacketId = 5,
            Dup = true,
            TopicAlias = 3,
            SubscriptionIdentifiers = [1, 300],
            MessageExpiryInterval = 42,
        });
        var p = Assert.IsType<PublishPacket>(Decode(bytes, ProtocolVersion.V500));
        Assert.Equal(("a/b", QoS.AtLeastOnce, (ushort)5, true, false), (p.Topic, p.QoS, p.PacketId, p.Dup, p.Retain));
        Assert.Equal("hi"u8.ToArray(), p.Payload.ToArray());
        var props = p.Properties!;
        Assert.Equal("text", props.ContentType);
        Assert.Equal([7, 8], props.CorrelationData);
        Assert.Equal((ushort)3, props.TopicAlias);
        Assert.Equal(42u, props.MessageExpiryInterval);
        Assert.Equal([1u, 300u], props.SubscriptionIdentifiers);
        Assert.Equal([new UserProperty("k", "v")], props.UserProperties);
    }

    [Fact]
    public void V5_WithoutPerReceiverValues_SendsNoneOfThem()
    {
        var bytes = Write(ProtocolVersion.V500, new OutgoingPublish { QoS = QoS.AtMostOnce });
        var p = Assert.IsType<PublishPacket>(Decode(bytes, ProtocolVersion.V500));
        Assert.Equal((ushort)0, p.PacketId);
        Assert.Null(p.Properties!.TopicAlias);
        Assert.Null(p.Properties.MessageExpiryInterval);
        Assert.Null(p.Properties.SubscriptionIdentifiers);
    }

    [Fact]
    public void PublishProperties_KeepOnlyWhatIsForwarded_AndCopyCorrelationData()
    {
        var decoded = new MqttProperties
        {
            PayloadFormatIndicator = 1,
            ResponseTopic = "r",
            CorrelationData = [1, 2],
            TopicAlias = 9,
            MessageExpiryInterval = 600,
            UserProperties = [new UserProperty("a", "1"), new UserProperty("a", "2")],
        };
        var forwarded = PublishProperties.From(decoded)!;
        decoded.CorrelationData[0] = 99; // the decoded packet's array is not what the message holds
        decoded.UserProperties.Clear();
        Assert.Equal((byte)1, forwarded.PayloadFormatIndicator);
        Assert.Equal("r", forwarded.ResponseTopic);
        Assert.Null(forwarded.ContentType);
        Assert.Equal([1, 2], forwarded.CorrelationData!.Value.ToArray());
        Assert.Equal([new UserProperty("a", "1"), new UserProperty("a", "2")], forwarded.UserProperties.ToArray());

        var p = Assert.IsType<PublishPacket>(Decode(Write(ProtocolVersion.V500, new OutgoingPublish(), forwarded), ProtocolVersion.V500));
        Assert.Equal(((byte?)1, "r", (ushort?)null, (uint?)null), (p.Properties!.PayloadFormatIndicator, p.Properties.ResponseTopic,
            p.Properties.TopicAlias, p.Properties.MessageExpiryInterval));
        Assert.Equal([1, 2], p.Properties.CorrelationData);
        Assert.Equal(2, p.Properties.UserProperties!.Count);
    }

    [Fact]
    public void PublishProperties_NoneToForward_IsNull_AndAnEmptyCorrelationDataIsKept()
    {
        Assert.Null(PublishProperties.From(null));
        Assert.Null(PublishProperties.From(new MqttProperties { TopicAlias = 1, MessageExpiryInterval = 5, UserProperties = [] }));
        var empty = PublishProperties.From(new MqttProperties { CorrelationData = [] })!;
        Assert.Equal(0, empty.CorrelationData!.Value.Length);
        var p = Assert.IsType<PublishPacket>(Decode(Write(ProtocolVersion.V500, new OutgoingPublish(), empty), ProtocolVersion.V500));
        Assert.Equal([], p.Properties!.CorrelationData!);
    }

    [Fact]
    public void V5_OmitTopic_SendsEmptyTopicWithAlias()
    {
        var bytes = Write(ProtocolVersion.V500, new OutgoingPublish { QoS = QoS.AtMostOnce, TopicAlias = 4, OmitTopic = true });
        var p = Assert.IsType<PublishPacket>(Decode(bytes, ProtocolVersion.V500));
        Assert.Equal("", p.Topic);
        Assert.Equal((ushort)4, p.Properties!.TopicAlias);
    }

    [Fact]
    public void V311_WritesNoProperties_AndLeavesOutTheMountPoint()
    {
        var bytes = Write(ProtocolVersion.V311, new OutgoingPublish
        {
            QoS = QoS.AtLeastOnce,
            PacketId = 0x0102,
            Retain = true,
            TopicAlias = 4,
            OmitTopic = true,
            TopicStart = 2, // "a/" is the receiver's mount point
        });
        Assert.Equal("33 07 00 01 62 01 02 68 69", ToHex(bytes));
    }

    [Fact]
    public void V5_TopicStart_LeavesOutTheMountPoint()
    {
        var bytes = Write(ProtocolVersion.V500, new OutgoingPublish { QoS = QoS.AtMostOnce, TopicStart = 2 });
        Assert.Equal("b", Assert.IsType<PublishPacket>(Decode(bytes, ProtocolVersion.V500)).Topic);
    }

    [Fact]
    public async Task LargePayload_IsWrittenAcrossSmallSpans()
    {
        var payload = new byte[100_000];
        new Random(1).NextBytes(payload);
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(minimumSegmentSize: 512, pauseWriterThreshold: 0));
        PacketEncoder.WritePublish(pipe.Writer, ProtocolVersion.V500, "t", payload, null, new OutgoingPublish());
        await pipe.Writer.FlushAsync();
        Assert.True(pipe.Reader.TryRead(out var result));
        Check(result.Buffer, payload);
    }

    private static void Check(ReadOnlySequence<byte> buffer, byte[] payload)
    {
        Assert.False(buffer.IsSingleSegment);
        Assert.Equal(PacketEncoder.GetPublishSize(ProtocolVersion.V500, "t", payload.Length, null, new OutgoingPublish()), buffer.Length);
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _));
        var p = Assert.IsType<PublishPacket>(PacketDecoder.Decode(header, body, ProtocolVersion.V500));
        Assert.Equal(payload, p.Payload.ToArray());
    }
}
