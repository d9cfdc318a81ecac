using System.Collections.Concurrent;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>A subscriber that records every message it gets ("topic payload").</summary>
internal sealed class Collector : IAsyncDisposable
{
    private readonly MqttClient _client;
    private readonly Task _loop;
    public readonly ConcurrentQueue<string> Messages = new();

    private Collector(MqttClient client)
    {
        _client = client;
        _loop = Task.Run(async () =>
        {
            await foreach (var m in client.Messages) Messages.Enqueue($"{m.Topic} {Encoding.UTF8.GetString(m.Payload.Span)}");
        });
    }

    public static async Task<Collector> StartAsync(int port, QoS qos, params string[] filters)
    {
        var client = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = port, ClientId = "c-" + Guid.NewGuid().ToString("N")[..8] });
        await client.ConnectAsync();
        await client.SubscribeAsync(filters.Select(f => new TopicSubscription(f, qos)));
        return new Collector(client);
    }

    public async Task<bool> WaitForAsync(Func<string[], bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (done([.. Messages])) return true;
            await Task.Delay(50);
        }
        return done([.. Messages]);
    }

    public Task<bool> WaitForAsync(string message, TimeSpan timeout) => WaitForAsync(m => m.Contains(message), timeout);

    public int Count(string message) => Messages.Count(m => m == message);

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        await _loop;
    }
}

/// <summary>mosquitto restartable on one port, with persistence, for a remote that goes away and comes back.</summary>
internal sealed class RestartableMosquitto : IAsyncDisposable
{
    private readonly string _dir = MidgeProcess.NewDirectory();
    private PeerProcess? _process;
    public int Port { get; } = FreePort.Next();

    public async Task StartAsync()
    {
        string conf = Path.Combine(_dir, "mosquitto.conf");
        await File.WriteAllTextAsync(conf, $"listener {Port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {_dir}/\nautosave_interval 1\n");
        _process = PeerProcess.Start(MosquittoBroker.Executable, ["-c", conf], _dir);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline && !await FreePort.AcceptsAsync(Port)) await Task.Delay(50);
    }

    public async Task StopAsync()
    {
        if (_process is null) return;
        _process.Signal(Signals.SIGTERM);
        await _process.WaitAsync(TimeSpan.FromSeconds(5));
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>What the bridge tests share: configuration lines, publishing, waiting on logs.</summary>
internal static class BridgeSupport
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>A bridge named <c>up</c> to <paramref name="remotePort"/>, retrying every second.</summary>
    public static string[] Lines(int remotePort, string version, params string[] topics) =>
    [
        "connection up",
        $"address 127.0.0.1:{remotePort}",
        $"bridge_protocol_version {version}",
        "restart_timeout 1",
        .. topics.Select(t => "topic " + t),
    ];

    /// <summary>mosquitto_pub: one message, acknowledged (QoS 1/2) before it returns.</summary>
    public static async Task PublishAsync(int port, string topic, string payload, int qos)
    {
        var sent = await MosquittoClients.PublishAsync(port, "-t", topic, "-m", payload, "-q", qos.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, sent.ExitCode);
    }

    /// <summary>How many times <paramref name="text"/> occurs in <paramref name="log"/>.</summary>
    public static int Occurrences(string log, string text) => log.Split(text).Length - 1;

    public static async Task<bool> WaitUntilAsync(Func<bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (done()) return true;
            await Task.Delay(50);
        }
        return done();
    }

    /// <summary>Waits until <paramref name="text"/> occurs <paramref name="times"/> times in the broker's log.</summary>
    public static Task<bool> WaitForLogAsync(MidgeProcess broker, string text, int times, TimeSpan? timeout = null) =>
        WaitUntilAsync(() => Occurrences(broker.Log, text) >= times, timeout ?? Patience);

    /// <summary>kill -9: nothing is flushed or closed on the way out.</summary>
    public static async Task KillAsync(MidgeProcess broker)
    {
        Assert.True(broker.Signal(Signals.SIGKILL));
        Assert.True(await WaitUntilAsync(() => broker.HasExited, Patience));
    }
}
