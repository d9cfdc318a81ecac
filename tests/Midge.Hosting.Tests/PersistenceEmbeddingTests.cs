using Midge.Hosting;
using Midge.Protocol;
using Midge.TestKit;

namespace Midge.Hosting.Tests;

/// <summary><c>persistence true</c> in an embedded broker: the hosting opens the store, and closes it (and its lock)
/// when the host stops, so the next host on the same file gets everything back.</summary>
public class PersistenceEmbeddingTests
{
    [Fact]
    public async Task An_embedded_broker_keeps_its_retained_messages_and_sessions_across_hosts()
    {
        string dir = MidgeProcess.NewDirectory();
        try
        {
            string Config(int port) => $"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\n";
            int port = FreePort.Next();
            await using (var first = await MidgeServer.StartAsync(o => o.UseConfig(Config(port))))
            {
                first.Midge.Publish("state/door", "open", QoS.AtLeastOnce, retain: true);
                using var s = await MosquittoClients.SubscribeAsync(port, "%t", "-c", "-i", "kept", "-q", "1", "-t", "q/#", "-E");
                await s.WaitAsync();
                first.Midge.Publish("q/1", "queued while away", QoS.AtLeastOnce);
            }
            Assert.True(File.Exists(Path.Combine(dir, "mosquitto.db")));

            port = FreePort.Next();
            await using var second = await MidgeServer.StartAsync(o => o.UseConfig(Config(port)));
            // Not RetainedCount: the heartbeat's first $SYS update (retained) may be under way by now.
            Assert.Equal(["state/door"], second.Midge.Broker.GetRetained("state/#").Select(m => m.Topic));
            // The queued message comes with the resumed session, before the SUBACK.
            var sub = await PeerProcess.RunAsync("mosquitto_sub",
                ["-h", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-c", "-i", "kept", "-q", "1",
                 "-t", "q/#", "-C", "1", "-W", "10", "-F", "%t %p"], TimeSpan.FromSeconds(15));
            Assert.Equal(["q/1 queued while away"], sub.Lines);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
