using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Midge.Core.Channel;
using Midge.Protocol;

namespace Midge.Transport;

/// <summary>
/// A connection behind connection middleware (TLS): Kestrel's pipes carry the bytes. The read loop hands each
/// read to <see cref="HandleFrames"/>; the writer awaits the queue, encodes a whole batch into the output pipe
/// and flushes once.
/// </summary>
internal sealed partial class MqttConnection
{
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
            if (_lingering) await LingerOnPipesAsync();
            _limit?.Exit();
        }
    }

    private async Task PipeReadLoopAsync()
    {
        var input = _context.Transport.Input;
        while (!_closing)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            try
            {
                Frames frames;
                while ((frames = HandleFramesInBatch(ref buffer, out var pending)) == Frames.Pending) await pending;
                if (frames == Frames.End) return;
                if (result.IsCompleted || result.IsCanceled) return;
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    private async Task PipeWriteLoopAsync()
    {
        var output = _context.Transport.Output;
        var spare = new PooledQueue<Outgoing>();
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
                        _lingering = item.Packet is not null;
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

    /// <summary>The lingering close behind TLS (see <see cref="_lingering"/>): the output is complete; input is read
    /// and discarded until the client closes, for at most <see cref="LingerMs"/> and <see cref="LingerMaxBytes"/>.</summary>
    private async Task LingerOnPipesAsync()
    {
        var input = _context.Transport.Input;
        using var timeout = new CancellationTokenSource(LingerMs);
        try
        {
            for (long discarded = 0; discarded < LingerMaxBytes;)
            {
                var result = await input.ReadAsync(timeout.Token);
                discarded += result.Buffer.Length;
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) return;
            }
        }
        catch (Exception ex) when (IsDisconnect(ex) || ex is InvalidOperationException)
        {
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
}
