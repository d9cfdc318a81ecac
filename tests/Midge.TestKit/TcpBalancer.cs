using System.Net;
using System.Net.Sockets;

namespace Midge.TestKit;

/// <summary>
/// A TCP load balancer on a free loopback port, as HAProxy in TCP mode would be in front of a cluster: each accepted
/// connection goes to a node picked at random and bytes are copied both ways until either side closes (a close is
/// passed on as a close, half-closes included). So a client that reconnects may land on another node.
/// </summary>
public sealed class TcpBalancer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IReadOnlyList<int> _backends;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Random _random;

    public TcpBalancer(IReadOnlyList<int> backends, int? seed = null)
    {
        _backends = backends;
        _random = seed is { } s ? new Random(s) : Random.Shared;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(512);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>How many connections went to each backend so far (same order as the backends).</summary>
    public int[] Connections { get; private set; } = [];

    private async Task AcceptAsync()
    {
        Connections = new int[_backends.Count];
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            int pick;
            lock (_random) pick = _random.Next(_backends.Count);
            Interlocked.Increment(ref Connections[pick]);
            _ = RelayAsync(client, _backends[pick]);
        }
    }

    private async Task RelayAsync(Socket client, int port)
    {
        using var _ = client;
        using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await upstream.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), _stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
            client.LingerState = new LingerOption(true, 0);
            return;
        }
        await Task.WhenAll(CopyAsync(client, upstream), CopyAsync(upstream, client));
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/>; at the end of the stream shuts down
    /// <paramref name="to"/>'s sending side; on a reset, resets both.</summary>
    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }
                for (int sent = 0; sent < n;) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            Reset(from);
            Reset(to);
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _accepting;
        _stop.Dispose();
    }
}
