using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Midge.Tools;

/// <summary>What one <c>midge bench</c> run measured, printed as text or JSON.</summary>
internal sealed class BenchSummary
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public required BenchOptions Options { get; init; }
    public required string ClientIdBase { get; init; }

    public int Connected { get; set; }
    public int ConnectFailed { get; set; }
    public double ConnectSeconds { get; set; }
    public BenchHistogram? ConnectLatency { get; set; }

    public double WindowSeconds { get; set; }
    public long Sent { get; set; }
    public long ReceivedInWindow { get; set; }
    public long Received { get; set; }
    public long? Expected { get; set; }
    public BenchHistogram? Latency { get; set; }

    public long Errors { get; set; }
    public string? FirstError { get; set; }
    public long GeneratorPeakWorkingSet { get; set; }

    public double? BrokerCpuSeconds { get; set; }
    public long? BrokerRssStart { get; set; }
    public long? BrokerRss { get; set; }
    public long? BrokerPeakRss { get; set; }

    private bool IsConn => Options.Scenario == BenchScenario.Conn;
    public double SentPerSecond => WindowSeconds > 0 ? Sent / WindowSeconds : 0;
    public double ReceivedPerSecond => WindowSeconds > 0 ? ReceivedInWindow / WindowSeconds : 0;
    public double ConnectPerSecond => ConnectSeconds > 0 ? Connected / ConnectSeconds : 0;

    /// <summary>Messages the broker handled in the window: deliveries when there are subscribers, else accepted publishes.</summary>
    private long BrokerMessages => Options.HasSubscribers ? ReceivedInWindow : Sent;

    public double? BrokerCpuMicrosPerMessage =>
        BrokerCpuSeconds is { } cpu && !IsConn && BrokerMessages > 0 ? cpu * 1e6 / BrokerMessages : null;

    public double? BrokerCpuMicrosPerConnect =>
        BrokerCpuSeconds is { } cpu && IsConn && Connected > 0 ? cpu * 1e6 / Connected : null;

    public double? BrokerBytesPerConnection =>
        IsConn && BrokerRss is { } r && BrokerRssStart is { } r0 && Connected > 0 ? (double)(r - r0) / Connected : null;

    private static double Micros(long ticks) => ticks * 1e6 / Stopwatch.Frequency;

    private static readonly (string Name, double Percentile)[] Percentiles =
        [("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)];

    public void WriteText(TextWriter w)
    {
        var o = Options;
        w.WriteLine(string.Create(Inv, $"scenario {o.Scenario.ToString().ToLowerInvariant()}: {o.Publishers} publishers, {o.Subscribers} subscribers, QoS {(int)o.QoS}, {o.PayloadSize}-byte payloads, MQTT {ProtocolName(o)}{(o.WebSocket ? " over WebSocket" : "")}"));
        w.WriteLine(string.Create(Inv, $"connect:   {Connected} connected, {ConnectFailed} failed in {ConnectSeconds:F2} s ({ConnectPerSecond:F0}/s){LatencyText(ConnectLatency)}"));
        if (!IsConn)
        {
            w.WriteLine(string.Create(Inv, $"sent:      {Sent} in {WindowSeconds:F2} s ({SentPerSecond:F0} msg/s)"));
            w.WriteLine(string.Create(Inv, $"received:  {ReceivedInWindow} in the window ({ReceivedPerSecond:F0} msg/s); {Received} with the drain{(Expected is { } e ? $", expected {e}" : "")}"));
            w.WriteLine(string.Create(Inv, $"latency:   {(Latency is { Count: > 0 } ? LatencyText(Latency).TrimStart(',', ' ') : "none measured")}"));
        }
        if (BrokerCpuSeconds is { } cpu)
        {
            string per = BrokerCpuMicrosPerMessage is { } m ? $", {m:F2} us/msg" : BrokerCpuMicrosPerConnect is { } c ? $", {c:F1} us/connect" : "";
            w.WriteLine(string.Create(Inv, $"broker:    {cpu:F2} CPU s{per}, RSS {Mib(BrokerRss)} (peak {Mib(BrokerPeakRss)}){(BrokerBytesPerConnection is { } b ? $", {b:F0} bytes/connection" : "")}"));
        }
        w.WriteLine(string.Create(Inv, $"errors:    {Errors}{(FirstError is null ? "" : $" (first: {FirstError})")}"));
        w.WriteLine(string.Create(Inv, $"generator: peak working set {Mib(GeneratorPeakWorkingSet)}"));
    }

    private static string ProtocolName(BenchOptions o) => o.Version switch
    {
        Protocol.ProtocolVersion.V310 => "3.1",
        Protocol.ProtocolVersion.V500 => "5.0",
        _ => "3.1.1",
    };

    private static string Mib(long? bytes) => bytes is { } b ? string.Create(Inv, $"{b / 1048576.0:F1} MiB") : "n/a";

    private static string LatencyText(BenchHistogram? h)
    {
        if (h is not { Count: > 0 }) return "";
        var parts = Percentiles.Select(p => string.Create(Inv, $"{p.Name.Replace('_', '.')} {Micros(h.Percentile(p.Percentile)):F0}"));
        return string.Create(Inv, $", latency us: {string.Join(" ", parts)} max {Micros(h.Max):F0}");
    }

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        var o = Options;
        w.WriteStartObject();
        w.WriteString("scenario", o.Scenario.ToString().ToLowerInvariant());
        w.WriteNumber("protocol", (int)o.Version);
        w.WriteNumber("qos", (int)o.QoS);
        w.WriteNumber("payload_size", o.PayloadSize);
        w.WriteNumber("publishers", o.Publishers);
        w.WriteNumber("subscribers", o.Subscribers);
        w.WriteNumber("offered_rate", o.PerPublisherRate * o.Publishers);
        w.WriteString("rx_time", o.KernelReceiveTime ? "kernel" : "user");
        w.WriteString("transport", o.WebSocket ? "websockets" : "tcp");
        w.WriteNumber("connected", Connected);
        w.WriteNumber("connect_failed", ConnectFailed);
        w.WriteNumber("connect_seconds", Math.Round(ConnectSeconds, 4));
        w.WriteNumber("connect_per_s", Math.Round(ConnectPerSecond, 1));
        WriteLatency(w, "connect_latency_us", ConnectLatency);
        if (!IsConn)
        {
            w.WriteNumber("window_seconds", Math.Round(WindowSeconds, 4));
            w.WriteNumber("sent", Sent);
            w.WriteNumber("received_in_window", ReceivedInWindow);
            w.WriteNumber("received", Received);
            if (Expected is { } e) w.WriteNumber("expected", e);
            else w.WriteNull("expected");
            w.WriteNumber("sent_per_s", Math.Round(SentPerSecond, 1));
            w.WriteNumber("received_per_s", Math.Round(ReceivedPerSecond, 1));
            WriteLatency(w, "latency_us", Latency);
        }
        w.WriteNumber("errors", Errors);
        if (FirstError is not null) w.WriteString("first_error", FirstError);
        w.WriteNumber("generator_peak_working_set_bytes", GeneratorPeakWorkingSet);
        if (BrokerCpuSeconds is { } cpu)
        {
            w.WriteStartObject("broker");
            w.WriteNumber("pid", o.BrokerPid);
            w.WriteNumber("cpu_seconds", Math.Round(cpu, 3));
            WriteNullable(w, "cpu_us_per_msg", BrokerCpuMicrosPerMessage);
            WriteNullable(w, "cpu_us_per_connect", BrokerCpuMicrosPerConnect);
            WriteNullable(w, "rss_start_bytes", BrokerRssStart);
            WriteNullable(w, "rss_bytes", BrokerRss);
            WriteNullable(w, "peak_rss_bytes", BrokerPeakRss);
            WriteNullable(w, "rss_bytes_per_connection", BrokerBytesPerConnection);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.Flush();
        stream.Write("\n"u8);
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v) w.WriteNumber(name, Math.Round(v, 3));
        else w.WriteNull(name);
    }

    private static void WriteLatency(Utf8JsonWriter w, string name, BenchHistogram? h)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", h?.Count ?? 0);
        if (h is { Count: > 0 })
        {
            foreach (var (p, percentile) in Percentiles) w.WriteNumber(p, Math.Round(Micros(h.Percentile(percentile)), 1));
            w.WriteNumber("max", Math.Round(Micros(h.Max), 1));
        }
        w.WriteEndObject();
    }
}
