using System.Diagnostics;
using System.Text;
using Midge.Client;
using Midge.Core.Hooks;
using Midge.Hosting;
using Midge.Protocol;
using Midge.TestKit;
using Xunit.Abstractions;

namespace Midge.Hosting.Tests;

public class SlowAuthenticatorTests(ITestOutputHelper output)
{
    /// <summary>
    /// An authentication backend that takes 2 s per CONNECT (an HTTP or LDAP call) while 200 other clients exchange
    /// QoS 1 messages: the slow CONNECTs wait without a thread, so the others are not held up, and the thread pool
    /// does not grow by a thread per waiting CONNECT (as it must when each waits on a blocked thread).
    /// </summary>
    [Fact]
    public async Task Clients_exchange_QoS1_messages_while_64_CONNECTs_wait_two_seconds_each_for_their_authenticator()
    {
        const int Clients = 200, SlowConnects = 64, MessagesEach = 3;
        int port = FreePort.Next();
        await using var server = await MidgeServer.StartAsync(o =>
        {
            o.UseConfig($"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 100\n");
            o.ConfigureHooks = hooks => hooks.Authenticate.Attach(async (context, ct) =>
            {
                if (context.Username != "slow") return HookVerdict.Defer;
                await Task.Delay(TimeSpan.FromSeconds(2), ct);
                return HookVerdict.Allow;
            });
        });

        var clients = new MqttClient[Clients];
        for (int i = 0; i < Clients; i++)
        {
            clients[i] = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = port, ClientId = $"fast-{i}", ProtocolVersion = ProtocolVersion.V500 });
        }
        try
        {
            await Task.WhenAll(clients.Select(c => c.ConnectAsync().AsTask()));
            await Task.WhenAll(clients.Select((c, i) => c.SubscribeAsync($"to/{i}", QoS.AtLeastOnce).AsTask()));
            // Warm up the exchange once, so the timing below measures waiting, not first-call compilation.
            await ExchangeAsync(clients, 1);

            int threadsBefore = ThreadPool.ThreadCount;
            var slowStarted = Stopwatch.StartNew();
            var slow = Enumerable.Range(0, SlowConnects).Select(async i =>
            {
                await using var c = new MqttClient(new MqttClientOptions
                {
                    Host = "127.0.0.1",
                    Port = port,
                    ClientId = $"slow-{i}",
                    UserName = "slow",
                    ProtocolVersion = ProtocolVersion.V500,
                });
                var r = await c.ConnectAsync();
                return (r.ReasonCode, slowStarted.Elapsed);
            }).ToArray();
            await Task.Delay(100); // every slow CONNECT is with its authenticator now

            var exchange = Stopwatch.StartNew();
            var slowest = await ExchangeAsync(clients, MessagesEach);
            exchange.Stop();
            int threadsDuring = ThreadPool.ThreadCount;
            bool slowStillWaiting = slow.All(t => !t.IsCompleted);
            var slowResults = await Task.WhenAll(slow);
            output.WriteLine($"exchange of {Clients * MessagesEach} QoS 1 messages: {exchange.ElapsedMilliseconds} ms, slowest round trip " +
                $"{slowest.TotalMilliseconds:F0} ms; pool threads {threadsBefore} -> {threadsDuring}; slow CONNECTs done after " +
                $"{slowResults.Min(r => r.Elapsed.TotalMilliseconds):F0}-{slowResults.Max(r => r.Elapsed.TotalMilliseconds):F0} ms");

            Assert.True(slowStillWaiting, "the exchange should finish while the slow CONNECTs still wait");
            Assert.True(slowest < TimeSpan.FromSeconds(1), $"a round trip took {slowest.TotalMilliseconds:F0} ms");
            Assert.True(threadsDuring - threadsBefore < SlowConnects / 2, $"the pool grew from {threadsBefore} to {threadsDuring} threads");
            Assert.All(slowResults, r => Assert.Equal(ReasonCode.Success, r.ReasonCode));
            Assert.All(slowResults, r => Assert.True(r.Elapsed >= TimeSpan.FromSeconds(1.9), $"CONNACK after {r.Elapsed}"));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    /// <summary>Client i sends <paramref name="count"/> QoS 1 messages to client i+1; returns the slowest time from a
    /// PUBLISH to its arrival.</summary>
    private static async Task<TimeSpan> ExchangeAsync(MqttClient[] clients, int count)
    {
        int n = clients.Length;
        var receive = clients.Select(async c =>
        {
            var slowest = TimeSpan.Zero;
            for (int k = 0; k < count; k++)
            {
                var m = await c.ReadMessageAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                var took = Stopwatch.GetElapsedTime(long.Parse(Encoding.ASCII.GetString(m.Payload.Span)));
                if (took > slowest) slowest = took;
            }
            return slowest;
        }).ToArray();
        await Task.WhenAll(clients.Select(async (c, i) =>
        {
            for (int k = 0; k < count; k++)
            {
                var r = await c.PublishAsync($"to/{(i + 1) % n}", Encoding.ASCII.GetBytes(Stopwatch.GetTimestamp().ToString()), QoS.AtLeastOnce);
                Assert.Equal(ReasonCode.Success, r.ReasonCode);
            }
        }));
        return (await Task.WhenAll(receive)).Max();
    }
}
