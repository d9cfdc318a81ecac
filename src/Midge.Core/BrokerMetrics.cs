using System.Diagnostics.Metrics;

namespace Midge.Core;

/// <summary>
/// The broker's <see cref="System.Diagnostics.Metrics"/> instruments, on the meter <c>Midge</c>: observable counters and
/// gauges that read the same counters as <c>$SYS</c> (<see cref="BrokerStats"/>) and the broker's counts when a
/// listener collects them (the HTTP listener's Prometheus text, <c>dotnet-counters</c>, an OpenTelemetry exporter an
/// embedding application adds). Nothing is recorded on the message path for them: reading is the whole cost.
/// Names follow OpenTelemetry's conventions (dots, units); a Prometheus writer turns them into
/// <c>midge_messages_received_total</c> and the like.
/// </summary>
public sealed class BrokerMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Midge";

    private readonly Meter _meter;

    /// <summary>The meter the instruments are on (one per broker: a listener can tell two brokers in one process apart).</summary>
    public Meter Meter => _meter;

    public BrokerMetrics(Broker broker, string? version = null)
    {
        ArgumentNullException.ThrowIfNull(broker);
        var stats = broker.Stats;
        _meter = new Meter(MeterName, version);
        _meter.CreateObservableCounter("midge.messages.received", () => stats.MessagesReceived, "{packet}", "MQTT packets received");
        _meter.CreateObservableCounter("midge.messages.sent", () => stats.MessagesSent, "{packet}", "MQTT packets sent");
        _meter.CreateObservableCounter("midge.publish.received", () => stats.PublishReceived, "{message}", "PUBLISH packets received");
        _meter.CreateObservableCounter("midge.publish.sent", () => stats.PublishSent, "{message}", "PUBLISH packets sent");
        _meter.CreateObservableCounter("midge.publish.dropped", () => stats.PublishDropped, "{message}",
            "Messages dropped (queues full, limits, refused)");
        _meter.CreateObservableCounter("midge.bytes.received", () => stats.BytesReceived, "By", "Bytes received");
        _meter.CreateObservableCounter("midge.bytes.sent", () => stats.BytesSent, "By", "Bytes sent");
        _meter.CreateObservableCounter("midge.connections", () => stats.ConnectsTotal, "{connection}", "Clients connected since start");
        _meter.CreateObservableCounter("midge.authentication.failures", () => stats.AuthenticationFailures, "{connection}",
            "CONNECTs refused for their credentials");
        _meter.CreateObservableCounter("midge.sessions.expired", () => stats.ClientsExpired, "{session}", "Sessions expired");
        _meter.CreateObservableGauge("midge.clients.connected", () => (long)broker.ConnectedCount, "{client}", "Clients connected now");
        _meter.CreateObservableGauge("midge.clients.maximum", () => stats.ClientsMaximum, "{client}", "Most clients connected at once");
        _meter.CreateObservableGauge("midge.sessions", () => (long)broker.SessionCount, "{session}", "Sessions, connected or not");
        _meter.CreateObservableGauge("midge.subscriptions", () => (long)broker.SubscriptionCount, "{subscription}", "Subscriptions");
        _meter.CreateObservableGauge("midge.retained", () => (long)broker.RetainedCount, "{message}", "Retained messages");
        _meter.CreateObservableGauge("midge.held", () => broker.HeldBytes, "By", "Payload bytes held: queued, in flight, retained");
        _meter.CreateObservableGauge("midge.queued", () => Queued(broker, inflight: false), "{message}", "Messages queued for clients");
        _meter.CreateObservableGauge("midge.inflight", () => Queued(broker, inflight: true), "{message}", "Messages in flight to clients");
        _meter.CreateObservableGauge("midge.shared.waiting", () => (long)broker.SharedWaitingCount, "{message}",
            "Messages waiting in shared subscription groups");
        _meter.CreateObservableGauge("midge.banned", () => (long)broker.Bans.Count, "{ban}", "Bans in force");
        _meter.CreateObservableGauge("midge.listener.connections", () => ByListener(broker), "{connection}", "Connections per listener");
    }

    private static long Queued(Broker broker, bool inflight)
    {
        long total = 0;
        foreach (var session in broker.Clients) total += inflight ? session.InflightCount : session.QueuedCount;
        return total;
    }

    private static IEnumerable<Measurement<long>> ByListener(Broker broker)
    {
        foreach (var (name, count) in broker.ConnectionsByListener())
        {
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("listener", name));
        }
    }

    public void Dispose() => _meter.Dispose();
}
