using System.Buffers;
using Midge.Protocol.Packets;

namespace Midge.Protocol;

/// <summary>Decodes one frame body into a packet, enforcing every validation rule of the specs.</summary>
public static class PacketDecoder
{
    /// <summary>
    /// Decodes the frame. <paramref name="version"/> is the version negotiated by CONNECT (ignored when the
    /// frame is a CONNECT, which carries its own). Throws <see cref="MqttProtocolException"/> on malformed or
    /// protocol-violating input. Payloads are copied out of <paramref name="body"/> exactly once, so the caller
    /// may release the buffer after the call.
    /// </summary>
    public static MqttPacket Decode(byte header, in ReadOnlySequence<byte> body, ProtocolVersion version)
    {
        throw new NotImplementedException();
    }
}
