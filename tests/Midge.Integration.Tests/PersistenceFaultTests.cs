using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Midge.Client;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The fault test of persistence: a QoS 1 and a QoS 2 publisher and a persistent subscriber (all with persistent
/// sessions, reconnecting by themselves) while the broker is killed with <c>kill -9</c> at random moments, 20 times,
/// and started again on the same store. Every message a publisher got acknowledged arrives; QoS 2 exactly once; each
/// publisher's messages in the order it sent them (QoS 1 may repeat a message it sent again, never reorder).
/// </summary>
public sealed class PersistenceFaultTests : IDisposable
{
    private const int Kills = 20;
    private readonly string _data = MidgeProcess.NewDirectory();

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Every_acknowledged_message_survives_20_kill_9s_and_QoS_2_arrives_exactly_once_in_order()
    {
        int port = FreePort.Next();
        string conf = Path.Combine(_data, "midge.conf");
        await File.WriteAllLinesAsync(conf, [.. MidgeProcess.BaseConfig(port), "persistence true", $"persistence_location {_data}/",
            "max_queued_messages 100000", "max_inflight_messages 100"]);
        var random = new Random(1234);
        var broker = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);

        MqttClient Client(string id, ProtocolVersion version) => new(new MqttClientOptions
        {
            Host = "127.0.0.1",
            Port = port,
            ClientId = id,
            ProtocolVersion = version,
            CleanStart = false,
            SessionExpiryInterval = version == ProtocolVersion.V500 ? 3600 : null,
            KeepAlive = TimeSpan.FromSeconds(5),
            ConnectTimeout = TimeSpan.FromSeconds(2),
            Reconnect = new ReconnectPolicy { Enabled = true, InitialDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(200) },
        });
        await using var subscriber = Client("fault-sub", ProtocolVersion.V500);
        await subscriber.ConnectAsync();
        await subscriber.SubscribeAsync("fault/#", QoS.ExactlyOnce);
        var received = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            await foreach (var m in subscriber.ReadMessagesAsync(stop.Token)) received.Enqueue(m.Topic + " " + Encoding.ASCII.GetString(m.Payload.Span));
        });

        await using var q1 = Client("fault-q1", ProtocolVersion.V311);
        await using var q2 = Client("fault-q2", ProtocolVersion.V500);
        await q1.ConnectAsync();
        await q2.ConnectAsync();
        var acked1 = new ConcurrentBag<int>();
        var acked2 = new ConcurrentBag<int>();
        bool publishing = true;
        async Task<int> Publish(MqttClient client, QoS qos, ConcurrentBag<int> acked)
        {
            int n = 0;
            var window = new List<Task>();
            while (Volatile.Read(ref publishing))
            {
                int number = ++n;
                var sent = client.PublishAsync(qos == QoS.AtLeastOnce ? "fault/q1" : "fault/q2",
                    Encoding.ASCII.GetBytes(number.ToString(CultureInfo.InvariantCulture)), qos).AsTask();
                window.Add(sent.ContinueWith(t => { if (t.IsCompletedSuccessfully) acked.Add(number); }, TaskScheduler.Default));
                if (window.Count >= 16)
                {
                    await window[0];
                    window.RemoveAt(0);
                }
            }
            await Task.WhenAll(window).WaitAsync(TimeSpan.FromSeconds(60)); // the rest goes once the broker is back
            return n;
        }
        var publisher1 = Task.Run(() => Publish(q1, QoS.AtLeastOnce, acked1));
        var publisher2 = Task.Run(() => Publish(q2, QoS.ExactlyOnce, acked2));

        for (int kill = 0; kill < Kills; kill++)
        {
            await Task.Delay(random.Next(100, 500));
            Assert.True(broker.Signal(Signals.SIGKILL));
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!broker.HasExited && DateTime.UtcNow < deadline) await Task.Delay(5);
            await broker.DisposeAsync();
            broker = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);
        }
        Volatile.Write(ref publishing, false);
        int sent1 = await publisher1, sent2 = await publisher2;
        await using (broker)
        {
            // Everything acknowledged (by now every message sent was) reaches the subscriber.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !AllArrived(received, sent1, sent2)) await Task.Delay(50);
            stop.Cancel();
        }

        Assert.Equal(sent1, acked1.Count);
        Assert.Equal(sent2, acked2.Count);
        Assert.True(sent1 > 100 && sent2 > 100, $"only {sent1} and {sent2} messages were sent");
        var got1 = Numbers(received, "fault/q1");
        var got2 = Numbers(received, "fault/q2");
        Assert.Equal(Enumerable.Range(1, sent2), got2); // QoS 2: each once, in order
        var firsts = got1.Distinct().ToList(); // QoS 1: each at least once, first arrivals in order
        Assert.Equal(Enumerable.Range(1, sent1), firsts);
    }

    private static bool AllArrived(ConcurrentQueue<string> received, int sent1, int sent2) =>
        Numbers(received, "fault/q1").Distinct().Count() >= sent1 && Numbers(received, "fault/q2").Distinct().Count() >= sent2;

    private static List<int> Numbers(ConcurrentQueue<string> received, string topic) =>
        received.Where(r => r.StartsWith(topic + " ", StringComparison.Ordinal))
            .Select(r => int.Parse(r[(topic.Length + 1)..], CultureInfo.InvariantCulture)).ToList();
}
