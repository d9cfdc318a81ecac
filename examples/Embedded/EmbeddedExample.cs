using System.Text;
using Midge.Core.Hooks;
using Midge.Hosting;
using Midge.Protocol;

namespace Midge.Examples;

/// <summary>The example of docs/embedding.md: a broker inside an application, with a hook that refuses a topic, a
/// subscriber callback, and a publish from application code.</summary>
public static class EmbeddedExample
{
    /// <summary>Starts the broker on <paramref name="port"/> and runs until <paramref name="stop"/> fires.</summary>
    public static async Task RunAsync(int port, TextWriter log, CancellationToken stop)
    {
        await using var server = await MidgeServer.StartAsync(options =>
        {
            // The same grammar as mosquitto.conf; UseConfigFile("/etc/midge/midge.conf") reads a file instead.
            options.UseConfig($"""
                listener {port} 127.0.0.1
                allow_anonymous true
                """);
            // Nobody may publish under admin/: MQTT 5 publishers get PUBACK 0x87, and no subscriber sees the message.
            options.ConfigureHooks = hooks => hooks.Authorize.Attach((request, _) => ValueTask.FromResult(
                request.Action == AuthorizeAction.Publish && request.Topic.StartsWith("admin/", StringComparison.Ordinal)
                    ? HookVerdict.Deny
                    : HookVerdict.Defer));
        });

        // Every message published under sensors/, by any client, reaches this callback.
        using var readings = server.Midge.Subscribe("sensors/#", message =>
            log.WriteLine($"{message.Topic}: {Encoding.UTF8.GetString(message.Payload.Span)}"));

        // Application code publishes like any client; this one is retained for subscribers that come later.
        server.Midge.Publish("status/app", "started", QoS.AtLeastOnce, retain: true);
        log.WriteLine($"broker listening on 127.0.0.1:{port}");

        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException)
        {
        }
        server.Midge.Publish("status/app", "stopping", QoS.AtLeastOnce, retain: true);
    }

    public static async Task Main(string[] args)
    {
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        await RunAsync(args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 1883, Console.Out, stop.Token);
    }
}
