using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Channel;

/// <summary>
/// Where a channel's outgoing packets go: the connection's single writer (in production) or a recorder (in
/// tests). Calls never block and never do I/O themselves; they may be made from any thread.
/// </summary>
public interface IClientOutput
{
    /// <summary>Queues a control packet.</summary>
    void Send(MqttPacket packet);

    /// <summary>Queues a PUBLISH of a shared message with per-receiver fields.</summary>
    void SendPublish(Message message, in OutgoingPublish fields);

    /// <summary>Packets queued and not yet written to the socket (the session holds back QoS 0 when high).</summary>
    int Backlog { get; }

    /// <summary>Payload bytes of the PUBLISHes queued and not yet encoded for the socket: what a client that stops
    /// reading makes the broker hold (the session holds back QoS 0 when high, see Session.MaxDirectBacklogBytes).</summary>
    long BacklogBytes { get; }

    /// <summary>Closes the connection after what is queued (and <paramref name="finalPacket"/>, if any) is written.</summary>
    void Close(MqttPacket? finalPacket);
}
