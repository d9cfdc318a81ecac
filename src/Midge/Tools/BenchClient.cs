using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Tools;

/// <summary>State every client of one run shares: what phase the run is in.</summary>
internal sealed class BenchRun
{
    /// <summary>Latencies are recorded only while this is set (after the warm-up).</summary>
    public volatile bool Measuring;
    /// <summary>Set when the run is over; read errors after it are the run's own closing, not errors.</summary>
    public volatile bool Closing;
    public long Errors;
    public string? FirstError;

    /// <summary>With --slow-log: measured messages slower than <see cref="SlowTicks"/> (send and arrival time).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(long Sent, long Arrived)>? Slow;
    public long SlowTicks;

    // The flood gate: without a rate, publishers pause while more than OutstandingLimit deliveries are on the way,
    // so a broker that accepts faster than it delivers is measured by what it delivers, and the generator's
    // receive loops are not starved by its own publishers.
    public long OutstandingLimit;
    public int FanFactor;
    public long GateSent;
    public long GateReceived;
    public long GateLost;

    private long Outstanding => Volatile.Read(ref GateSent) * FanFactor - Volatile.Read(ref GateReceived) - Volatile.Read(ref GateLost);

    public async ValueTask WaitGateAsync(CancellationToken stop)
    {
        if (OutstandingLimit <= 0 || FanFactor == 0) return;
        long stalledSince = 0;
        while (Outstanding > OutstandingLimit)
        {
            long before = Volatile.Read(ref GateReceived);
            await Task.Delay(1, stop);
            if (Volatile.Read(ref GateReceived) != before)
            {
                stalledSince = 0;
            }
            else if (stalledSince == 0)
            {
                stalledSince = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(stalledSince).TotalMilliseconds > 100)
            {
                // Nothing arrives any more: what is missing was dropped by the broker; stop waiting for it.
                Interlocked.Add(ref GateLost, Math.Max(0, Outstanding));
                stalledSince = 0;
            }
        }
    }

    public void Error(string what)
    {
        if (Closing) return;
        Interlocked.Increment(ref Errors);
        Interlocked.CompareExchange(ref FirstError, what, null);
    }
}

/// <summary>
/// A lean MQTT client over a raw socket for load generation: the codec encodes CONNECT and SUBSCRIBE and one
/// PUBLISH template per publisher; the hot paths copy that template, stamp packet id and send time, and a
/// counting parser reads whatever arrives (one receive loop per connection, acknowledgements batched per read).
/// </summary>
internal sealed class BenchClient : IDisposable
{
    private const int IpBindAddressNoPort = 24; // Linux IP_BIND_ADDRESS_NO_PORT
    private const int SendBatchBytes = 16 * 1024;

    private readonly BenchRun _run;
    private readonly ProtocolVersion _version;
    private readonly Socket _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private byte[] _rx;
    private int _rxCount;
    private SemaphoreSlim? _credits;
    private bool _kernelTime;
    private long _rxStamp;
    private BenchWebSocket? _ws; // --ws: MQTT over WebSocket on this socket

    // Counters: each has one writer (the publish loop or the receive loop); the reporter reads them.
    public long Sent;
    public long Completed;
    public long Received;
    public BenchHistogram? Latency;

    private BenchClient(BenchRun run, ProtocolVersion version, Socket socket, int receiveBuffer)
    {
        _run = run;
        _version = version;
        _socket = socket;
        _rx = new byte[receiveBuffer];
    }

    /// <summary>Unacknowledged QoS 1/2 messages of this client's publishes.</summary>
    public long Inflight => Volatile.Read(ref Sent) - Volatile.Read(ref Completed);

    /// <summary>The server's Receive Maximum (MQTT 5), 65535 otherwise.</summary>
    public int ServerReceiveMaximum { get; private set; } = 65535;

