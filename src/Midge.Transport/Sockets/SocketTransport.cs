using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Midge.Transport.Sockets;

/// <summary>
/// Where a plain-TCP MQTT listener binds: an <see cref="IPEndPoint"/> wrapped so that Kestrel hands it to
/// <see cref="SocketTransportFactory"/> rather than to its own socket transport (which keeps TLS listeners).
/// </summary>
public sealed class MqttTcpEndPoint(IPEndPoint address) : EndPoint
{
    public IPEndPoint Address { get; } = address;

    public override AddressFamily AddressFamily => Address.AddressFamily;

    public override string ToString() => Address.ToString();

    public override bool Equals(object? obj) => obj is MqttTcpEndPoint other && other.Address.Equals(Address);

    public override int GetHashCode() => Address.GetHashCode();
}

/// <summary>
/// Kestrel transport for plain-TCP MQTT listeners. Kestrel still accepts through it, runs the listener's
/// connection middleware and tracks every connection; what differs from Kestrel's socket transport is the
/// connection (<see cref="SocketConnection"/>): no pipes and no receive/send loops of its own. The MQTT
/// connection reads and writes the socket itself, so an idle client holds no buffer and a message crosses one
/// thread fewer on each side. Register it after Kestrel; it binds only <see cref="MqttTcpEndPoint"/>.
/// </summary>
public sealed class SocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is MqttTcpEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var address = ((MqttTcpEndPoint)endpoint).Address;
        Socket socket;
        try
        {
            // Kestrel's own bind: dual mode on [::], the platform's address-reuse rules.
            socket = SocketTransportOptions.CreateDefaultBoundListenSocket(address);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException($"Failed to bind to address {address}: address already in use.", e);
        }
        socket.Listen(512);
        var bound = new MqttTcpEndPoint((IPEndPoint)socket.LocalEndPoint!);
        return new ValueTask<IConnectionListener>(new Listener(socket, bound));
    }

    private sealed class Listener(Socket socket, EndPoint endpoint) : IConnectionListener
    {
        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                try
                {
                    var accepted = await socket.AcceptAsync(cancellationToken);
                    accepted.NoDelay = true; // the writer coalesces; Nagle would only add delay
                    return new SocketConnection(accepted, endpoint);
                }
                catch (ObjectDisposedException)
                {
                    return null; // unbound
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
                {
                    return null;
                }
                catch (SocketException)
                {
                    // The client reset before we accepted it: take the next one.
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
