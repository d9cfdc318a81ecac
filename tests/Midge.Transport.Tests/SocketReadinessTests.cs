using System.Net;
using System.Net.Sockets;
using Midge.Transport.Sockets;

namespace Midge.Transport.Tests;

public class SocketReadinessTests
{
    [Fact]
    public async Task ASignalBeforeTheWait_CompletesTheWaitAtOnce_AndOnlyOnce()
    {
        var waiter = new ReadinessWaiter(0, 1);
        waiter.Signal();
        waiter.Signal(); // two events before the reader looks: one wake is enough
        Assert.True(waiter.WaitAsync().IsCompletedSuccessfully);
        var next = waiter.WaitAsync();
        Assert.False(next.IsCompleted);
        waiter.Signal();
        await next.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task AWaitingReader_IsWokenOnTheSignallingThread()
    {
        var waiter = new ReadinessWaiter(0, 1);
        int signaller = 0, woken = 0;
        var reader = ReadAsync();
        Assert.False(reader.IsCompleted);
        await Task.Run(() =>
        {
            signaller = Environment.CurrentManagedThreadId;
            waiter.Signal();
        });
        await reader.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(signaller, woken); // the read loop continues inline, as on an epoll thread

        async Task ReadAsync()
        {
            await waiter.WaitAsync().ConfigureAwait(false); // as in the broker: no synchronization context
            woken = Environment.CurrentManagedThreadId;
        }
    }

    [Fact]
    public async Task ARegisteredSocket_WakesItsReader_ForData_AndForTheClose()
    {
        Assert.True(SocketReadiness.IsAvailable); // Linux: Midge's epoll loops
        var (client, server) = await ConnectedPairAsync();
        using (client)
        using (server)
        {
            using var readiness = SocketReadiness.Register(server);
            Assert.NotNull(readiness);
            var buffer = new byte[16];
            Assert.Equal(0, server.Receive(buffer, SocketFlags.None, out var error));
            Assert.Equal(SocketError.WouldBlock, error);

            var wait = readiness.WaitAsync();
            await Task.Delay(50);
            Assert.False(wait.IsCompleted); // nothing to read yet
            client.Send("hello"u8);
            await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(5, server.Receive(buffer, SocketFlags.None, out error));
            Assert.Equal(SocketError.Success, error);
            Assert.Equal("hello"u8.ToArray(), buffer[..5]);

            wait = readiness.WaitAsync();
            client.Shutdown(SocketShutdown.Send);
            await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(0, server.Receive(buffer, SocketFlags.None, out error)); // the end of the stream
            Assert.Equal(SocketError.Success, error);
        }
    }

    [Fact]
    public async Task AnEventForAReleasedRegistration_DoesNotWakeTheOneThatReusedItsSlot()
    {
        var (oldClient, oldServer) = await ConnectedPairAsync();
        var (newClient, newServer) = await ConnectedPairAsync();
        using (oldClient)
        using (oldServer)
        using (newClient)
        using (newServer)
        {
            var released = SocketReadiness.Register(oldServer)!;
            released.Dispose(); // the socket stays open, so the kernel still reports it under its old key
            using var current = SocketReadiness.Register(newServer)!;
            Assert.Equal(released.Slot, current.Slot);
            Assert.NotEqual(released.Key, current.Key);

            var wait = current.WaitAsync();
            oldClient.Send("stale"u8);
            await Task.Delay(200);
            Assert.False(wait.IsCompleted);
            newClient.Send("fresh"u8);
            await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        }
    }

    private static async Task<(Socket Client, Socket Server)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(listener.LocalEndPoint!);
        var server = await listener.AcceptAsync();
        server.Blocking = false;
        return (client, server);
    }
}
