using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Channel;
using Midge.Transport.Sockets;

namespace Midge.Transport;

/// <summary>
/// <c>enable_proxy_protocol 1|2</c>: the first connection middleware of such a listener, in front of the connection
/// guard, TLS and HTTP. It reads the PROXY header (<see cref="ProxyProtocol"/>) and nothing after it, then makes the
/// address the header names the connection's <see cref="BaseConnectionContext.RemoteEndPoint"/>, which everything
/// after it uses: the guard's address lists and rate, the log, hooks and <c>$SYS</c>. A connection whose first bytes
/// are not a header of the listener's version, that sends a longer one, that closes, or that sends nothing whole
/// within the listener's <c>connect_timeout</c>, is closed and logged with the proxy's address and the reason.
/// <para>Kestrel's connections (TLS, WebSocket, Unix sockets) are read through their input pipe, examined but not
/// consumed until the header is whole; a plain-TCP connection of Midge's socket transport is read on its socket
/// by peeking, and only the header's bytes are taken, so the connection's own read loop starts at the first MQTT
/// byte. Either way no more than the header's maximum size is ever held.</para>
/// </summary>
internal sealed class ProxyProtocolGate
{
    private readonly int _version;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;
    private readonly string _name;

    public ProxyProtocolGate(ListenerConfig listener, ILogger logger)
    {
        _version = listener.ProxyProtocol;
        _timeout = TimeSpan.FromSeconds(listener.Protection.ConnectTimeoutSeconds);
        _logger = logger;
        _name = listener.UnixSocketPath ?? $"{listener.BindAddress ?? "*"}:{listener.Port}";
    }

    /// <summary>The middleware: reads the header, then runs <paramref name="next"/> with the client's address.</summary>
    public ConnectionDelegate Wrap(ConnectionDelegate next) => async context =>
    {
        var proxy = context.RemoteEndPoint;
        Outcome outcome;
        using (var timeout = new CancellationTokenSource(_timeout))
        {
            try
            {
                outcome = context is SocketConnection { HasPipes: false } socket
                    ? await ReadFromSocketAsync(socket.Socket, timeout.Token)
                    : await ReadFromPipeAsync(context.Transport.Input, timeout.Token);
            }
            catch (OperationCanceledException)
            {
                outcome = new Outcome($"no whole PROXY header within {_timeout.TotalSeconds:0} s (connect_timeout)", null);
            }
            catch (Exception e) when (e is IOException or SocketException or ConnectionResetException or ObjectDisposedException)
            {
                outcome = new Outcome("connection lost before the PROXY header: " + e.Message, null);
            }
        }
        if (outcome.Error is { } error)
        {
            Log.ProxyHeaderRefused(_logger, RemoteAddress.Format((object?)proxy ?? context.ConnectionId), _name, error);
            context.Abort();
            return;
        }
        if (outcome.Source is { } client)
        {
            context.RemoteEndPoint = client;
            Log.ProxyHeader(_logger, RemoteAddress.Format(proxy), _name, RemoteAddress.Format(client));
        }
        await next(context);
    };

    private readonly record struct Outcome(string? Error, IPEndPoint? Source);

    /// <summary>Kestrel's pipe: each read is examined whole and nothing consumed until the header is complete (an
    /// incomplete header is all header, so what the pipe holds while it waits is under the maximum).</summary>
    private async Task<Outcome> ReadFromPipeAsync(PipeReader input, CancellationToken cancel)
    {
        int max = ProxyProtocol.MaxLength(_version);
        var scratch = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(cancel);
                var buffer = result.Buffer;
                int n = (int)Math.Min(buffer.Length, max);
                buffer.Slice(0, n).CopyTo(scratch);
                var status = ProxyProtocol.TryParse(scratch.AsSpan(0, n), _version, out int length, out var source, out var error);
                if (status == ProxyParse.Complete)
                {
                    input.AdvanceTo(buffer.GetPosition(length));
                    return new Outcome(null, source);
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                if (status == ProxyParse.Invalid) return new Outcome(error, null);
                if (result.IsCompleted || result.IsCanceled) return new Outcome(Closed(n), null);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// Midge's bare socket: peek at what has arrived, then take exactly the bytes that are header (all of them while
    /// the header is incomplete, so a peek never sees the same bytes twice and a wait only ends on new ones). The
    /// first peek runs on the accepting thread; waits are .NET's zero-byte receives (this happens once per connection,
    /// before the connection's read loop takes over the socket).
    /// </summary>
    private async Task<Outcome> ReadFromSocketAsync(Socket socket, CancellationToken cancel)
    {
        int max = ProxyProtocol.MaxLength(_version);
        var header = ArrayPool<byte>.Shared.Rent(max);
        int have = 0;
        try
        {
            while (true)
            {
                int n = socket.Receive(header, have, max - have, SocketFlags.Peek, out var peekError);
                if (peekError == SocketError.WouldBlock)
                {
                    await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancel);
                    continue;
                }
                if (peekError != SocketError.Success) throw new SocketException((int)peekError);
                if (n == 0) return new Outcome(Closed(have), null);
                var status = ProxyProtocol.TryParse(header.AsSpan(0, have + n), _version, out int length, out var source, out var error);
                if (status == ProxyParse.Invalid) return new Outcome(error, null);
                int take = status == ProxyParse.Complete ? length - have : n;
                int taken = socket.Receive(header, have, take, SocketFlags.None, out var takeError);
                if (takeError != SocketError.Success) throw new SocketException((int)takeError);
                if (taken != take) return new Outcome("the socket gave fewer bytes than it showed", null);
                have += take;
                if (status == ProxyParse.Complete) return new Outcome(null, source);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(header);
        }
    }

    private static string Closed(int received) => received == 0
        ? "closed without sending a PROXY header"
        : $"closed after {received} bytes of an incomplete PROXY header";
}

internal static partial class Log
{
    [LoggerMessage(113, LogLevel.Warning, "Connection from {Remote} on {Listener} refused: {Reason} (enable_proxy_protocol).")]
    public static partial void ProxyHeaderRefused(ILogger logger, string remote, string listener, string reason);

    [LoggerMessage(114, LogLevel.Debug, "PROXY header from {Proxy} on {Listener}: client {Client}.")]
    public static partial void ProxyHeader(ILogger logger, string proxy, string listener, string client);
}
