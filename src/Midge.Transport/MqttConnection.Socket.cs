using System.Buffers;
using System.Net.Sockets;
using Midge.Core.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Transport.Sockets;

namespace Midge.Transport;

/// <summary>
/// A plain-TCP connection on its bare socket (<see cref="SocketConnection"/>).
/// <para>Reading: one loop that waits for readability on Midge's epoll loops (<see cref="SocketReadiness"/>; a
/// zero-byte receive where those are not available), so an idle client holds no buffer.</para>
/// <para>Writing: nobody waits for output. The producer that finds the writing idle claims it
/// (<see cref="OutgoingQueue{T}.TryWriteAndClaim"/>) and <see cref="Drain"/> runs: it takes everything queued,
/// encodes it into one pooled buffer, sends it without blocking, and repeats until the queue is empty, then
/// gives the claim up. Only a send the kernel cannot take at once goes asynchronous. A claim made while a read
/// loop handles a received buffer is drained by that loop right after the buffer (<see cref="DeliveryBatch"/>):
/// a message to an idle subscriber leaves on the thread that read it, with no hand-over, while every message of
/// that buffer for the same subscriber still goes out in one send.</para>
/// </summary>
internal sealed partial class MqttConnection : IThreadPoolWorkItem
{
    private PooledQueue<Outgoing>? _batch;
    private int _batchSize;
    private PooledQueue<Outgoing>? _spare;
    private PooledBufferWriter? _out;
    private OutgoingTopicAliases? _aliases;

    /// <summary>The read loop's epoll registration, once it has one; the writer wakes it to end a lingering close.</summary>
    private ReadinessWaiter? _readiness;

    /// <summary>1 once the read loop waits with .NET's receives, which only a full shutdown ends (no lingering
    /// close then).</summary>
    private int _dotnetWaits;


