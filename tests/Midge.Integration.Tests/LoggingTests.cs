using System.Text.RegularExpressions;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>Mosquitto's logging options as a user sets them in mosquitto.conf.</summary>
public sealed class LoggingTests
{
    [Fact]
    public async Task LogTimestampFormat_AndLogDestFile_AreHonoured()
    {
        string file = Path.Combine(MidgeProcess.NewDirectory(), "midge.log");
        await using (var broker = await MidgeProcess.StartAsync("log_timestamp_format %Y-%m-%dT%H:%M:%S", $"log_dest file {file}"))
        {
            await RawMqttClient.AssertRoundTripAsync(broker.Port);
        }
        var lines = File.ReadAllLines(file);
        Assert.Contains(lines, l => l.Contains("New client connected from 127.0.0.1", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Matches(new Regex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}: "), l));
    }

    [Fact]
    public async Task LogTimestampFalse_PrintsBareMessages()
    {
        string file = Path.Combine(MidgeProcess.NewDirectory(), "midge.log");
        await using (var broker = await MidgeProcess.StartAsync("log_timestamp false", $"log_dest file {file}"))
        {
            await RawMqttClient.AssertRoundTripAsync(broker.Port);
        }
        Assert.Contains(File.ReadAllLines(file), l => l.StartsWith("New client connected from 127.0.0.1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LogFormatJson_WritesOneObjectPerLine_WithTheConnectFields()
    {
        string file = Path.Combine(MidgeProcess.NewDirectory(), "midge.log");
        await using (var broker = await MidgeProcess.StartAsync("log_format json", $"log_dest file {file}"))
        {
            using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "json-client\n");
            await RawMqttClient.AssertRoundTripAsync(broker.Port);
        }
        var lines = File.ReadAllLines(file);
        Assert.NotEmpty(lines);
        var objects = lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(objects, o =>
        {
            Assert.Equal(System.Text.Json.JsonValueKind.String, o.GetProperty("time").ValueKind);
            Assert.NotEmpty(o.GetProperty("level").GetString()!);
            Assert.NotEmpty(o.GetProperty("message").GetString()!);
        });
        var connected = Assert.Single(objects, o => o.GetProperty("message").GetString()!.StartsWith("New client connected", StringComparison.Ordinal)
            && o.GetProperty("message").GetString()!.Contains("json-client", StringComparison.Ordinal));
        Assert.Equal("info", connected.GetProperty("level").GetString());
        Assert.Equal("json-client\n", connected.GetProperty("fields").GetProperty("ClientId").GetString());
    }

    [Fact]
    public async Task AClientIdWithANewline_CannotForgeALogLine()
    {
        string file = Path.Combine(MidgeProcess.NewDirectory(), "midge.log");
        const string Forged = "New client connected from 10.9.8.7:1 as admin (p2, c1, k60).";
        await using (var broker = await MidgeProcess.StartAsync("log_timestamp false", $"log_dest file {file}"))
        {
            using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "x\n" + Forged + "\u001b[2J");
            await RawMqttClient.AssertRoundTripAsync(broker.Port);
        }
        var lines = File.ReadAllLines(file);
        Assert.DoesNotContain(lines, l => l.StartsWith(Forged, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("as x\\n" + Forged + "\\x1B[2J", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains('\u001b'));
    }
}
