using System.Net;
using System.Net.Sockets;

namespace Midge.TestKit;

/// <summary>Loopback ports that are free now and never handed out twice in this test run.</summary>
public static class FreePort
{
    private static readonly HashSet<int> Issued = [];
    private static readonly Lock Sync = new();

    /// <summary>A port the kernel picked as free on 127.0.0.1, not issued before in this process.</summary>
    public static int Next()
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)socket.LocalEndPoint!).Port;
            lock (Sync)
            {
                if (Issued.Add(port)) return port;
            }
        }
        throw new InvalidOperationException("no free loopback port found");
    }

    /// <summary>Whether something accepts TCP connections on 127.0.0.1:<paramref name="port"/> right now.</summary>
    public static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new TcpClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port, cts.Token);
            return client.Connected;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
