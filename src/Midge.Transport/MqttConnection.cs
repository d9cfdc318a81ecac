using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Midge.Config;
using Midge.Core;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

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
    private int _backlog;
    private volatile bool _closing;

    /// <summary>max_pending_connections: released once CONNECT has succeeded (ConnectionGuard.cs).</summary>
    private ConnectionGuard.PendingSlot? _pending;

    public MqttConnection(ConnectionContext context, Broker broker, ListenerConfig listener, bool localOnlyMode,
        ConnectionGuard.PendingSlot? pending = null, string? certificateUserName = null)
    {
        _pending = pending;
        _context = context;
        _broker = broker;
        _channel = new MqttChannel(broker, listener, this, context.RemoteEndPoint?.ToString() ?? context.ConnectionId, localOnlyMode)
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

    public async Task RunAsync()
    {
        var writer = WriteLoopAsync();
        try
        {
            await ReadLoopAsync();
        }
        catch (ConnectionResetException)
        {
        }
        catch (ConnectionAbortedException)
        {
        }
        catch (IOException)
        {
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            _channel.OnConnectionClosed();
            _queue.Complete();
            await writer;
        }
    }

    private async Task ReadLoopAsync()
    {
        var input = _context.Transport.Input;
        while (!_closing)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            try
            {
                while (!_closing)
                {
                    var status = FrameReader.TryRead(ref buffer, _channel.MaxIncomingPacketSize, out byte header,
                        out var body, out int frameLength);
                    if (status == FrameStatus.Incomplete) break;
                    if (status == FrameStatus.TooLarge)
                    {
                        _channel.OnProtocolError(new MqttProtocolException(ReasonCode.PacketTooLarge,
                            $"packet of {frameLength} bytes exceeds max_packet_size", _channel.Version));
                        return;
                    }
                    if (status == FrameStatus.MalformedLength)
                    {
                        _channel.OnProtocolError(new MqttProtocolException(ReasonCode.MalformedPacket,
                            "malformed remaining length", _channel.Version));
                        return;
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
                        return;
                    }
                    _channel.Handle(packet);
                    if (_pending is not null && _channel.IsConnected)
                    {
                        _pending.Release();
                        _pending = null;
                    }
                }
                if (result.IsCompleted || result.IsCanceled) return;
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    private async Task WriteLoopAsync()
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
                    if (item.Close)
                    {
                        close = true;
                        break;
                    }
                    // Hand a large batch to the socket in pieces rather than let the pipe grow without bound.
                    if (output.CanGetUnflushedBytes && output.UnflushedBytes > 256 * 1024)
                    {
                        if (!await FlushAsync(output, written)) return;
                        written = 0;
                    }
                }
                if (!await FlushAsync(output, written)) return;
                batch.Clear();
                if (taken > 256) batch.TrimExcess(); // give a burst's memory back; idle connections stay small
                spare = batch;
                _channel.OnOutputDrained();
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
