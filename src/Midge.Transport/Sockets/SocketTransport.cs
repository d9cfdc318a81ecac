using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Midge.Transport.Sockets;

/// <summary>
/// Where a plain-TCP MQTT listener binds, and what runs each of its connections: an <see cref="IPEndPoint"/>
/// wrapped so that Kestrel hands it to <see cref="SocketTransportFactory"/> rather than to its own socket
/// transport (which keeps the TLS listeners).
/// </summary>
public sealed class MqttTcpEndPoint(IPEndPoint address, ConnectionDelegate application, ILogger logger) : EndPoint
{
    public IPEndPoint Address { get; } = address;

    /// <summary>The listener's connection pipeline (address guard, then MQTT).</summary>
    internal ConnectionDelegate Application { get; } = application;

    internal ILogger Logger { get; } = logger;

    public override AddressFamily AddressFamily => Address.AddressFamily;

    public override string ToString() => Address.ToString();

    public override bool Equals(object? obj) => obj is MqttTcpEndPoint other && other.Address.Equals(Address);

    public override int GetHashCode() => Address.GetHashCode();
}

/// <summary>
/// The transport of plain-TCP MQTT listeners. Kestrel binds and unbinds them through this factory, so startup
/// errors, listen logging and shutdown are Kestrel's as for every other listener; but their connections never
/// enter Kestrel's connection pipeline. The listener accepts on its own and runs the endpoint's
/// <see cref="MqttTcpEndPoint.Application"/> on each <see cref="SocketConnection"/>, which reads and writes the
/// socket directly: no pipes, no transport loops, no per-connection bookkeeping beyond the socket, so an idle
/// client costs about half of what it costs through Kestrel's pipeline, and a message crosses one thread fewer
/// on each side (docs/benchmarks.md). Register it after Kestrel; it binds only <see cref="MqttTcpEndPoint"/>.
/// </summary>
public sealed class SocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is MqttTcpEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var mqtt = (MqttTcpEndPoint)endpoint;
        Socket socket;
        try
        {
            // Kestrel's own bind: dual mode on [::], the platform's address-reuse rules.
            socket = SocketTransportOptions.CreateDefaultBoundListenSocket(mqtt.Address);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException($"Failed to bind to address {mqtt.Address}: address already in use.", e);
        }
        socket.Listen(512);
        var bound = new MqttTcpEndPoint((IPEndPoint)socket.LocalEndPoint!, mqtt.Application, mqtt.Logger);
        return new ValueTask<IConnectionListener>(new Listener(socket, bound));
    }

    /// <summary>Accepts and starts connections itself; to Kestrel it is a listener that never yields one.</summary>
    private sealed class Listener : IConnectionListener
    {
        private readonly Socket _socket;
        private readonly MqttTcpEndPoint _endpoint;
        private readonly TaskCompletionSource _unbound = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Listener(Socket socket, MqttTcpEndPoint endpoint)
        {
            _socket = socket;
            _endpoint = endpoint;
            _ = AcceptLoopAsync();
        }

        public EndPoint EndPoint => _endpoint;

        private async Task AcceptLoopAsync()
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await _socket.AcceptAsync();
                }
                catch (ObjectDisposedException)
                {
                    return; // unbound
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
                {
                    return;
                }
                catch (SocketException)
                {
                    continue; // the client reset before we accepted it
                }
                try
                {
                    accepted.NoDelay = true; // the writer coalesces; Nagle would only add delay
                    accepted.Blocking = false; // the writer sends inline and waits only when the kernel is full
                }
                catch (SocketException)
                {
                    accepted.Dispose();
                    continue;
                }
                // The connection starts right here, on the accept loop's thread: its pipeline runs to the first
                // receive, and a CONNECT already there is handled at once, with no hand-over to the thread pool.
                // A CONNECT whose answer comes later (an authentication hook, a costly password hash) is awaited and
                // gives this thread back, so the loop is held up only as long as a CONNECT takes to decide.
                new SocketConnection(accepted, _endpoint).Start();
            }
        }

        /// <summary>Kestrel's accept loop waits here until the listener is unbound.</summary>
        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                await _unbound.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
            return null;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => DisposeAsync();

        public ValueTask DisposeAsync()
        {
            _socket.Dispose();
            _unbound.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }
}
