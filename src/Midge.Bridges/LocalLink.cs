using System.Threading.Channels;
using Midge.Config;
using Midge.Core;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Bridges;

/// <summary>
/// The bridge's side of the local broker: an in-process connection (an <see cref="MqttChannel"/> with this as its
/// <see cref="IClientOutput"/>) under the bridge's local client id. Its session subscribes to the outgoing topics, so
/// what waits for the remote waits in that session's queue, bounded as any client's; what the channel sends arrives
/// here. Packets into the channel go through one pump, as a socket's read loop would hand them over, so the channel
/// sees them one at a time and in order. Every method is thread-safe.
/// </summary>
internal sealed class LocalLink : IClientOutput
{
    private readonly Channel<MqttPacket> _input = Channel.CreateUnbounded<MqttPacket>(new UnboundedChannelOptions { SingleReader = true });
    private readonly MqttChannel _channel;
    private readonly TaskCompletionSource<ConnAckPacket> _connAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<LocalLink, Message, OutgoingPublish> _onPublish;
    private readonly Task _pump;
    private int _backlog;
    private long _backlogBytes;

    public LocalLink(Broker broker, ListenerConfig listener, string name, Action<LocalLink, Message, OutgoingPublish> onPublish)
    {
        _onPublish = onPublish;
        _channel = new MqttChannel(broker, listener, this, "bridge:" + name, broker.Config.LocalOnlyMode);
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>The CONNACK the local broker answered (faults when the link closed first).</summary>
    public Task<ConnAckPacket> ConnAck => _connAck.Task;

    /// <summary>Completes when the local broker answered the link's SUBSCRIBE (the bridge sends one per link).</summary>
    public Task Subscribed => _subscribed.Task;

    /// <summary>Completes when the local broker closed the link, or <see cref="Close"/> did.</summary>
    public Task Closed => _closed.Task;

    public bool IsClosed => _closed.Task.IsCompleted;

    /// <summary>Hands a packet to the channel (after those handed before it).</summary>
    public void Post(MqttPacket packet) => _input.Writer.TryWrite(packet);

    /// <summary>Forwarded PUBLISHes not yet taken by the remote side; the session holds QoS 0 back when high.</summary>
    public int Backlog => Volatile.Read(ref _backlog);

    public long BacklogBytes => Interlocked.Read(ref _backlogBytes);

    /// <summary>The forwarder took a PUBLISH off the backlog.</summary>
    public void Taken(int payloadLength)
    {
        Interlocked.Decrement(ref _backlog);
        Interlocked.Add(ref _backlogBytes, -payloadLength);
        if (Volatile.Read(ref _backlog) == 0) _channel.OnOutputDrained();
    }

    void IClientOutput.Send(MqttPacket packet)
    {
        switch (packet)
        {
            case ConnAckPacket connAck:
                _connAck.TrySetResult(connAck);
                break;
            case SubAckPacket:
                _subscribed.TrySetResult();
                break;
            case PublishAckPacket { Type: PacketType.PubRel } rel:
                // Our outgoing QoS 2 message was acknowledged by the remote, then by us (PUBREC): finish it.
                Post(new PublishAckPacket(PacketType.PubComp, rel.PacketId));
                break;
            case PublishAckPacket { Type: PacketType.PubRec } rec:
                // A QoS 2 message from the remote was routed locally: release its packet id.
                Post(new PublishAckPacket(PacketType.PubRel, rec.PacketId));
                break;
        }
    }

    void IClientOutput.SendPublish(Message message, in OutgoingPublish fields)
    {
        Interlocked.Increment(ref _backlog);
        Interlocked.Add(ref _backlogBytes, message.PayloadLength);
        _onPublish(this, message, fields);
    }

    void IClientOutput.Close(MqttPacket? finalPacket)
    {
        if (finalPacket is ConnAckPacket refused) _connAck.TrySetResult(refused);
        Close();
    }

    /// <summary>Ends the local connection (the session stays when it has an expiry), as a closed socket would.</summary>
    public void Close() => _input.Writer.TryComplete();

    private async Task PumpAsync()
    {
        try
        {
            await foreach (var packet in _input.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                await _channel.Handle(packet).ConfigureAwait(false);
            }
        }
        finally
        {
            _channel.OnConnectionClosed();
            _connAck.TrySetException(new InvalidOperationException("the local connection closed"));
            _closed.TrySetResult();
        }
    }

    public Task Completion => _pump;
}