    /// <summary>Opens the socket (bound to <paramref name="source"/> when given) and completes CONNECT/CONNACK.</summary>
    public static async Task<BenchClient> ConnectAsync(BenchRun run, BenchOptions o, EndPoint server, IPAddress? source,
        string clientId, int receiveBuffer, int sendBufferSize, CancellationToken ct)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        // A publisher's kernel send buffer, when autotuned to megabytes, hides for seconds that the broker stopped reading.
        if (sendBufferSize > 0) socket.SendBufferSize = sendBufferSize;
        var client = new BenchClient(run, o.Version, socket, receiveBuffer) { _kernelTime = o.KernelReceiveTime };
        try
        {
            if (o.KernelReceiveTime) KernelReceiveTime.Enable(socket);
            if (source is not null)
            {
                // Let connect() pick the port per 4-tuple, so each source address has its own ephemeral range.
                if (OperatingSystem.IsLinux()) socket.SetRawSocketOption(0, IpBindAddressNoPort, BitConverter.GetBytes(1));
                socket.Bind(new IPEndPoint(source, 0));
            }
            await socket.ConnectAsync(server, ct);
            if (o.WebSocket)
            {
                client._ws = new BenchWebSocket();
                client._rxCount = await client._ws.HandshakeAsync(socket, o.Host, o.Port, o.WebSocketPath, client._rx, ct);
            }
            var connect = new ConnectPacket
            {
                ProtocolName = o.Version == ProtocolVersion.V310 ? "MQIsdp" : "MQTT",
                ProtocolVersion = o.Version,
                CleanStart = !o.Persistent,
                KeepAlive = o.KeepAlive,
                ClientId = clientId,
            };
            if (o.Persistent && o.Version == ProtocolVersion.V500) connect.GetOrCreateProperties().SessionExpiryInterval = 3600;
            await client.SendPacketAsync(connect, ct);
            var (header, packet) = await client.ReadPacketAsync(ct);
            if (packet is not ConnAckPacket ack) throw new IOException($"expected CONNACK, got packet type {header >> 4}");
            if (ack.ReasonCode != ReasonCode.Success || ack.V3ReturnCode is { } rc && rc != ConnectReturnCode.Accepted)
                throw new IOException($"connection refused: {(object?)ack.V3ReturnCode ?? ack.ReasonCode}");
            if (ack.Properties?.ReceiveMaximum is { } rm && rm > 0) client.ServerReceiveMaximum = rm;
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public async Task SubscribeAsync(string filter, QoS qos, CancellationToken ct)
    {
        var subscribe = new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription(filter, qos)] };
        await SendPacketAsync(subscribe, ct);
        var (header, packet) = await ReadPacketAsync(ct);
        if (packet is not SubAckPacket ack) throw new IOException($"expected SUBACK, got packet type {header >> 4}");
        if (ack.ReasonCodes.Count != 1 || (byte)ack.ReasonCodes[0] >= 0x80)
            throw new IOException($"subscription to '{filter}' refused: {string.Join(",", ack.ReasonCodes)}");
    }

    private async Task SendPacketAsync(MqttPacket packet, CancellationToken ct)
    {
        var writer = new ArrayBufferWriter<byte>(64);
        PacketEncoder.Write(writer, packet, _version);
        await SendAllAsync(writer.WrittenMemory, ct);
    }

    /// <summary>Reads one whole packet during the handshake (bytes after it stay for the receive loop).</summary>
    private async Task<(byte Header, MqttPacket Packet)> ReadPacketAsync(CancellationToken ct)
    {
        while (true)
        {
            var seq = new ReadOnlySequence<byte>(_rx, 0, _rxCount);
            var status = FrameReader.TryRead(ref seq, 0, out byte header, out var body, out int frameLength);
            if (status == FrameStatus.Complete)
            {
                var packet = PacketDecoder.Decode(header, body, _version);
                Consume(frameLength);
                return (header, packet);
            }
            if (status != FrameStatus.Incomplete) throw new IOException($"malformed frame from server ({status})");
            if (_rxCount == _rx.Length) Array.Resize(ref _rx, _rx.Length * 2);
            int n = await ReceiveAsync(stamped: false, ct);
            if (n == 0) throw new IOException("server closed the connection during the handshake");
            _rxCount += n;
        }
    }

    private void Consume(int bytes)
    {
        Buffer.BlockCopy(_rx, bytes, _rx, 0, _rxCount - bytes);
        _rxCount -= bytes;
    }

    /// <summary>Reads until the connection closes: counts PUBLISHes (latency from the first 8 payload bytes),
    /// answers QoS 1/2 flows, and returns publish credits on PUBACK/PUBCOMP.</summary>
    public async Task ReceiveLoopAsync()
    {
        var acks = new byte[256];
        try
        {
            while (true)
            {
                if (_rxCount == 0 || !ProcessFrames(ref acks, out int ackLength, out int credits))
                {
                    // Nothing complete buffered: read more.
                    if (_rxCount == _rx.Length) Array.Resize(ref _rx, _rx.Length * 2);
                    int n = await ReceiveAsync(_kernelTime, CancellationToken.None);
                    if (n == 0)
                    {
                        _run.Error("server closed a connection");
                        return;
                    }
                    _rxCount += n;
                    continue;
                }
                if (credits > 0) _credits?.Release(credits);
                if (ackLength > 0)
                {
                    await _sendLock.WaitAsync();
                    try
                    {
                        await SendAllAsync(acks.AsMemory(0, ackLength));
                    }
                    finally
                    {
                        _sendLock.Release();
                    }
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            _run.Error($"connection error: {ex.Message}");
        }
    }

    /// <summary>Receives more MQTT bytes after the <c>_rxCount</c> buffered; 0 when the server closed the connection.
    /// Over WebSocket the frames are taken apart first, and a receive that brought only frame headers is followed
    /// by another.</summary>
    private async ValueTask<int> ReceiveAsync(bool stamped, CancellationToken ct)
    {
        while (true)
        {
            int n = stamped ? await ReceiveStampedAsync() : await _socket.ReceiveAsync(_rx.AsMemory(_rxCount), SocketFlags.None, ct);
            if (n == 0 || _ws is null) return n;
            n = _ws.Unframe(_rx.AsSpan(_rxCount, n));
            if (n > 0 || _ws.Closed) return n;
        }
    }

    /// <summary>Reads with the kernel's arrival time (<c>--rx-time kernel</c>), waiting with a zero-byte receive.</summary>
    private async ValueTask<int> ReceiveStampedAsync()
    {
        while (true)
        {
            int n = KernelReceiveTime.TryReceive(_socket, _rx.AsSpan(_rxCount), out long stamp);
            if (n >= 0)
            {
                _rxStamp = stamp;
                return n;
            }
            await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
        }
    }

    /// <summary>Parses every complete frame in the buffer. Returns false when none was complete.</summary>
    private bool ProcessFrames(ref byte[] acks, out int ackLength, out int credits)
    {
        ackLength = 0;
        credits = 0;
        int pos = 0;
        long now = _kernelTime ? _rxStamp : Stopwatch.GetTimestamp();
        bool measuring = _run.Measuring;
        int publishes = 0;
        var rx = _rx;
        while (true)
        {
            int avail = _rxCount - pos;
            if (avail < 2) break;
            byte header = rx[pos];
            int remaining = 0, lenBytes = 0;
            bool complete = false;
            for (int i = 1; i <= 4 && i < avail; i++)
            {
                byte b = rx[pos + i];
                remaining |= (b & 0x7F) << (7 * (i - 1));
                if ((b & 0x80) == 0)
                {
                    lenBytes = i;
                    complete = true;
                    break;
                }
                if (i == 4) throw new IOException("malformed remaining length from server");
            }
            if (!complete) break;
            int bodyStart = pos + 1 + lenBytes;
            int frameEnd = bodyStart + remaining;
            if (frameEnd > _rxCount)
            {
                if (frameEnd - pos > rx.Length) Array.Resize(ref _rx, frameEnd - pos + 1024);
                break;
            }
            if (ackLength + 4 > acks.Length) Array.Resize(ref acks, acks.Length * 2);
            switch (header >> 4)
            {
                case (int)PacketType.Publish:
                {
                    int qos = (header >> 1) & 3;
                    int p = bodyStart + 2 + BinaryPrimitives.ReadUInt16BigEndian(rx.AsSpan(bodyStart));
                    if (qos > 0)
                    {
                        acks[ackLength] = qos == 1 ? (byte)0x40 : (byte)0x50;
                        acks[ackLength + 1] = 2;
                        acks[ackLength + 2] = rx[p];
                        acks[ackLength + 3] = rx[p + 1];
                        ackLength += 4;
                        p += 2;
                    }
                    if (_version == ProtocolVersion.V500)
                    {
                        int propLength = 0, shift = 0;
                        byte b;
                        do
                        {
                            b = rx[p++];
                            propLength |= (b & 0x7F) << shift;
                            shift += 7;
                        } while ((b & 0x80) != 0);
                        p += propLength;
                    }
                    Received++;
                    publishes++;
                    if (measuring && frameEnd - p >= 8)
                    {
                        long sentAt = BinaryPrimitives.ReadInt64LittleEndian(rx.AsSpan(p));
                        (Latency ??= new BenchHistogram()).Record(now - sentAt);
                        if (_run.Slow is { } slow && now - sentAt > _run.SlowTicks) slow.Enqueue((sentAt, now));
                    }
                    break;
                }
                case (int)PacketType.PubAck:
                case (int)PacketType.PubComp:
                    Completed++;
                    credits++;
                    break;
                case (int)PacketType.PubRec:
                    acks[ackLength] = 0x62;
                    acks[ackLength + 1] = 2;
                    acks[ackLength + 2] = rx[bodyStart];
                    acks[ackLength + 3] = rx[bodyStart + 1];
                    ackLength += 4;
                    break;
                case (int)PacketType.PubRel:
                    acks[ackLength] = 0x70;
                    acks[ackLength + 1] = 2;
                    acks[ackLength + 2] = rx[bodyStart];
                    acks[ackLength + 3] = rx[bodyStart + 1];
                    ackLength += 4;
                    break;
                case (int)PacketType.Disconnect:
                    _run.Error("server sent DISCONNECT");
                    break;
            }
            pos = frameEnd;
        }
        if (pos == 0) return false;
        if (publishes > 0 && _run.OutstandingLimit > 0) Interlocked.Add(ref _run.GateReceived, publishes);
        Consume(pos);
        return true;
    }

    /// <summary>Sends whole MQTT packets (over WebSocket, each in its own frame); callers hold the send lock but
    /// during the handshake.</summary>
    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        if (_ws is not null) data = _ws.Frame(data.Span);
        while (!data.IsEmpty)
        {
            int n = await _socket.SendAsync(data, SocketFlags.None, ct);
            data = data[n..];
        }
    }

    /// <summary>
    /// Publishes until <paramref name="stop"/> is cancelled: as fast as the socket (and, for QoS 1/2, the
    /// inflight window) allows when <paramref name="ratePerSecond"/> is 0, else paced to that average rate.
    /// A paced publisher's schedule starts <paramref name="phase"/> (0 to 1) of its interval after
    /// <paramref name="epoch"/>, so that publishers given evenly spread phases offer an even load together
    /// instead of all firing on the same timer tick.
    /// </summary>
    public async Task PublishLoopAsync(BenchOptions o, string topic, double ratePerSecond, long epoch, double phase,
        CancellationToken stop)
    {
        var template = BuildTemplate(o, topic, out int idOffset, out int payloadOffset);
        bool stamp = o.PayloadSize >= 8;
        int batchMax = Math.Max(1, SendBatchBytes / template.Length);
        if (o.QoS != QoS.AtMostOnce)
        {
            int window = Math.Min(o.Inflight, ServerReceiveMaximum);
            _credits = new SemaphoreSlim(window, window);
            batchMax = Math.Min(batchMax, window);
        }
        var batch = new byte[batchMax * template.Length];
        ushort nextId = 0;
        long started = epoch + (ratePerSecond > 0 ? (long)(phase / ratePerSecond * Stopwatch.Frequency) : 0);
        long sent = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                int n = batchMax;
                if (ratePerSecond > 0)
                {
                    double elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds; // negative before this publisher's phase
                    long due = elapsed < 0 ? 0 : (long)(elapsed * ratePerSecond) + 1 - sent;
                    if (due <= 0)
                    {
                        double waitMs = ((sent / ratePerSecond) - elapsed) * 1000;
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(1, waitMs)), stop);
                        continue;
                    }
                    n = (int)Math.Min(due, batchMax);
                }
                else
                {
                    await _run.WaitGateAsync(stop);
                }
                if (_credits is not null)
                {
                    int got = 0;
                    while (got < n && _credits.Wait(0)) got++;
                    if (got == 0)
                    {
                        await _credits.WaitAsync(stop);
                        got = 1;
                    }
                    n = got;
                }
                long now = Stopwatch.GetTimestamp();
                int length = 0;
                for (int k = 0; k < n; k++)
                {
                    var span = batch.AsSpan(length, template.Length);
                    template.CopyTo(span);
                    if (idOffset >= 0)
                    {
                        if (++nextId == 0) nextId = 1;
                        BinaryPrimitives.WriteUInt16BigEndian(span[idOffset..], nextId);
                    }
                    if (stamp) BinaryPrimitives.WriteInt64LittleEndian(span[payloadOffset..], now);
                    length += template.Length;
                }
                await _sendLock.WaitAsync(stop);
                try
                {
                    await SendAllAsync(batch.AsMemory(0, length));
                }
                finally
                {
                    _sendLock.Release();
                }
                sent += n;
                Volatile.Write(ref Sent, sent);
                if (_run.OutstandingLimit > 0) Interlocked.Add(ref _run.GateSent, n);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
            _run.Error($"publish failed: {ex.Message}");
        }
    }

    /// <summary>One encoded PUBLISH (through the codec), with where its packet id and payload start.</summary>
    private byte[] BuildTemplate(BenchOptions o, string topic, out int idOffset, out int payloadOffset)
    {
        var message = new PublishPacket
        {
            Topic = topic,
            Payload = new byte[o.PayloadSize],
            QoS = o.QoS,
            PacketId = o.QoS == QoS.AtMostOnce ? (ushort)0 : (ushort)1,
        };
        var writer = new ArrayBufferWriter<byte>(o.PayloadSize + topic.Length + 16);
        PacketEncoder.Write(writer, message, _version);
        var bytes = writer.WrittenSpan.ToArray();
        payloadOffset = bytes.Length - o.PayloadSize;
        // The packet id sits just before the payload (3.x) or before the empty property length (5.0).
        idOffset = o.QoS == QoS.AtMostOnce ? -1 : payloadOffset - 2 - (_version == ProtocolVersion.V500 ? 1 : 0);
        return bytes;
    }

    /// <summary>Sends DISCONNECT (best effort) and closes.</summary>
    public async Task CloseAsync()
    {
        try
        {
            if (await _sendLock.WaitAsync(TimeSpan.FromMilliseconds(200)))
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
                await SendAllAsync(_version == ProtocolVersion.V500 ? new byte[] { 0xE0, 1, 0 } : new byte[] { 0xE0, 0 }, cts.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        Dispose();
    }

    public void Dispose()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        _socket.Dispose();
    }
}