    /// <summary>
    /// The read loop. While nothing is buffered it waits for the socket to be readable and holds no buffer
    /// (<see cref="SocketReadiness"/>; where that is not available, a zero-byte receive); data is then read into
    /// a pooled array that is returned once every whole frame in it is handled (kept while the socket keeps
    /// filling it). A partial frame is moved to the front, or the array grows; <see cref="FrameReader"/>
    /// refuses a frame over max_packet_size as soon as its length is known.
    /// </summary>
    private async Task RunOnSocketAsync(SocketConnection connection)
    {
        const int ReceiveSize = 4096;
        var socket = connection.Socket;
        byte[]? buffer = null;
        int start = 0, end = 0;
        bool filled = false;
        // Readiness comes from Midge's epoll loops where there are some (SocketReadiness), registered when the
        // loop first finds the socket empty: a CONNECT already there when the socket was accepted is read and
        // handled on the accepting thread without waking an epoll loop. Elsewhere .NET's zero-byte receive waits.
        bool ownWaits = SocketReadiness.IsAvailable;
        if (!ownWaits) _dotnetWaits = 1;
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
                        if (!ownWaits) await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
                        else if (_readiness is { } readiness) await readiness.WaitAsync(); // the first read just tries
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
                int n;
                if (!ownWaits)
                {
                    n = await socket.ReceiveAsync(buffer.AsMemory(end, free), SocketFlags.None);
                }
                else
                {
                    n = socket.Receive(buffer.AsSpan(end, free), SocketFlags.None, out var error);
                    if (error != SocketError.Success)
                    {
                        if (error != SocketError.WouldBlock) throw new SocketException((int)error);
                        filled = false; // nothing more for now: an empty buffer goes back before the wait
                        // Published before _closing is read again, so a closing writer either sees it (and wakes
                        // the wait) or this loop sees _closing (CloseWriter sets it first).
                        if (_readiness is null) Interlocked.Exchange(ref _readiness, SocketReadiness.Register(socket));
                        if (_readiness is null)
                        {
                            ownWaits = false; // refused (out of epoll watches): .NET waits
                            Interlocked.Exchange(ref _dotnetWaits, 1);
                        }
                        else if (start != end && !_closing) await _readiness.WaitAsync(); // a partial frame waits for the rest
                        continue;
                    }
                }
                if (n == 0) return;
                filled = n == free;
                end += n;
                // The loop runs on an epoll thread (SocketReadiness), or on a socket engine thread where .NET
                // waits (Program.InlineSocketCompletions), and neither may wait: a packet whose answer comes later
                // (an authentication or authorisation hook, an asynchronous authenticator) is awaited here, which
                // gives the thread back; the rest of the buffer is handled when the answer is in.
                var frames = new ReadOnlySequence<byte>(buffer, start, end - start);
                Frames outcome;
                while ((outcome = HandleFramesInBatch(ref frames, out var pending)) == Frames.Pending) await pending;
                start = end - (int)frames.Length;
                if (outcome == Frames.End) return;
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
            if (_queue.TryClaim()) Drain(); // what is left (a final DISCONNECT) goes out before the close
            await _queue.WhenReleasedAsync();
            if (_lingering) await LingerAsync(socket);
            _readiness?.Dispose();
            connection.Abort(); // nobody else closes a plain-TCP socket
            _limit?.Exit();
        }
    }

    /// <summary>
    /// A lingering close. The server sent its last packet and shut its sending side; closing the socket now would
    /// make the kernel answer anything the client still sends (a PUBREL, a PUBLISH already on its way) with a
    /// reset, and a reset throws away the DISCONNECT not yet read at the client: it would never learn why. So
    /// input is read and discarded until the client closes, for at most <see cref="LingerMs"/> and
    /// <see cref="LingerMaxBytes"/>.
    /// </summary>
    private async Task LingerAsync(Socket socket)
    {
        // The read loop may never have waited (everything it read was already there): register now. Where epoll
        // is not available there is no timed wait to discard input with, and the close is immediate.
        if (_readiness is null && _dotnetWaits == 0) _readiness = SocketReadiness.Register(socket);
        if (_readiness is not { } readiness) return;
        long deadline = Environment.TickCount64 + LingerMs;
        byte[] scratch = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            for (long discarded = 0; discarded < LingerMaxBytes;)
            {
                int n = socket.Receive(scratch, SocketFlags.None, out var error);
                if (error == SocketError.Success)
                {
                    if (n == 0) return; // the client closed: nothing it sends can be reset any more
                    discarded += n;
                    continue;
                }
                long left = deadline - Environment.TickCount64;
                if (error != SocketError.WouldBlock || left <= 0) return;
                var wait = readiness.WaitAsync();
                if (!wait.IsCompleted) await Task.WhenAny(wait.AsTask(), Task.Delay((int)left));
            }
        }
        catch (Exception ex) when (IsDisconnect(ex))
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>Drains on the thread pool (a claim made outside any read loop's batch, or over its share).</summary>
    void IThreadPoolWorkItem.Execute() => Drain();

    /// <summary>
    /// Writes until the queue is empty, then gives the claim up. The caller holds the claim. Batches are sent
    /// in pieces of at most <see cref="MaxBatchBytes"/>; a piece the kernel cannot take at once continues in
    /// <see cref="ContinueAfterSendAsync"/>, still holding the claim.
    /// </summary>
    private void Drain()
    {
        try
        {
            while (true)
            {
                if (_batch is null)
                {
                    _batch = _queue.TakeOrRelease(_spare ?? new PooledQueue<Outgoing>());
                    if (_batch is null) return; // claim given up
                    _spare = null;
                    _batchSize = _batch.Count;
                }
                var output = _out ??= new PooledBufferWriter();
                int written = 0;
                bool close = false;
                while (_batch.TryDequeue(out var item))
                {
                    written++;
                    if (Encode(output, item, ref _aliases))
                    {
                        close = true;
                        _lingering = item.Packet is not null;
                        break;
                    }
                    if (output.WrittenCount > MaxBatchBytes) break;
                }
                var send = SendBuffered(written);
                if (!send.IsCompletedSuccessfully)
                {
                    _ = ContinueAfterSendAsync(send, close);
                    return;
                }
                send.GetAwaiter().GetResult();
                if (!AfterPiece(close)) return;
            }
        }
        catch (Exception ex) when (IsDisconnect(ex))
        {
            CloseWriter();
        }
        catch (Exception ex)
        {
            WriterFailed(ex);
        }
    }

    private async Task ContinueAfterSendAsync(ValueTask send, bool close)
    {
        try
        {
            await send;
        }
        catch (Exception ex) when (IsDisconnect(ex))
        {
            CloseWriter();
            return;
        }
        catch (Exception ex)
        {
            WriterFailed(ex);
            return;
        }
        if (AfterPiece(close)) Drain();
    }

    /// <summary>After a piece went out: a final packet closes the writing (false); otherwise, when its batch is
    /// done, the batch is recycled and the channel told (it may queue more, for this same drain).</summary>
    private bool AfterPiece(bool close)
    {
        if (close)
        {
            CloseWriter();
            return false;
        }
        if (_batch!.Count > 0) return true;
        _spare = Recycle(_batch, _batchSize);
        _batch = null;
        _out!.Release();
        return true;
    }

    /// <summary>A fault in the writer itself (not the peer going away): logged, and the connection closed.</summary>
    private void WriterFailed(Exception ex)
    {
        Log.ConnectionFailed(_socket!.Logger, _channel.ClientId ?? _channel.RemoteEndPoint, ex);
        CloseWriter();
    }

    /// <summary>The writing is over (a final packet sent, or the socket failed): drop what is left, give the
    /// claim up and end the read side too: at once, or, after a final packet, once a lingering close has read
    /// what the client still sends (<see cref="LingerAsync"/>).</summary>
    private void CloseWriter()
    {
        _closing = true;
        Interlocked.MemoryBarrier(); // _closing is seen before _readiness and _dotnetWaits are read (the read loop writes them first)
        _batch?.Release();
        _batch = null;
        _out?.Release();
        _queue.CompleteAndRelease();
        if (_lingering && Volatile.Read(ref _dotnetWaits) == 0)
        {
            _socket!.ShutdownSend(); // the client reads the final packet, then end of stream
            _readiness?.Signal(); // a waiting read loop wakes, finds _closing and lingers
            return;
        }
        _lingering = false;
        _socket!.Shutdown(); // ends the pending receive; what was sent still goes out first
    }

    private ValueTask SendBuffered(int written)
    {
        var output = _out!;
        int bytes = output.WrittenCount;
        Interlocked.Add(ref _backlog, -written);
        _broker.Stats.OnPacketsSent(written, bytes);
        if (bytes == 0) return ValueTask.CompletedTask;
        var send = SendAllAsync(_socket!.Socket, output.WrittenMemory);
        if (send.IsCompletedSuccessfully)
        {
            output.Clear();
            return send;
        }
        return ClearAfter(send, output);

        static async ValueTask ClearAfter(ValueTask send, PooledBufferWriter output)
        {
            await send;
            output.Clear();
        }
    }

    /// <summary>
    /// Sends on the non-blocking socket for as long as the kernel takes the bytes, on this thread; only a send
    /// that would block waits asynchronously, and only then does the socket allocate its asynchronous send
    /// state, so idle and lightly loaded connections never hold one.
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

    /// <summary><see cref="HandleFrames"/> with the deliveries it claims on plain-TCP subscribers drained on this
    /// thread when it is done (<see cref="DeliveryBatch"/>): both read loops, on the socket and on pipes, call it.</summary>
    private Frames HandleFramesInBatch(ref ReadOnlySequence<byte> buffer, out ValueTask pending)
    {
        DeliveryBatch.Open();
        try
        {
            return HandleFrames(ref buffer, out pending);
        }
        finally
        {
            DeliveryBatch.Close();
        }
    }

    /// <summary>
    /// The writings claimed while this thread's read loop handles one received buffer. When the buffer is done
    /// the first few are drained right here (the common case: one subscriber, or the sender's own
    /// acknowledgements), the rest on the thread pool, so one publisher's fan-out still spreads over cores.
    /// Outside a read loop a claim goes to the thread pool at once.
    /// </summary>
    private static class DeliveryBatch
    {
        private const int DrainedInline = 4;

        [ThreadStatic] private static List<MqttConnection>? t_claimed;
        [ThreadStatic] private static bool t_open;

        public static void Open() => t_open = true;

        public static void Wake(MqttConnection connection)
        {
            if (t_open)
            {
                (t_claimed ??= []).Add(connection);
                return;
            }
            ThreadPool.UnsafeQueueUserWorkItem(connection, preferLocal: false);
        }

        public static void Close()
        {
            t_open = false;
            var claimed = t_claimed;
            if (claimed is null || claimed.Count == 0) return;
            for (int i = 0; i < claimed.Count; i++)
            {
                if (i < DrainedInline) claimed[i].Drain();
                else ThreadPool.UnsafeQueueUserWorkItem(claimed[i], preferLocal: false);
            }
            claimed.Clear();
            if (claimed.Capacity > 64) claimed.TrimExcess();
        }
    }
}
