using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Midge.Transport.Http;

/// <summary>
/// Prometheus's text format (0.0.4) from the broker's <see cref="System.Diagnostics.Metrics"/> instruments
/// (<see cref="Core.BrokerMetrics"/>): each scrape starts a <see cref="MeterListener"/> on that broker's meter, collects
/// the observable instruments once, and writes them. <c>midge.publish.received</c> (a counter) becomes
/// <c>midge_publish_received_total</c>; tags become labels.
/// </summary>
internal static class PrometheusText
{
    public static byte[] Write(Core.BrokerMetrics? metrics)
    {
        var samples = new List<(Instrument Instrument, long Value, KeyValuePair<string, object?>[] Tags)>();
        if (metrics is not null)
        {
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, metrics.Meter)) l.EnableMeasurementEvents(instrument);
            };
            listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => samples.Add((instrument, value, tags.ToArray())));
            listener.Start();
            listener.RecordObservableInstruments();
        }
        var text = new StringBuilder(4096);
        Instrument? current = null;
        string name = "";
        foreach (var (instrument, value, tags) in samples)
        {
            if (!ReferenceEquals(instrument, current))
            {
                current = instrument;
                bool counter = instrument is ObservableCounter<long>;
                name = instrument.Name.Replace('.', '_') + (counter ? "_total" : "");
                text.Append("# HELP ").Append(name).Append(' ').Append(instrument.Description).Append('\n');
                text.Append("# TYPE ").Append(name).Append(counter ? " counter\n" : " gauge\n");
            }
            text.Append(name);
            if (tags.Length > 0)
            {
                text.Append('{');
                for (int i = 0; i < tags.Length; i++)
                {
                    if (i > 0) text.Append(',');
                    text.Append(tags[i].Key).Append("=\"").Append(Escape(Convert.ToString(tags[i].Value, CultureInfo.InvariantCulture))).Append('"');
                }
                text.Append('}');
            }
            text.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static string Escape(string? value) =>
        (value ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal);
}
