using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Midge.Core.Channel;

namespace Midge.Transport.WebSockets;

/// <summary>
/// An accepted WebSocket as a Kestrel <see cref="ConnectionContext"/>, so that <see cref="MqttConnection"/> runs on it
/// as on any other transport (its pipes path, MqttConnection.Pipes.cs). Two pumps move the bytes: every binary message
/// the client sends goes into the input pipe as it arrives (MQTT packets may be split across messages or share one:
/// the pipe is a byte stream and the frame reader finds the packets), and whatever the connection flushes into the
/// output pipe leaves as one binary message. A text message ends the connection with close code 1003. When the
/// connection's output completes, the close handshake is sent.
/// </summary>
internal sealed class WebSocketConnection : ConnectionContext
{
    /// <summary>How long the client has to answer the close handshake before the socket is aborted.</summary>
    private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(1);

    /// <summary>How long what is left to send after the connection ended may take before the socket is aborted.</summary>
    private static readonly TimeSpan FinalSendWait = TimeSpan.FromSeconds(5);

    private readonly WebSocket _socket;
    private readonly Action _abortRequest;
    private readonly ILogger _logger;
    private readonly string _listenerName;
    /// <summary>What the receive pump takes from the WebSocket before it flushes, while more frames are already there.</summary>
    private const int MaxUnflushed = 64 * 1024;

    /// <summary>The least room the receive pump asks the input pipe for: the rest of the pipe's current 4 KiB block
    /// while it has this much. Asking for 4 KiB took a new block for every frame (a 70-byte PUBLISH each), so a batch
    /// of 64 KiB of frames held about 900 blocks: more than the pipe and the array pool keep, and under a flood most
    /// of the broker's time went to allocating and collecting them.</summary>
    private const int MinReceiveBuffer = 512;

