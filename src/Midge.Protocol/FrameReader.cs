using System.Buffers;

namespace Midge.Protocol;

public enum FrameStatus
{
    /// <summary>A whole frame was read; the buffer was advanced past it.</summary>
    Complete,
    /// <summary>More bytes are needed; the buffer is unchanged.</summary>
    Incomplete,
    /// <summary>The remaining length announces a frame larger than the limit (checked before buffering).</summary>
    TooLarge,
    /// <summary>The remaining length encoding is invalid (more than 4 bytes, or non-minimal where disallowed).</summary>
    MalformedLength,
}

/// <summary>Splits a byte stream into MQTT frames: fixed header byte, remaining length, body.</summary>
public static class FrameReader
{
    /// <summary>Largest remaining length a 4-byte Variable Byte Integer can carry.</summary>
    public const int MaxRemainingLength = 268_435_455;

    /// <summary>
    /// Tries to read one frame. <paramref name="maxPacketSize"/> is the largest whole packet accepted
    /// (fixed header included); 0 means the protocol maximum (268,435,460 bytes).
    /// On <see cref="FrameStatus.Complete"/>, <paramref name="buffer"/> is advanced past the frame,
    /// <paramref name="body"/> is a slice of the original buffer, and <paramref name="frameLength"/> is the
    /// whole packet size. On <see cref="FrameStatus.TooLarge"/>, <paramref name="frameLength"/> is the size
    /// announced. A non-minimal remaining length (a trailing 0x00 length byte) is
    /// <see cref="FrameStatus.MalformedLength"/> (MQTT-1.5.5-1). <paramref name="maxPublishSize"/>, when not 0,
    /// is a further limit for PUBLISH frames alone.
    /// </summary>
    public static FrameStatus TryRead(ref ReadOnlySequence<byte> buffer, int maxPacketSize, out byte header,
        out ReadOnlySequence<byte> body, out int frameLength, int maxPublishSize = 0)
    {
        body = default;
        header = 0;
        frameLength = 0;

        scoped ReadOnlySpan<byte> head = buffer.FirstSpan;
        Span<byte> scratch = stackalloc byte[5];
        if (head.Length < 5 && !buffer.IsSingleSegment)
        {
            int n = (int)Math.Min(5, buffer.Length);
            buffer.Slice(0, n).CopyTo(scratch);
            head = scratch[..n];
        }
        if (head.Length < 2) return FrameStatus.Incomplete;

        int remaining = 0;
        int i = 1;
        while (true)
        {
            if (i >= head.Length) return FrameStatus.Incomplete;
            byte b = head[i];
            remaining |= (b & 0x7F) << (7 * (i - 1));
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 1) return FrameStatus.MalformedLength;
                break;
            }
            if (i == 4) return FrameStatus.MalformedLength;
            i++;
        }

        header = head[0];
        int headerLength = i + 1;
        frameLength = headerLength + remaining;
        if (maxPacketSize > 0 && frameLength > maxPacketSize) return FrameStatus.TooLarge;
        if (maxPublishSize > 0 && frameLength > maxPublishSize && header >> 4 == (int)PacketType.Publish) return FrameStatus.TooLarge;
        if (buffer.Length < frameLength)
        {
            header = 0;
            frameLength = 0;
            return FrameStatus.Incomplete;
        }
        body = buffer.Slice(headerLength, remaining);
        buffer = buffer.Slice(frameLength);
        return FrameStatus.Complete;
    }
}
