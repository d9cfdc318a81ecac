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
    /// <summary>
    /// Tries to read one frame. <paramref name="maxPacketSize"/> is the largest whole packet accepted
    /// (fixed header included); 0 means the protocol maximum (268,435,460 bytes).
    /// On <see cref="FrameStatus.Complete"/>, <paramref name="buffer"/> is advanced past the frame,
    /// <paramref name="body"/> is a slice of the original buffer, and <paramref name="frameLength"/> is the
    /// whole packet size. On <see cref="FrameStatus.TooLarge"/>, <paramref name="frameLength"/> is the size
    /// announced.
    /// </summary>
    public static FrameStatus TryRead(ref ReadOnlySequence<byte> buffer, int maxPacketSize, out byte header,
        out ReadOnlySequence<byte> body, out int frameLength)
    {
        throw new NotImplementedException();
    }
}
