using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Client;

/// <summary>
/// One network connection: a framed packet reader and a single writer loop that coalesces every queued packet
/// into one flush. Knows no session state; <see cref="MqttClient"/> owns that.
/// </summary>
internal sealed class MqttConnection : IAsyncDisposable
{
    private readonly struct Outgoing(MqttPacket packet, TaskCompletionSource<PublishResult>? written)
    {
        public readonly MqttPacket Packet = packet;
        public readonly TaskCompletionSource<PublishResult>? Written = written;
    }

    private const int FlushThreshold = 64 * 1024;

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Channel<Outgoing> _queue = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _cts = new();
    private readonly int _maxIncoming;
    private Task _writerTask = Task.CompletedTask;
    private int _aborted;
    private volatile bool _sendClosed;

    private readonly PacketTraceHandler? _trace;

    private MqttConnection(Socket socket, Stream stream, ProtocolVersion version, int maxIncoming, PacketTraceHandler? trace)
    {
        _socket = socket;
        _stream = stream;
        Version = version;
        _maxIncoming = maxIncoming;
        _trace = trace;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
        LastSent = LastReceived = Environment.TickCount64;
    }

    public ProtocolVersion Version { get; }
    public long LastSent { get; private set; }
    public long LastReceived { get; set; }
    public CancellationToken Closed => _cts.Token;
    public Task WriterTask => _writerTask;

    public static async Task<MqttConnection> OpenAsync(MqttClientOptions options, CancellationToken ct)
    {
        var socket = options.UnixSocketPath is not null
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = options.NoDelay };
        try
        {
            if (options.UnixSocketPath is { } path)
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
            }
            else
            {
                if (options.BindAddress is { } bind) socket.Bind(new IPEndPoint(IPAddress.Parse(bind), 0));
                if (options.Proxy is { } proxy) await socket.ConnectAsync(proxy.Host, proxy.Port, ct).ConfigureAwait(false);
                else await socket.ConnectAsync(options.Host, options.Port, ct).ConfigureAwait(false);
            }
            Stream stream = new NetworkStream(socket, ownsSocket: false);
            if (options.Proxy is { } via && options.UnixSocketPath is null)
                await Socks5.ConnectAsync(stream, options.Host, options.Port, via, ct).ConfigureAwait(false);
            if (options.Tls is { } tls) stream = await AuthenticateAsync(stream, options.Host, tls, ct).ConfigureAwait(false);
            int max = options.ProtocolVersion == ProtocolVersion.V500 && options.MaximumPacketSize is { } m ? (int)Math.Min(m, int.MaxValue) : 0;
            return new MqttConnection(socket, stream, options.ProtocolVersion, max, options.PacketTrace);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<Stream> AuthenticateAsync(Stream inner, string host, MqttTlsOptions tls, CancellationToken ct)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        var certificates = new X509CertificateCollection();
        if (tls.ClientCertificates is { } extra) certificates.AddRange(extra);
        if (tls.CertFile is { } certFile) certificates.Add(X509Certificate2.CreateFromPemFile(certFile, tls.KeyFile));
        X509Certificate2Collection? trust = null;
        if (tls.CaFile is { } caFile)
        {
            trust = [];
            trust.ImportFromPemFile(caFile);
        }
        if (tls.CaPath is { } caPath)
        {
            trust ??= [];
            trust.AddRange(LoadHashedDirectory(caPath));
        }
        var auth = new SslClientAuthenticationOptions
        {
            TargetHost = tls.TargetHost ?? host,
            ClientCertificates = certificates,
            EnabledSslProtocols = tls.EnabledProtocols,
            RemoteCertificateValidationCallback = tls.RemoteCertificateValidation ?? ((_, cert, chain, errors) =>
                Validate(cert, errors, trust, tls.AllowNameMismatch)),
        };
        if (tls.CipherSuites is { } suites) auth.CipherSuitesPolicy = new CipherSuitesPolicy(suites);
        if (tls.ApplicationProtocols is { Count: > 0 } alpn)
            auth.ApplicationProtocols = [.. alpn.Select(p => new SslApplicationProtocol(p))];
        try
        {
            await ssl.AuthenticateAsClientAsync(auth, ct).ConfigureAwait(false);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return ssl;
    }

