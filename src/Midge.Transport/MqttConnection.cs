using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Midge.Config;
using Midge.Core;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Transport.Sockets;

namespace Midge.Transport;

/// <summary>
/// One client connection: a read loop that frames and decodes packets into the <see cref="MqttChannel"/>, and
/// a single writer at a time that drains the outgoing queue, encodes a whole batch and writes it at once, so a
/// burst of deliveries becomes a few large writes. On plain TCP both work on the socket itself
/// (MqttConnection.Socket.cs); behind TLS on Kestrel's pipes (MqttConnection.Pipes.cs).
/// </summary>
internal sealed partial class MqttConnection : IClientOutput
{
    private readonly ConnectionContext _context;

    /// <summary>The bare socket of a plain-TCP connection; null behind TLS (pipes).</summary>
    private readonly SocketConnection? _socket;
    private readonly Broker _broker;
    private readonly OutgoingQueue<Outgoing> _queue = new();
    private readonly MqttChannel _channel;
    /// <summary>A batch larger than this goes to the socket in pieces.</summary>
    private const int MaxBatchBytes = 256 * 1024;

    private int _backlog;
    private long _backlogBytes;
    private volatile bool _closing;

    /// <summary>Set when the writer sent a final packet (a server DISCONNECT, a refusing CONNACK): the sending side
    /// is shut and the read side discards input for a while before the close, so that what the client still sends
    /// does not make the kernel reset the connection and throw away the reason it has not read yet.</summary>
    private volatile bool _lingering;

    /// <summary>How long, and how many bytes at most, a lingering close reads and discards.</summary>
    private const int LingerMs = 1000, LingerMaxBytes = 256 * 1024;

    /// <summary>max_pending_connections: released once CONNECT has succeeded (ConnectionGuard.cs).</summary>
    private ConnectionGuard.PendingSlot? _pending;

    /// <summary>max_connections: the slot this connection holds, given back when it ends.</summary>
    private readonly ConnectionLimit? _limit;

    public MqttConnection(ConnectionContext context, Broker broker, ListenerConfig listener, bool localOnlyMode,
        ConnectionGuard.PendingSlot? pending = null, string? certificateUserName = null, ConnectionLimit? limit = null)
    {
        _limit = limit;
        _pending = pending;
        _context = context;
        _socket = context is SocketConnection { HasPipes: false } socket ? socket : null;
        _broker = broker;
        _channel = new MqttChannel(broker, listener, this, RemoteOf(context, listener), localOnlyMode)
        {
            CertificateUserName = certificateUserName,
        };
    }

    /// <summary>The client's address: the socket's peer, or the one a PROXY header named; a Unix socket listener's
    /// path unless a header named an address.</summary>
    private static object RemoteOf(ConnectionContext context, ListenerConfig listener) =>
        context.RemoteEndPoint as IPEndPoint ?? listener.UnixSocketPath ?? (object?)context.RemoteEndPoint ?? context.ConnectionId;

    public int Backlog => Volatile.Read(ref _backlog);

    public long BacklogBytes => Volatile.Read(ref _backlogBytes);

    public void Send(MqttPacket packet) => Enqueue(new Outgoing(packet, null, default, false));

    public void SendPublish(Message message, in OutgoingPublish fields)
    {
        Interlocked.Add(ref _backlogBytes, message.PayloadLength); // given back when encoded (Encode), or never if closed
        Enqueue(new Outgoing(null, message, fields, false));
    }

    public void Close(MqttPacket? finalPacket)
    {
        _closing = true;
        Enqueue(new Outgoing(finalPacket, null, default, true));
    }

    private void Enqueue(in Outgoing item)
    {
        Interlocked.Increment(ref _backlog);
        if (_socket is null)
        {
            if (!_queue.TryWrite(item)) Interlocked.Decrement(ref _backlog);
            return;
        }
        if (!_queue.TryWriteAndClaim(item, out bool claimed))
        {
            Interlocked.Decrement(ref _backlog);
            return;
        }
        if (claimed) DeliveryBatch.Wake(this);
    }

    /// <summary>Runs the connection until either side ends it: straight on the socket for plain TCP
    /// (MqttConnection.Socket.cs), over Kestrel's pipes when middleware (TLS) stands in between
    /// (MqttConnection.Pipes.cs).</summary>
    public Task RunAsync() => _socket is not null ? RunOnSocketAsync(_socket) : RunOnPipesAsync();

    private static bool IsDisconnect(Exception ex) => ex is ConnectionResetException or ConnectionAbortedException
        or IOException or OperationCanceledException or SocketException or ObjectDisposedException;