    // Both pipes run their reader inline: the pump's flush runs the MQTT read loop on the pump's thread (and the MQTT
    // writer's flush runs the send pump on its own), so a message crosses no thread-pool queue between the WebSocket
    // and the connection.
    private readonly Pipe _input = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0, useSynchronizationContext: false));
    private readonly Pipe _output = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, useSynchronizationContext: false));
    private readonly InputReader _reader;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;
    private string? _closeDescription;

    public WebSocketConnection(WebSocket socket, string id, IPEndPoint? local, IPEndPoint? remote, IFeatureCollection features,
        Action abortRequest, ILogger logger, string listenerName)
    {
        _socket = socket;
        _abortRequest = abortRequest;
        _logger = logger;
        _listenerName = listenerName;
        _reader = new InputReader(_input.Reader);
        ConnectionId = id;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        Features = features;
        Transport = new DuplexPipe(_reader, _output.Writer);
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override void Abort()
    {
        _socket.Abort();
        _abortRequest();
    }

    /// <summary>Runs <paramref name="application"/> (the MQTT connection) over this WebSocket, the pumps beside it,
    /// then the close handshake.</summary>
    public async Task RunAsync(ConnectionDelegate application)
    {
        var receiving = ReceiveAsync();
        var sending = SendAsync();
        try
        {
            await application(this);
        }
        finally
        {
            // The connection has ended: whatever is still unsent goes, then the close frame (SendAsync, once the
            // output is complete). Input the connection no longer reads is received and dropped until the client
            // answers the close, for at most CloseWait.
            await _output.Writer.CompleteAsync();
            await _reader.CompleteAsync();
            if (await Task.WhenAny(sending, Task.Delay(FinalSendWait)) != sending) Abort(); // a client that reads nothing
            await sending;
            if (await Task.WhenAny(receiving, Task.Delay(CloseWait)) != receiving) _socket.Abort();
            await receiving;
        }
    }

    /// <summary>
    /// WebSocket messages → the input pipe, until the client closes, sends text, or goes away. The pump waits for
    /// the next frame with a zero-byte receive, so an idle connection holds no buffer; it takes every frame already
    /// received (up to <see cref="MaxUnflushed"/>) before it flushes, so a client that sends one frame per packet
    /// still has its packets handled in batches.
    /// </summary>
    /// <remarks>No cancellation token: a pending receive would hold a registration on it for as long as the
    /// connection is idle; <see cref="RunAsync"/> aborts the socket instead, which ends the receive.</remarks>
    private async Task ReceiveAsync()
    {
        var writer = _input.Writer;
        bool feeding = true;
        byte[]? discard = null;
        int unflushed = 0;
        try
        {
            var next = _socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
            while (true)
            {
                if (unflushed > 0 && (!next.IsCompleted || unflushed >= MaxUnflushed))
                {
                    unflushed = 0;
                    if ((await writer.FlushAsync()).IsCompleted) feeding = false; // the connection stopped reading
                }
                if ((await next).MessageType == WebSocketMessageType.Close) break;
                if (feeding && unflushed == 0) await _reader.WaitForRoomAsync(CancellationToken.None);
                var memory = feeding ? writer.GetMemory(MinReceiveBuffer) : discard ??= new byte[4096];
                var result = await _socket.ReceiveAsync(memory, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close) break;
                if (result.MessageType == WebSocketMessageType.Text)
                {
                    if (feeding)
                    {
                        Log.TextFrame(_logger, RemoteAddress.Format(RemoteEndPoint), _listenerName);
                        _closeStatus = WebSocketCloseStatus.InvalidMessageType;
                        _closeDescription = "MQTT needs binary frames";
                        feeding = false;
                        unflushed = 0;
                        await writer.CompleteAsync(); // the connection ends, then SendAsync closes with 1003
                    }
                }
                else if (feeding)
                {
                    writer.Advance(result.Count);
                    _reader.Written(result.Count);
                    unflushed += result.Count;
                }
                next = _socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _socket.Abort();
        }
        finally
        {
            await writer.CompleteAsync();
        }
    }

    /// <summary>The output pipe → one binary message per read, then the close handshake.</summary>
    private async Task SendAsync()
    {
        var reader = _output.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                var buffer = result.Buffer;
                if (!buffer.IsEmpty) await SendMessageAsync(buffer);
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled) break;
            }
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(CloseWait);
                await _socket.CloseOutputAsync(_closeStatus, _closeDescription, timeout.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _socket.Abort();
        }
        finally
        {
            // A connection still writing learns that nobody reads any more (its flush reports completion).
            await reader.CompleteAsync();
        }
    }

    private async ValueTask SendMessageAsync(ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsSingleSegment)
        {
            await _socket.SendAsync(buffer.First, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
            return;
        }
        var position = buffer.Start;
        buffer.TryGet(ref position, out var segment);
        while (buffer.TryGet(ref position, out var next))
        {
            if (!segment.IsEmpty)
            {
                await _socket.SendAsync(segment, WebSocketMessageType.Binary, WebSocketMessageFlags.None, CancellationToken.None);
            }
            segment = next;
        }
        await _socket.SendAsync(segment, WebSocketMessageType.Binary, WebSocketMessageFlags.EndOfMessage, CancellationToken.None);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }

    /// <summary>
    /// The input pipe's reader, counting what the connection has not consumed yet so that the receive pump stops
    /// taking messages while more than <see cref="MaxBuffered"/> bytes wait (a client flooding while its CONNECT waits
    /// for an authenticator), except when the connection has examined all of it and waits for the rest of a packet:
    /// a packet larger than the limit (up to max_packet_size) still arrives whole. The pipe itself never pauses its
    /// writer, as it would stall such a packet for good.
    /// </summary>
    private sealed class InputReader(PipeReader inner) : PipeReader
    {
        private const long MaxBuffered = 1024 * 1024;
        private long _buffered;
        private ReadOnlySequence<byte> _last;
        private volatile bool _needsMore = true;
        private volatile bool _done;
        private TaskCompletionSource? _room;

        /// <summary>Returns once the pump may take another message.</summary>
        public Task WaitForRoomAsync(CancellationToken cancellationToken)
        {
            while (!HasRoom)
            {
                var room = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Volatile.Write(ref _room, room);
                if (HasRoom) break; // the reader moved on meanwhile
                return room.Task.WaitAsync(cancellationToken);
            }
            return Task.CompletedTask;
        }

        private bool HasRoom => _done || _needsMore || Interlocked.Read(ref _buffered) < MaxBuffered;

        /// <summary>The pump added <paramref name="bytes"/> to the pipe.</summary>
        public void Written(int bytes)
        {
            _needsMore = false;
            Interlocked.Add(ref _buffered, bytes);
        }

        private void Wake() => Interlocked.Exchange(ref _room, null)?.TrySetResult();

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken);
            _last = result.Buffer;
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result)) return false;
            _last = result.Buffer;
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            long taken = _last.Slice(_last.Start, consumed).Length;
            bool all = _last.Slice(examined).IsEmpty;
            _last = default;
            inner.AdvanceTo(consumed, examined);
            Interlocked.Add(ref _buffered, -taken);
            if (all) _needsMore = true;
            Wake();
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            _done = true;
            inner.Complete(exception);
            Wake();
        }
    }
}

internal static partial class Log
{
    [LoggerMessage(131, LogLevel.Warning, "WebSocket client {Remote} on {Listener} sent a text frame: closed (1003), MQTT travels in binary frames.")]
    public static partial void TextFrame(ILogger logger, string remote, string listener);
}
