using System.Net;
using System.Text;
using Midge.Config;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary><c>otlp_endpoint</c>: the broker's metrics reach an OTLP/HTTP receiver (a bare HTTP listener here, standing in
/// for a collector).</summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task The_broker_posts_its_metrics_as_OTLP_protobuf_to_v1_metrics()
    {
        int port = FreePort.Next();
        using var receiver = new HttpListener();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();
        await using var broker = await MidgeProcess.StartAsync($"otlp_endpoint http://127.0.0.1:{port}", "otlp_interval 1");
        await RawMqttClient.AssertRoundTripAsync(broker.Port);

        // Each export is one POST; the first may come before the round trip was counted, so read a few.
        string body = "";
        for (int i = 0; i < 5 && !body.Contains("midge.publish.received", StringComparison.Ordinal); i++)
        {
            var context = await receiver.GetContextAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal("POST", context.Request.HttpMethod);
            Assert.Equal("/v1/metrics", context.Request.Url!.AbsolutePath);
            Assert.Equal("application/x-protobuf", context.Request.ContentType);
            using var content = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(content);
            context.Response.StatusCode = 200;
            context.Response.Close();
            body = Encoding.UTF8.GetString(content.ToArray()); // protobuf keeps names and strings as UTF-8
        }
        Assert.Contains("midge.publish.received", body, StringComparison.Ordinal);
        Assert.Contains("midge.connections", body, StringComparison.Ordinal);
        Assert.Contains("midge.clients.connected", body, StringComparison.Ordinal);
        Assert.Contains("service.name", body, StringComparison.Ordinal);
        Assert.Contains("Exporting metrics with OTLP (http/protobuf) to http://127.0.0.1:" + port, broker.Log, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://collector:4318", OtlpProtocol.HttpProtobuf, "http://collector:4318/v1/metrics")]
    [InlineData("http://collector:4318/", OtlpProtocol.HttpProtobuf, "http://collector:4318/v1/metrics")]
    [InlineData("https://otel.example/ingest/v1/metrics", OtlpProtocol.HttpProtobuf, "https://otel.example/ingest/v1/metrics")]
    [InlineData("http://collector:4317", OtlpProtocol.Grpc, "http://collector:4317/")]
    public void An_endpoint_without_a_path_gets_the_metrics_path_for_OTLP_HTTP(string endpoint, OtlpProtocol protocol, string expected) =>
        Assert.Equal(expected, OtlpMetrics.SignalEndpoint(new Uri(endpoint), protocol).ToString());
}
