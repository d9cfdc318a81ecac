using System.Buffers;
using Midge.Protocol.Packets;
using static Midge.Protocol.Tests.Codec;

namespace Midge.Protocol.Tests;

public class WritePublishTests
{
    private static PublishPacket Message() => new()
    {
        Topic = "a/b",
        QoS = QoS.ExactlyOnce,
        PacketId = 99,
        Retain = true,
        Payload = "hi"u8.ToArray(),
        Properties = new MqttProperties
        {
            ContentType = "text",
            TopicAlias = 9,
            MessageExpiryInterval = 600,
            SubscriptionIdentifiers = [77],
            UserProperties = [new UserProperty("k", "v")],
        },
    };

    private static byte[] Write(ProtocolVersion v, PublishPacket m, OutgoingPublish o)
    {
        var writer = new ArrayBufferWriter<byte>();
        PacketEncoder.WritePublish(writer, v, m, o);
        Assert.Equal(writer.WrittenCount, PacketEncoder.GetPublishSize(v, m, o));
        return writer.WrittenSpan.ToArray();
    }

    [Fact]
    public void V5_ReplacesPerReceiverProperties_AndKeepsTheRest()
    {
        var m = Message();
        var bytes = Write(ProtocolVersion.V500, m, new OutgoingPublish
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
        Assert.Equal((ushort)3, props.TopicAlias);
        Assert.Equal(42u, props.MessageExpiryInterval);
        Assert.Equal([1u, 300u], props.SubscriptionIdentifiers);
        Assert.Equal([new UserProperty("k", "v")], props.UserProperties);
        // The shared message is untouched.
        Assert.Equal((ushort)9, m.Properties!.TopicAlias);
    }

    [Fact]
    public void V5_WithoutPerReceiverValues_SendsNoneOfThem()
    {
        var bytes = Write(ProtocolVersion.V500, Message(), new OutgoingPublish { QoS = QoS.AtMostOnce });
        var p = Assert.IsType<PublishPacket>(Decode(bytes, ProtocolVersion.V500));
        Assert.Equal((ushort)0, p.PacketId);
        Assert.Null(p.Properties!.TopicAlias);
        Assert.Null(p.Properties.MessageExpiryInterval);
        Assert.Null(p.Properties.SubscriptionIdentifiers);
    }

    [Fact]
    public void V5_OmitTopic_SendsEmptyTopicWithAlias()
    {
        var bytes = Write(ProtocolVersion.V500, Message(), new OutgoingPublish { QoS = QoS.AtMostOnce, TopicAlias = 4, OmitTopic = true });
        var p = Assert.IsType<PublishPacket>(Decode(bytes, ProtocolVersion.V500));
        Assert.Equal("", p.Topic);
        Assert.Equal((ushort)4, p.Properties!.TopicAlias);
    }

    [Fact]
    public void V311_WritesNoProperties_AndHonoursTopicOverride()
    {
        var bytes = Write(ProtocolVersion.V311, Message(), new OutgoingPublish
        {
            QoS = QoS.AtLeastOnce,
            PacketId = 0x0102,
            Retain = true,
            TopicAlias = 4,
            OmitTopic = true,
            Topic = "m/a/b",
        });
        Assert.Equal("33 0B 00 05 6D 2F 61 2F 62 01 02 68 69", ToHex(bytes));
    }

    [Fact]
    public async Task LargePayload_IsWrittenAcrossSmallSpans()
    {
        var payload = new byte[100_000];
        new Random(1).NextBytes(payload);
        var m = new PublishPacket { Topic = "t", Payload = payload };
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(minimumSegmentSize: 512, pauseWriterThreshold: 0));
        PacketEncoder.WritePublish(pipe.Writer, ProtocolVersion.V500, m, new OutgoingPublish());
        await pipe.Writer.FlushAsync();
        Assert.True(pipe.Reader.TryRead(out var result));
        Check(result.Buffer, m, payload);
    }

    private static void Check(ReadOnlySequence<byte> buffer, PublishPacket m, byte[] payload)
    {
        Assert.False(buffer.IsSingleSegment);
        Assert.Equal(PacketEncoder.GetPublishSize(ProtocolVersion.V500, m, new OutgoingPublish()), buffer.Length);
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _));
        var p = Assert.IsType<PublishPacket>(PacketDecoder.Decode(header, body, ProtocolVersion.V500));
        Assert.Equal(payload, p.Payload.ToArray());
    }
}
