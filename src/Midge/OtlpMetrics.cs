using Midge.Config;
using Midge.Core;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Midge;

/// <summary>
/// <c>otlp_endpoint</c>: exports the broker's instruments (meter <c>Midge</c>, <see cref="BrokerMetrics"/>) to an
/// OpenTelemetry collector every <c>otlp_interval</c> seconds, over OTLP/HTTP (protobuf) or gRPC, as the
/// <c>service.name</c> <c>midge</c>. The same observable instruments the Prometheus text reads: nothing is recorded on
/// the message path, each export reads them once.
/// </summary>
internal static class OtlpMetrics
{
    /// <summary>The OTLP signal path for metrics (OTLP/HTTP), added to an endpoint given without a path.</summary>
    private const string MetricsPath = "/v1/metrics";

    /// <summary>Starts the export when the configuration asks for it; null otherwise.</summary>
    public static MeterProvider? Start(BrokerConfig config, string version)
    {
        if (config.OtlpEndpoint is not { } endpoint) return null;
        return Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.AddService("midge", serviceVersion: version))
            .AddMeter(BrokerMetrics.MeterName)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Protocol = config.OtlpProtocol == OtlpProtocol.Grpc ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                exporter.Endpoint = SignalEndpoint(endpoint, config.OtlpProtocol);
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = config.OtlpIntervalSeconds * 1000;
            })
            .Build();
    }

    /// <summary>Sends a last export, waiting at most a second for a collector that does not answer, so that the stop is
    /// not held up.</summary>
    public static void Stop(MeterProvider? provider) => provider?.Shutdown(1000);

    /// <summary>
    /// The URL the exporter posts to: for OTLP/HTTP an endpoint without a path gets <c>/v1/metrics</c> (as
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> does), one with a path is used as given; gRPC takes the endpoint as it is.
    /// </summary>
    internal static Uri SignalEndpoint(Uri endpoint, OtlpProtocol protocol) =>
        protocol == OtlpProtocol.HttpProtobuf && endpoint.AbsolutePath is "/" or "" ? new Uri(endpoint, MetricsPath) : endpoint;
}
