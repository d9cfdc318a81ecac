using System.Collections;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Midge.Transport.Sockets;

/// <summary>
/// One accepted socket as Kestrel sees it. It owns no buffers and runs no loops: <see cref="MqttConnection"/>
/// reads and writes <see cref="Socket"/> directly. Anything else that asks for <see cref="Transport"/> (the
/// server-busy answer at max_connections) gets pipes over a <see cref="NetworkStream"/>, made on first use.
/// Everything else is made lazily too, so an idle connection costs the socket and this object.
/// </summary>
internal sealed class SocketConnection(Socket socket, EndPoint listener) : ConnectionContext
{
    private static long s_nextId;

    private IDuplexPipe? _transport;
    private string? _id;
    private IDictionary<object, object?>? _items;
    private SmallFeatureCollection? _features;

    public Socket Socket => socket;

    /// <summary>True once something took the pipe view of this socket; then only that view may be used.</summary>
    public bool HasPipes => _transport is not null;

    public override string ConnectionId
    {
        get => _id ??= "mqtt-" + Interlocked.Increment(ref s_nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        set => _id = value;
    }

    public override IFeatureCollection Features => _features ??= new SmallFeatureCollection();

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
        get => listener;
        set { }
    }

    public override EndPoint? RemoteEndPoint
    {
        get
        {
            try
            {
                return socket.RemoteEndPoint; // cached by the socket since accept
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
        }
        set { }
    }

    /// <summary>Ends both directions: a pending receive returns 0, what was sent before still goes out first.</summary>
    public void Shutdown()
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public override void Abort(ConnectionAbortedException abortReason) => Shutdown();

    public override async ValueTask DisposeAsync()
    {
        if (_transport is { } pipes)
        {
            await pipes.Output.CompleteAsync();
            await pipes.Input.CompleteAsync();
        }
        Shutdown();
        socket.Dispose();
    }

    private IDuplexPipe CreatePipes()
    {
        var stream = new NetworkStream(socket, ownsSocket: false);
        return new StreamPipes(PipeReader.Create(stream), PipeWriter.Create(stream));
    }

    private sealed record StreamPipes(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>The few features Kestrel and the listener middleware set (four or five), in a short array
    /// rather than a dictionary.</summary>
    private sealed class SmallFeatureCollection : IFeatureCollection
    {
        private KeyValuePair<Type, object>[] _items = new KeyValuePair<Type, object>[6];
        private int _count;

        public bool IsReadOnly => false;

        public int Revision { get; private set; }

        public object? this[Type key]
        {
            get
            {
                for (int i = 0; i < _count; i++)
                {
                    if (_items[i].Key == key) return _items[i].Value;
                }
                return null;
            }
            set
            {
                Revision++;
                for (int i = 0; i < _count; i++)
                {
                    if (_items[i].Key != key) continue;
                    if (value is null)
                    {
                        _items[i] = _items[--_count];
                        _items[_count] = default;
                    }
                    else
                    {
                        _items[i] = new(key, value);
                    }
                    return;
                }
                if (value is null) return;
                if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
                _items[_count++] = new(key, value);
            }
        }

        public TFeature? Get<TFeature>() => this[typeof(TFeature)] is TFeature feature ? feature : default;

        public void Set<TFeature>(TFeature? instance) => this[typeof(TFeature)] = instance;

        public IEnumerator<KeyValuePair<Type, object>> GetEnumerator()
        {
            for (int i = 0; i < _count; i++) yield return _items[i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