    /// <summary>
    /// The CA certificates of a directory prepared as OpenSSL's lookup wants it: the files (or links) named
    /// <c>HASH.N</c>, eight hex digits and a number, as <c>openssl rehash</c> and <c>c_rehash</c> make them. Other
    /// files (the originals, <c>HASH.rN</c> CRLs) are not read; a missing directory trusts nothing.
    /// </summary>
    internal static X509Certificate2Collection LoadHashedDirectory(string directory)
    {
        var found = new X509Certificate2Collection();
        if (!Directory.Exists(directory)) return found;
        foreach (var file in Directory.GetFiles(directory).Order(StringComparer.Ordinal))
        {
            if (!IsHashedName(Path.GetFileName(file))) continue;
            try
            {
                found.ImportFromPemFile(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                // A link to something that is not a certificate: OpenSSL passes it over too.
            }
        }
        return found;
    }

    private static bool IsHashedName(string name)
    {
        int dot = name.IndexOf('.');
        if (dot != 8 || name.Length == 9) return false;
        for (int i = 0; i < 8; i++)
        {
            if (!char.IsAsciiHexDigit(name[i])) return false;
        }
        for (int i = 9; i < name.Length; i++)
        {
            if (!char.IsAsciiDigit(name[i])) return false;
        }
        return true;
    }

    /// <summary>System trust, or only the CA file's certificates when one is given; a name mismatch passes with
    /// <paramref name="allowNameMismatch"/>.</summary>
    internal static bool Validate(X509Certificate? cert, SslPolicyErrors errors, X509Certificate2Collection? trust, bool allowNameMismatch)
    {
        if (allowNameMismatch) errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
        if (trust is null || cert is null) return errors == SslPolicyErrors.None;
        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
    }

    /// <summary>Writes CONNECT before the writer loop runs.</summary>
    public async ValueTask SendDirectAsync(MqttPacket packet, CancellationToken ct)
    {
        Trace(packet, outgoing: true);
        PacketEncoder.Write(_writer, packet, Version);
        await _writer.FlushAsync(ct).ConfigureAwait(false);
        LastSent = Environment.TickCount64;
    }

    public void StartWriter() => _writerTask = Task.Run(WriterLoopAsync);

    /// <summary>Queues a packet for the writer loop; false when the connection is closing.</summary>
    public bool Send(MqttPacket packet, TaskCompletionSource<PublishResult>? written = null)
    {
        // Traced before it is queued: the writer loop may have it on the wire, and the answer read, at once.
        if (_trace is not null && !_sendClosed) Trace(packet, outgoing: true);
        return _queue.Writer.TryWrite(new Outgoing(packet, written));
    }

    private void Trace(MqttPacket packet, bool outgoing)
    {
        if (_trace is null) return;
        try
        {
            _trace(packet, outgoing);
        }
        catch (Exception)
        {
            // A logger's failure must not break the connection.
        }
    }

    /// <summary>Stops taking packets and waits (bounded) until the queued ones are flushed.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _sendClosed = true;
        _queue.Writer.TryComplete();
        try
        {
            await _writerTask.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task WriterLoopAsync()
    {
        var done = new List<TaskCompletionSource<PublishResult>>();
        var ct = _cts.Token;
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    PacketEncoder.Write(_writer, item.Packet, Version);
                    if (item.Written is not null) done.Add(item.Written);
                    if (_writer.UnflushedBytes >= FlushThreshold) await FlushAsync(done, ct).ConfigureAwait(false);
                }
                await FlushAsync(done, ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            foreach (var tcs in done) tcs.TrySetException(new MqttConnectionLostException("connection lost before the message was written", ex));
            while (reader.TryRead(out var item)) item.Written?.TrySetException(new MqttConnectionLostException("connection lost before the message was written", ex));
            Abort();
            if (ex is not (OperationCanceledException or IOException or SocketException or ObjectDisposedException)) throw;
        }
    }

    private async ValueTask FlushAsync(List<TaskCompletionSource<PublishResult>> done, CancellationToken ct)
    {
        await _writer.FlushAsync(ct).ConfigureAwait(false);
        LastSent = Environment.TickCount64;
        foreach (var tcs in done) tcs.TrySetResult(new PublishResult(ReasonCode.Success, 0));
        done.Clear();
    }

    /// <summary>Reads the next packet; null when the server closed the connection.</summary>
    public async ValueTask<MqttPacket?> ReadPacketAsync(CancellationToken ct)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            var status = FrameReader.TryRead(ref buffer, _maxIncoming, out byte header, out var body, out int length);
            switch (status)
            {
                case FrameStatus.Complete:
                    MqttPacket packet;
                    try
                    {
                        packet = PacketDecoder.Decode(header, body, Version);
                    }
                    finally
                    {
                        _reader.AdvanceTo(buffer.Start);
                    }
                    LastReceived = Environment.TickCount64;
                    Trace(packet, outgoing: false);
                    return packet;
                case FrameStatus.TooLarge:
                    throw new MqttProtocolException(ReasonCode.PacketTooLarge, $"the server sent a packet of {length} bytes, above our Maximum Packet Size");
                case FrameStatus.MalformedLength:
                    throw new MqttProtocolException(ReasonCode.MalformedPacket, "malformed remaining length");
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                _reader.AdvanceTo(result.Buffer.End);
                return null;
            }
            _reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Closes the socket at once; pending reads and writes fail.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0) return;
        _sendClosed = true;
        _queue.Writer.TryComplete();
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        _socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Abort();
        try
        {
            await _writerTask.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
        await _reader.CompleteAsync().ConfigureAwait(false);
        try
        {
            await _writer.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
        }
        await _stream.DisposeAsync().ConfigureAwait(false);
        _cts.Dispose();
    }
}
