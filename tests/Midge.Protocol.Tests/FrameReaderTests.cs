using System.Buffers;
using static Midge.Protocol.Tests.Codec;

namespace Midge.Protocol.Tests;

public class FrameReaderTests
{
    [Fact]
    public void IncompleteAtEveryCutPoint_LeavesBufferUntouched()
    {
        foreach (var golden in GoldenTests.Cases)
        {
            var bytes = Hex(golden.Hex);
            for (int cut = 0; cut < bytes.Length; cut++)
            {
                foreach (var buffer0 in new[] { new ReadOnlySequence<byte>(bytes, 0, cut), SegmentPerByte(bytes[..cut]) })
                {
                    var buffer = buffer0;
                    var status = FrameReader.TryRead(ref buffer, 0, out _, out _, out _);
                    Assert.Equal(FrameStatus.Incomplete, status);
                    Assert.Equal(buffer0.Length, buffer.Length);
                    Assert.True(buffer0.Start.Equals(buffer.Start));
                }
            }
            var whole = new ReadOnlySequence<byte>(bytes);
            Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref whole, 0, out byte header, out var body, out int frameLength));
            Assert.Equal(bytes[0], header);
            Assert.Equal(bytes.Length, frameLength);
            Assert.Equal(0, whole.Length);
            Assert.Equal(bytes.Length - body.Length, frameLength - body.Length);
        }
    }

    [Fact]
    public void TooLarge_IsReportedBeforeTheBodyArrives()
    {
        // Remaining length 1024 announced, nothing of the body buffered yet.
        var buffer = new ReadOnlySequence<byte>(Hex("30 80 08"));
        var status = FrameReader.TryRead(ref buffer, 100, out byte header, out _, out int frameLength);
        Assert.Equal(FrameStatus.TooLarge, status);
        Assert.Equal(0x30, header);
        Assert.Equal(3 + 1024, frameLength);

        // The protocol maximum, announced in 5 bytes, against a 1 MiB limit.
        buffer = new ReadOnlySequence<byte>(Hex("30 FF FF FF 7F"));
        Assert.Equal(FrameStatus.TooLarge, FrameReader.TryRead(ref buffer, 1 << 20, out _, out _, out frameLength));
        Assert.Equal(5 + 268_435_455, frameLength);
    }

    [Fact]
    public void PublishLimit_AppliesToPublishFramesOnly_FromTheirHeader()
    {
        // A PUBLISH announcing 10,000 bytes, of which only the header has arrived.
        var publish = new ReadOnlySequence<byte>(new byte[] { 0x30, 0x90, 0x4E });
        Assert.Equal(FrameStatus.TooLarge, FrameReader.TryRead(ref publish, 0, out _, out _, out int announced, maxPublishSize: 5000));
        Assert.Equal(10_003, announced);
        // Any other packet type of that size is only subject to maxPacketSize.
        var subscribe = new ReadOnlySequence<byte>(new byte[] { 0x82, 0x90, 0x4E });
        Assert.Equal(FrameStatus.Incomplete, FrameReader.TryRead(ref subscribe, 0, out _, out _, out _, maxPublishSize: 5000));
    }

    [Fact]
    public void Limit_CountsTheWholePacket()
    {
        var bytes = Hex("30 07 00 03 61 2F 62 68 69");
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.Equal(FrameStatus.TooLarge, FrameReader.TryRead(ref buffer, bytes.Length - 1, out _, out _, out _));
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, bytes.Length, out _, out _, out _));
    }

    [Theory]
    [InlineData("30 80 80 80 80 01")] // five length bytes
    [InlineData("30 FF FF FF FF")] // the fourth byte already says a fifth follows
    [InlineData("30 80 00")] // MQTT-1.5.5-1: non-minimal
    [InlineData("30 FF 80 00")]
    public void MalformedLength(string hex)
    {
        var buffer = new ReadOnlySequence<byte>(Hex(hex));
        Assert.Equal(FrameStatus.MalformedLength, FrameReader.TryRead(ref buffer, 0, out _, out _, out _));
        buffer = SegmentPerByte(Hex(hex));
        Assert.Equal(FrameStatus.MalformedLength, FrameReader.TryRead(ref buffer, 0, out _, out _, out _));
    }

    [Theory]
    [InlineData("00", 0)]
    [InlineData("7F", 127)]
    [InlineData("80 01", 128)]
    [InlineData("FF 7F", 16_383)]
    [InlineData("80 80 01", 16_384)]
    [InlineData("FF FF 7F", 2_097_151)]
    [InlineData("80 80 80 01", 2_097_152)]
    [InlineData("FF FF FF 7F", 268_435_455)]
    public void LengthWidths_DecodeTheirLimits(string lengthHex, int remaining)
    {
        var length = Hex(lengthHex);
        int frame = 1 + length.Length + remaining;
        // Header only: incomplete without a limit, too large with a limit one byte short, incomplete at the limit.
        var head = new byte[1 + length.Length];
        head[0] = 0x30;
        length.CopyTo(head, 1);
        if (remaining > 0)
        {
            var buffer = new ReadOnlySequence<byte>(head);
            Assert.Equal(FrameStatus.Incomplete, FrameReader.TryRead(ref buffer, 0, out _, out _, out _));
            Assert.Equal(FrameStatus.Incomplete, FrameReader.TryRead(ref buffer, frame, out _, out _, out _));
            Assert.Equal(FrameStatus.TooLarge, FrameReader.TryRead(ref buffer, frame - 1, out _, out _, out int announced));
            Assert.Equal(frame, announced);
        }
        if (remaining <= 2_097_152)
        {
            var bytes = new byte[frame + 2];
            head.CopyTo(bytes, 0);
            var buffer = new ReadOnlySequence<byte>(bytes);
            Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out _, out var body, out int frameLength));
            Assert.Equal(remaining, body.Length);
            Assert.Equal(frame, frameLength);
            Assert.Equal(2, buffer.Length);
        }
    }

    [Fact]
    public void SeveralFrames_AreReadOneAfterAnother()
    {
        var buffer = new ReadOnlySequence<byte>(Hex("C0 00 40 02 00 01 D0 00 30"));
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out byte h1, out _, out _));
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out byte h2, out var b2, out _));
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out byte h3, out _, out _));
        Assert.Equal(FrameStatus.Incomplete, FrameReader.TryRead(ref buffer, 0, out _, out _, out _));
        Assert.Equal((0xC0, 0x40, 0xD0), (h1, h2, h3));
        Assert.Equal(2, b2.Length);
        Assert.Equal(1, buffer.Length);
    }
}
