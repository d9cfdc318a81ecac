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
    public static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            var connect = client.ConnectAsync(IPAddress.Loopback, port);
            return connect.Wait(TimeSpan.FromMilliseconds(500)) && client.Connected;
        }
        catch (AggregateException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
