using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Midge.Core.Channel;

namespace Midge.Transport.Sockets;

/// <summary>
/// One accepted socket of a plain-TCP listener (<see cref="SocketTransportFactory"/>), as the listener's
/// connection pipeline sees it. It owns no buffers and runs no loops: <see cref="MqttConnection"/> reads and
/// writes <see cref="Socket"/> directly. Anything else that asks for <see cref="Transport"/> (the server-busy
/// answer at max_connections) gets pipes over a <see cref="NetworkStream"/>, made on first use. Everything else
/// is made lazily too, so an idle connection costs the socket and this object. Whoever runs the connection
/// ends it with <see cref="Abort()"/> or <see cref="DisposeAsync"/>, which close the socket.
/// </summary>
internal sealed class SocketConnection(Socket socket, MqttTcpEndPoint listener) : ConnectionContext
{
    private static long s_nextId;

    private IDuplexPipe? _transport;
    private string? _id;
    private IDictionary<object, object?>? _items;
    private FeatureCollection? _features;
    private int _shutDown;
    private EndPoint? _remote;

    public Socket Socket => socket;

    /// <summary>The listener's logger.</summary>
    public ILogger Logger => listener.Logger;

    /// <summary>True once something took the pipe view of this socket; then only that view may be used.</summary>
    public bool HasPipes => _transport is not null;

    public override string ConnectionId
    {
        get => _id ??= "mqtt-" + Interlocked.Increment(ref s_nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        set => _id = value;
    }

    public override IFeatureCollection Features => _features ??= new FeatureCollection();

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    public override IDuplexPipe Transport
    {
        get => _transport ??= CreatePipes();
        set => _transport = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => listener.Address;
        set { }
    }

    /// <summary>The socket's peer, or the client a PROXY header named (<see cref="ProxyProtocolGate"/> sets it).</summary>
    public override EndPoint? RemoteEndPoint
    {
        get
        {
            if (_remote is not null) return _remote;
            try
            {
                return socket.RemoteEndPoint; // cached by the socket since accept
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
        }
        set => _remote = value;
    }

    /// <summary>
    /// Ends both directions: a pending receive returns 0, what was sent before still goes out first. Only the
    /// first call asks the kernel (the writer and the close may both come here; a second shutdown would only
    /// fail with ENOTCONN).
    /// </summary>
    public void Shutdown()
    {
        if (Interlocked.Exchange(ref _shutDown, 1) != 0) return;
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Ends the sending side only (a lingering close): the peer reads what was sent, then end of stream,
    /// while this side can still read. <see cref="Shutdown"/> or <see cref="Abort"/> ends the rest.</summary>
    public void ShutdownSend()
    {
        if (Volatile.Read(ref _shutDown) != 0) return;
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Closes the socket (after a shutdown, so what was sent still goes out first).</summary>
    public override void Abort(ConnectionAbortedException abortReason)
    {
        Shutdown();
        socket.Dispose();
    }

    public override async ValueTask DisposeAsync()
    {
        if (_transport is { } pipes)
        {
            await pipes.Output.CompleteAsync();
            await pipes.Input.CompleteAsync();
        }
        Abort();
    }

    /// <summary>Runs the listener's pipeline on this connection, on the caller's thread up to its first wait.</summary>
    public void Start()
    {
        try
        {
            _ = listener.Application(this);
        }
        catch (Exception ex)
        {
            Log.ConnectionFailed(listener.Logger, RemoteAddress.Format((object?)RemoteEndPoint ?? ConnectionId), ex);
            Abort();
        }
    }

    private IDuplexPipe CreatePipes()
    {
        socket.Blocking = true; // a NetworkStream needs a blocking socket; from here on the pipes do all I/O
        var stream = new NetworkStream(socket, ownsSocket: false);
        return new StreamPipes(PipeReader.Create(stream), PipeWriter.Create(stream));
    }

    private sealed record StreamPipes(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
