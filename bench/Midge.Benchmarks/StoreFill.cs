using System.Diagnostics;
using System.Globalization;
using System.Text;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Persistence;
using Midge.Protocol;

namespace Midge.Benchmarks;

/// <summary>
/// Writes a persistence file with the records the broker writes (<see cref="SqliteSessionStore"/>): retained messages
/// on <c>r/N</c> and persistent 3.1.1 sessions <c>s-N</c>, each subscribed to <c>q/N</c> at QoS 1 with messages queued,
/// 64-byte payloads. Filling it through MQTT would take minutes on a small machine; what a restart reads is the same.
/// </summary>
internal static class StoreFill
{
    public static int Run(string path, int retained, int sessions, int queued)
    {
        var clock = Stopwatch.StartNew();
        var payload = new byte[64];
        using (var store = SqliteSessionStore.Open(path, new SqliteStoreOptions()))
        {
            for (int i = 0; i < retained; i++)
            {
                store.RetainedSet(new StoredMessage("r/" + i.ToString(CultureInfo.InvariantCulture), payload, QoS.AtLeastOnce, Retain: true));
                if (i % 100_000 == 99_999) store.FlushAsync().AsTask().GetAwaiter().GetResult();
            }
            for (int s = 0; s < sessions; s++)
            {
                string id = "s-" + s.ToString(CultureInfo.InvariantCulture);
                string filter = "q/" + s.ToString(CultureInfo.InvariantCulture);
                var messages = new List<QueuedMessage>(queued);
                for (int m = 1; m <= queued; m++)
                {
                    messages.Add(new QueuedMessage(m, new StoredMessage(filter, payload, QoS.AtLeastOnce, Retain: false), QoS.AtLeastOnce, false, null));
                }
                store.SessionSaved(new SessionState(id)
                {
                    ExpiryInterval = uint.MaxValue,
                    DisconnectedAt = DateTimeOffset.UtcNow,
                    Subscriptions = [new Subscription(filter, QoS.AtLeastOnce)],
                    Queued = messages,
                });
                if (s % 10_000 == 9_999) store.FlushAsync().AsTask().GetAwaiter().GetResult();
            }
            store.FlushAsync().AsTask().GetAwaiter().GetResult();
        }
        long bytes = new FileInfo(path).Length;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{path}: {retained} retained, {sessions} sessions x {queued} queued; {bytes} bytes; written in {clock.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }
}