    /// <summary>Decodes and handles every whole frame at the start of <paramref name="buffer"/>, advancing it
    /// past them. <see cref="Frames.End"/> when the connection is to end (a protocol error, or the channel closing
    /// it); <see cref="Frames.Pending"/> when the channel answers a packet later (a decision hook, an asynchronous
    /// authenticator): the caller awaits <paramref name="pending"/>, then calls again with the rest of the buffer,
    /// so every transport feeds the channel in order and no thread waits. Meanwhile the read loop reads nothing more:
    /// what the client sends waits in the kernel's socket buffer (plain TCP) or Kestrel's input pipe, which pauses at
    /// its 1 MiB threshold (TLS, Unix sockets; WebSocket's pump stops at 1 MiB too), not in a buffer that grows.</summary>
    private Frames HandleFrames(ref ReadOnlySequence<byte> buffer, out ValueTask pending)
    {
        pending = default;
        bool logPackets = PacketLog.IsEnabled(_broker); // once per buffer; with debug off nothing is formatted
        while (!_closing)
        {
            int maxPacketSize = _channel.MaxIncomingPacketSize;
            var status = FrameReader.TryRead(ref buffer, maxPacketSize, out byte header,
                out var body, out int frameLength, _channel.MaxIncomingPublishSize);
            if (status == FrameStatus.Incomplete) return Frames.More;
            if (status == FrameStatus.TooLarge)
            {
                _channel.OnProtocolError(new MqttProtocolException(ReasonCode.PacketTooLarge,
                    maxPacketSize > 0 && frameLength > maxPacketSize
                        ? $"packet of {frameLength} bytes exceeds max_packet_size"
                        : $"PUBLISH of {frameLength} bytes exceeds message_size_limit", _channel.Version));
                return Frames.End;
            }
            if (status == FrameStatus.MalformedLength)
            {
                _channel.OnProtocolError(new MqttProtocolException(ReasonCode.MalformedPacket,
                    "malformed remaining length", _channel.Version));
                return Frames.End;
            }
            _broker.Stats.OnPacketReceived(frameLength);
            MqttPacket packet;
            try
            {
                packet = PacketDecoder.Decode(header, body, _channel.Version); // 3.1.1 until CONNECT sets it
            }
            catch (MqttProtocolException ex)
            {
                _channel.OnProtocolError(ex.Version is null && _channel.IsConnected
                    ? new MqttProtocolException(ex.Reason, ex.Message, _channel.Version)
                    : ex);
                return Frames.End;
            }
            if (logPackets) PacketLog.Received(_broker, LogName, packet);
            var handled = _channel.Handle(packet);
            if (!handled.IsCompletedSuccessfully)
            {
                pending = AfterHandledAsync(handled, packet, logPackets);
                return Frames.Pending;
            }
            AfterHandled(packet, logPackets);
        }
        return Frames.End;
    }

    private async ValueTask AfterHandledAsync(ValueTask handled, MqttPacket packet, bool logPackets)
    {
        await handled.ConfigureAwait(false);
        AfterHandled(packet, logPackets);
    }

    private void AfterHandled(MqttPacket packet, bool logPackets)
    {
        if (logPackets && packet is ConnectPacket connect && _channel.IsConnected) PacketLog.Connected(_broker, connect.Will);
        if (_pending is not null && _channel.IsConnected)
        {
            _pending.Release();
            _pending = null;
        }
    }

    /// <summary>What <see cref="HandleFrames"/> leaves to its caller.</summary>
    private enum Frames
    {
        /// <summary>Every whole frame was handled: read more.</summary>
        More,
        /// <summary>The connection ends.</summary>
        End,
        /// <summary>A packet is being handled asynchronously: await, then go on with the rest of the buffer.</summary>
        Pending,
    }

    /// <summary>The emptied queue becomes the next spare; it gives its storage back to the pool after a large
    /// batch, or when nothing more is waiting (so an idle connection holds no slots).</summary>
    private PooledQueue<Outgoing> Recycle(PooledQueue<Outgoing> batch, int taken)
    {
        if (taken > 256 || _queue.IsEmpty) batch.Release();
        else batch.Clear();
        _channel.OnOutputDrained();
        return batch;
    }

    /// <summary>Encodes one queued item; true when it is the last (the connection closes after it).</summary>
    private bool Encode(IBufferWriter<byte> output, in Outgoing item, ref OutgoingTopicAliases? aliases)
    {
        if (PacketLog.IsEnabled(_broker)) LogSending(item);
        if (item.Message is not null)
        {
            Interlocked.Add(ref _backlogBytes, -item.Message.PayloadLength);
            if (_channel.OutgoingTopicAliasMaximum > 0)
            {
                var fields = item.Fields;
                (aliases ??= new OutgoingTopicAliases(_channel.OutgoingTopicAliasMaximum))
                    .Apply(item.Message.Topic, ref fields);
                item.Message.Encode(output, _channel.Version, fields);
            }
            else
            {
                item.Message.Encode(output, _channel.Version, item.Fields);
            }
        }
        else if (item.Packet is not null)
        {
            PacketEncoder.Write(output, item.Packet, _channel.Version);
        }
        return item.Close;
    }

    private readonly record struct Outgoing(MqttPacket? Packet, Message? Message, OutgoingPublish Fields, bool Close);
}
