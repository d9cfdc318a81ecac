using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using KestrelSockets = Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Midge.Transport.Sockets;

/// <summary>
/// The address of an MQTT listener that Kestrel's connection pipeline serves (TLS, WebSocket and WSS, Unix sockets),
/// wrapped so that <see cref="InlineSocketTransportFactory"/> binds it rather than the host's own socket transport.
/// </summary>
public sealed class MqttPipeEndPoint(EndPoint inner) : EndPoint
{
    /// <summary>The address itself: an <see cref="IPEndPoint"/> or a <see cref="UnixDomainSocketEndPoint"/>.</summary>
    public EndPoint Inner { get; } = inner;

    public override AddressFamily AddressFamily => Inner.AddressFamily;

    public override string ToString() => Inner.ToString()!;

    public override bool Equals(object? obj) => obj is MqttPipeEndPoint other && other.Inner.Equals(Inner);

    public override int GetHashCode() => Inner.GetHashCode();
}

/// <summary>
/// Kestrel's socket transport with inline scheduling, for the MQTT listeners that run over its pipes. By default
/// Kestrel hands every receive to the thread pool and every send to its I/O queues, which go through the thread pool
/// too. Under a flood that starves the deliveries: a hundred WebSocket publishers kept every worker busy with their
/// reads, and one subscriber's sends waited behind them in the pool's global queue, so it got about 25,000 messages a
/// second over TCP and none over WebSocket while the rest were dropped (docs/benchmarks.md). With inline scheduling a
/// receive is handled on the socket engine thread that saw it arrive, and a send starts on the thread that flushed it:
/// the same shape as Midge's own plain-TCP transport (<see cref="SocketTransportFactory"/>), with the same rule that
/// slow work (a password hash, an authentication hook) moves to the thread pool first. The management API's
/// <c>protocol http</c> listeners keep the host's transport, where request handlers may block.
/// </summary>
public sealed class InlineSocketTransportFactory(ILoggerFactory loggers) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly KestrelSockets.SocketTransportFactory _inner =
        new(Options.Create(new KestrelSockets.SocketTransportOptions { UnsafePreferInlineScheduling = true }), loggers);

    public bool CanBind(EndPoint endpoint) => endpoint is MqttPipeEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        _inner.BindAsync(((MqttPipeEndPoint)endpoint).Inner, cancellationToken);
}
