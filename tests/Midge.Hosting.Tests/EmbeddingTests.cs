using System.Collections.Concurrent;
using System.Net.Http;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Midge.Client;
using Midge.Core.Hooks;
using Midge.Hosting;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Hosting.Tests;

/// <summary>The broker inside the test process (docs/embedding.md), driven by Debian's mosquitto clients and the
/// Midge client library.</summary>
public class EmbeddingTests
{
    [Fact]
    public async Task An_embedded_broker_serves_mosquitto_clients_application_code_and_a_hook_that_refuses_a_topic()
    {
        int port = FreePort.Next();
        await using var server = await MidgeServer.StartAsync(o =>
        {
            o.UseConfig($"listener {port} 127.0.0.1\nallow_anonymous true\n");
            o.ConfigureHooks = hooks => hooks.Authorize.Attach((context, _) => ValueTask.FromResult(
                context.Action == AuthorizeAction.Publish && context.Topic.StartsWith("forbidden/", StringComparison.Ordinal)
                    ? HookVerdict.Deny
                    : HookVerdict.Defer));
        });
        var seen = new ConcurrentQueue<string>();
        using var subscription = server.Midge.Subscribe("app/#", m => seen.Enqueue(m.Topic + "=" + Encoding.UTF8.GetString(m.Payload.Span)));
        using var forbidden = server.Midge.Subscribe("forbidden/#", m => seen.Enqueue("forbidden delivered"));

        // A client's message reaches the application's callback.
        var pub = await MosquittoClients.PublishAsync(port, "-t", "app/greeting", "-m", "hello", "-q", "1");
        Assert.Equal(0, pub.ExitCode);
        Assert.True(SpinWait.SpinUntil(() => seen.Contains("app/greeting=hello"), TimeSpan.FromSeconds(5)));

        // The application's message reaches a client.
        using (var sub = await MosquittoClients.SubscribeAsync(port, "%t %p", "-t", "out/#", "-C", "1", "-q", "1"))
        {
            Assert.Equal(1, server.Midge.Publish("out/status", "from the application", QoS.AtLeastOnce));
            var (_, messages) = await sub.WaitAsync();
            Assert.Equal(["out/status from the application"], messages);
        }

        // The hook refuses the topic: an MQTT 5 publisher is told 0x87 and nobody gets the message.
        await using var client = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = port, ProtocolVersion = ProtocolVersion.V500 });
        await client.ConnectAsync();
        var result = await client.PublishAsync("forbidden/plan", "x"u8.ToArray(), QoS.AtLeastOnce);
        Assert.Equal(ReasonCode.NotAuthorized, result.ReasonCode);
        Assert.DoesNotContain("forbidden delivered", seen);
        Assert.Throws<ArgumentException>(() => server.Midge.Publish("bad/#", "x"));
    }

    [Fact]
    public async Task AddMidge_puts_the_broker_next_to_an_applications_HTTP_endpoints()
    {
        int mqttPort = FreePort.Next(), httpPort = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        // Kestrel serves only the endpoints given in code once any is (the MQTT listeners are): the HTTP one too.
        builder.WebHost.ConfigureKestrel(o => o.Listen(System.Net.IPAddress.Loopback, httpPort));
        builder.Services.AddMidge(o => o.UseConfig($"listener {mqttPort} 127.0.0.1\nallow_anonymous true\n"));
        await using var app = builder.Build();
        app.MapPost("/announce/{text}", (string text, MidgeBroker midge) => midge.Publish("announcements", text, QoS.AtLeastOnce).ToString());
        await app.StartAsync();

        using var sub = await MosquittoClients.SubscribeAsync(mqttPort, "%t %p", "-t", "announcements", "-C", "1", "-q", "1");
        using var http = new HttpClient();
        var response = await http.PostAsync($"http://127.0.0.1:{httpPort}/announce/lunch", null);
        Assert.Equal("1", await response.Content.ReadAsStringAsync());
        var (_, messages) = await sub.WaitAsync();
        Assert.Equal(["announcements lunch"], messages);
        await app.StopAsync();
    }

    [Fact]
    public async Task A_WebSocket_listener_in_an_application_serves_MQTT_and_never_hands_its_requests_to_the_application()
    {
        int wsPort = FreePort.Next(), httpPort = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(o => o.Listen(System.Net.IPAddress.Loopback, httpPort));
        builder.Services.AddMidge(o => o.UseConfig($"listener {wsPort} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"));
        await using var app = builder.Build();
        app.MapGet("/{**path}", () => "application");
        await app.StartAsync();

        using var http = new HttpClient();
        Assert.Equal("application", await http.GetStringAsync($"http://127.0.0.1:{httpPort}/mqtt"));
        var response = await http.GetAsync($"http://127.0.0.1:{wsPort}/mqtt");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, response.StatusCode);

        using var client = await RawMqttClient.ConnectWebSocketAsync(wsPort);
        await client.SendAsync(RawMqttClient.Connect("embedded-ws"));
        Assert.Equal(0, (await client.ReadAsync(TimeSpan.FromSeconds(5)))!.Body[1]);
        var midge = app.Services.GetRequiredService<MidgeBroker>();
        Assert.True(SpinWait.SpinUntil(() => midge.Broker.ConnectedCount == 1, TimeSpan.FromSeconds(5)));
        await app.StopAsync();
    }

    [Fact]
    public async Task A_bad_configuration_fails_the_start_with_its_line()
    {
        var ex = await Assert.ThrowsAsync<Midge.Config.ConfigException>(() =>
            MidgeServer.StartAsync(o => o.UseConfig("listener 1883\nno_such_option 1\n")));
        Assert.Contains("<embedded>:2:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no_such_option", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>docs/embedding.md's example, as written there, against Debian's mosquitto clients.</summary>
    [Fact]
    public async Task The_documented_example_runs()
    {
        int port = FreePort.Next();
        var log = new StringWriter();
        using var stop = new CancellationTokenSource();
        var running = Midge.Examples.EmbeddedExample.RunAsync(port, TextWriter.Synchronized(log), stop.Token);
        Assert.True(SpinWait.SpinUntil(() => log.ToString().Contains("listening", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));

        Assert.Equal(0, (await MosquittoClients.PublishAsync(port, "-t", "sensors/kitchen", "-m", "21.5")).ExitCode);
        Assert.Equal(0, (await MosquittoClients.PublishAsync(port, "-t", "admin/shutdown", "-m", "now", "-q", "1", "-V", "mqttv5")).ExitCode);
        using (var sub = await MosquittoClients.SubscribeAsync(port, "%t %p", "-t", "status/app", "-C", "1"))
        {
            var (_, messages) = await sub.WaitAsync();
            Assert.Equal(["status/app started"], messages); // retained, published by application code
        }
        Assert.True(SpinWait.SpinUntil(() => log.ToString().Contains("sensors/kitchen: 21.5", StringComparison.Ordinal), TimeSpan.FromSeconds(5)));
        stop.Cancel();
        await running;
    }
}
