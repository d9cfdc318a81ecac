using System.Buffers;
using System.IO.Pipelines;
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
/// a single writer that drains the outgoing queue, encodes straight into the socket pipe and flushes once per
/// batch, so a burst of deliveries becomes a few large writes.
/// </summary>
internal sealed class MqttConnection : IClientOutput
{
    private readonly ConnectionContext _context;
    private readonly Broker _broker;
    private readonly OutgoingQueue<Outgoing> _queue = new();
    private readonly MqttChannel _channel;
    /// <summary>A batch larger than this goes to the socket in pieces.</summary>
    private const int MaxBatchBytes = 256 * 1024;

    private int _backlog;
    private volatile bool _closing;

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
        _broker = broker;
        _channel = new MqttChannel(broker, listener, this, (object?)context.RemoteEndPoint ?? context.ConnectionId, localOnlyMode)
        {
            CertificateUserName = certificateUserName,
        };
    }

    public int Backlog => Volatile.Read(ref _backlog);

    public void Send(MqttPacket packet) => Enqueue(new Outgoing(packet, null, default, false));

    public void SendPublish(Message message, in OutgoingPublish fields) => Enqueue(new Outgoing(null, message, fields, false));

    public void Close(MqttPacket? finalPacket)
    {
        _closing = true;
        Enqueue(new Outgoing(finalPacket, null, default, true));
    }

    private void Enqueue(in Outgoing item)
    {
        Interlocked.Increment(ref _backlog);
        if (!_queue.TryWrite(item)) Interlocked.Decrement(ref _backlog);
    }

    /// <summary>Runs the connection until either side ends it: straight on the socket for plain TCP
    /// (<see cref="SocketConnection"/>), over Kestrel's pipes when middleware (TLS) stands in between.</summary>
    public Task RunAsync() => _context is SocketConnection { HasPipes: false } socket ? RunOnSocketAsync(socket) : RunOnPipesAsync();

    private async Task RunOnPipesAsync()
    {
        var writer = PipeWriteLoopAsync();
        try
        {
            await PipeReadLoopAsync();
        }
        catch (Exception ex) when (IsDisconnect(ex))
        {
        }
        finally
        {
            _channel.OnConnectionClosed();
            _queue.Complete();
            await writer;
            _limit?.Exit();
        }
    }

    /// <summary>
    /// The read loop on a bare socket. While nothing is buffered it waits with a zero-byte receive and holds no
    /// buffer; data is then read into a pooled array that is returned once every whole frame in it is handled
    /// (kept while the socket keeps filling it). A partial frame is moved to the front, or the array grows;
    /// <see cref="FrameReader"/> refuses a frame over max_packet_size as soon as its length is known.
    /// </summary>
    private async Task RunOnSocketAsync(SocketConnection connection)
    {
        const int ReceiveSize = 4096;
        var socket = connection.Socket;
        var writer = SocketWriteLoopAsync(connection);
        byte[]? buffer = null;
        int start = 0, end = 0;
        bool filled = false;
        try
        {
            while (!_closing)
            {
                if (start == end)
                {
                    start = end = 0;
                    if (!filled && buffer is not null)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = null;
                    }
                    if (buffer is null)
                    {
                        await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
                        buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
                    }
                }
                else if (end == buffer!.Length)
                {
                    int kept = end - start;
                    if (start > 0)
                    {
                        Buffer.BlockCopy(buffer, start, buffer, 0, kept);
                    }
                    else
                    {
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        Buffer.BlockCopy(buffer, 0, bigger, 0, kept);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    start = 0;
                    end = kept;
                }
                int free = buffer.Length - end;
                int n = await socket.ReceiveAsync(buffer.AsMemory(end, free), SocketFlags.None);
                if (n == 0) return;
                filled = n == free;
                end += n;
                var frames = new ReadOnlySequence<byte>(buffer, start, end - start);
                bool more = HandleFrames(ref frames);
                start = end - (int)frames.Length;
                if (!more) return;
            }
        }
        catch (Exception ex) when (IsDisconnect(ex))
        {
        }
        catch (Exception ex)
        {
            Log.ConnectionFailed(connection.Logger, _channel.ClientId ?? _channel.RemoteEndPoint, ex);
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
            _channel.OnConnectionClosed();
            _queue.Complete();
            await writer;
            connection.Abort(); // nobody else closes a plain-TCP socket
            _limit?.Exit();
        }
    }

    private static bool IsDisconnect(Exception ex) => ex is ConnectionResetException or ConnectionAbortedException
        or IOException or OperationCanceledException or SocketException or ObjectDisposedException;

    private async Task PipeReadLoopAsync()
    {
        var input = _context.Transport.Input;
        while (!_closing)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            try
            {
                if (!HandleFrames(ref buffer)) return;
                if (result.IsCompleted || result.IsCanceled) return;
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    /// <summary>Decodes and handles every whole frame at the start of <paramref name="buffer"/>, advancing it
    /// past them; false when the connection is to end (a protocol error, or the channel closing it).</summary>
    private bool HandleFrames(ref ReadOnlySequence<byte> buffer)
    {
        while (!_closing)
        {
            var status = FrameReader.TryRead(ref buffer, _channel.MaxIncomingPacketSize, out byte header,
                out var body, out int frameLength);
            if (status == FrameStatus.Incomplete) return true;
            if (status == FrameStatus.TooLarge)
            {
                _channel.OnProtocolError(new MqttProtocolException(ReasonCode.PacketTooLarge,
                    $"packet of {frameLength} bytes exceeds max_packet_size", _channel.Version));
                return false;
            }
            if (status == FrameStatus.MalformedLength)
            {
                _channel.OnProtocolError(new MqttProtocolException(ReasonCode.MalformedPacket,
                    "malformed remaining length", _channel.Version));
                return false;
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
                return false;
            }
            _channel.Handle(packet);
            if (_pending is not null && _channel.IsConnected)
            {
                _pending.Release();
                _pending = null;
            }
        }
        return false;
    }

    private async Task PipeWriteLoopAsync()
    {
        var output = _context.Transport.Output;
        var spare = new Queue<Outgoing>();
        bool close = false;
        OutgoingTopicAliases? aliases = null;
        try
        {
            while (!close && await _queue.WaitToReadAsync())
            {
                var batch = _queue.TakeAll(spare);
                int taken = batch.Count;
                int written = 0;
                while (batch.TryDequeue(out var item))
                {
                    written++;
                    if (Encode(output, item, ref aliases))
                    {
                        close = true;
                        break;
                    }
                    // Hand a large batch to the socket in pieces rather than let the pipe grow without bound.
                    if (output.CanGetUnflushedBytes && output.UnflushedBytes > MaxBatchBytes)
                    {
                        if (!await FlushAsync(output, written)) return;
                        written = 0;
                    }
                }
                if (!await FlushAsync(output, written)) return;
                spare = Recycle(batch, taken);
            }
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException)
        {
        }
        finally
        {
            _closing = true;
            await output.CompleteAsync();
            _context.Transport.Input.CancelPendingRead();
        }
    }

    /// <summary>The writer on a bare socket: each batch is encoded into one pooled buffer (sent in pieces of at
    /// most <see cref="MaxBatchBytes"/>) and the buffer is given back once sent.</summary>
    private async Task SocketWriteLoopAsync(SocketConnection connection)
    {
        var socket = connection.Socket;
        var output = new PooledBufferWriter();
        var spare = new Queue<Outgoing>();
        bool close = false;
        OutgoingTopicAliases? aliases = null;
        try
        {
            while (!close && await _queue.WaitToReadAsync())
            {
                var batch = _queue.TakeAll(spare);
                int taken = batch.Count;
                int written = 0;
                while (batch.TryDequeue(out var item))
                {
                    written++;
                    if (Encode(output, item, ref aliases))
                    {
                        close = true;
                        break;
                    }
                    if (output.WrittenCount > MaxBatchBytes)
                    {
                        await SendAsync(socket, output, written);
                        written = 0;
                    }
                }
                await SendAsync(socket, output, written);
                output.Release();
                spare = Recycle(batch, taken);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            output.Release();
            _closing = true;
            connection.Shutdown(); // ends the pending receive; what was sent still goes out first
        }
    }

    private async ValueTask SendAsync(Socket socket, PooledBufferWriter output, int written)
    {
        int bytes = output.WrittenCount;
        Interlocked.Add(ref _backlog, -written);
        if (bytes > 0) await SendAllAsync(socket, output.WrittenMemory);
        output.Clear();
        _broker.Stats.OnPacketsSent(written, bytes);
    }

    /// <summary>
    /// Sends on the non-blocking socket (<see cref="SocketTransportFactory"/>) for as long as the kernel takes
    /// the bytes, on this thread; only a send that would block waits asynchronously, and only then does the
    /// socket allocate its asynchronous send state, so idle and lightly loaded connections never hold one.
    /// </summary>
    private static ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int sent = socket.Send(data.Span, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock) return SendRestAsync(socket, data);
            if (error != SocketError.Success) throw new SocketException((int)error);
            data = data[sent..];
        }
        return ValueTask.CompletedTask;

        static async ValueTask SendRestAsync(Socket socket, ReadOnlyMemory<byte> rest) =>
            await socket.SendAsync(rest, SocketFlags.None);
    }

    /// <summary>The emptied queue becomes the next spare; it gives its memory back after a large batch, or when
    /// nothing more is waiting (so an idle connection holds no slots).</summary>
    private Queue<Outgoing> Recycle(Queue<Outgoing> batch, int taken)
    {
        batch.Clear();
        if (taken > 256 || _queue.IsEmpty) batch.TrimExcess();
        _channel.OnOutputDrained();
        return batch;
    }

    /// <summary>Encodes one queued item; true when it is the last (the connection closes after it).</summary>
    private bool Encode(IBufferWriter<byte> output, in Outgoing item, ref OutgoingTopicAliases? aliases)
    {
        if (item.Message is not null)
        {
            if (_channel.OutgoingTopicAliasMaximum > 0)
            {
                var fields = item.Fields;
                (aliases ??= new OutgoingTopicAliases(_channel.OutgoingTopicAliasMaximum))
                    .Apply(fields.Topic ?? item.Message.Topic, ref fields);
                PacketEncoder.WritePublish(output, _channel.Version, item.Message.Packet, fields);
            }
            else
            {
                PacketEncoder.WritePublish(output, _channel.Version, item.Message.Packet, item.Fields);
            }
        }
        else if (item.Packet is not null)
        {
            PacketEncoder.Write(output, item.Packet, _channel.Version);
        }
        return item.Close;
    }

    /// <summary>Flushes what the batch wrote so far; false once the socket side is gone.</summary>
    private async ValueTask<bool> FlushAsync(System.IO.Pipelines.PipeWriter output, int written)
    {
        long bytes = output.CanGetUnflushedBytes ? output.UnflushedBytes : 0;
        Interlocked.Add(ref _backlog, -written);
        var flush = await output.FlushAsync();
        _broker.Stats.OnPacketsSent(written, bytes);
        return !flush.IsCompleted;
    }

    private readonly record struct Outgoing(MqttPacket? Packet, Message? Message, OutgoingPublish Fields, bool Close);
}
