using Midge.TestKit;
using static Midge.Integration.Tests.MqttJs;

namespace Midge.Integration.Tests;

/// <summary>SCRAM-SHA-512 enhanced authentication with MQTT.js against a password file made by midge passwd.</summary>
public sealed class MqttJsScramTests
{
    [Theory]
    [InlineData("s3cret", 0x00, true)]
    [InlineData("wrong", 0x86, false)]
    public async Task Scram_sha512_over_a_socket(string password, int reason, bool verified)
    {
        string dir = MidgeProcess.NewDirectory();
        string file = Path.Combine(dir, "passwd");
        var made = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), "passwd", "-b", "-c", file, "alice", "s3cret");
        Assert.True(made.ExitCode == 0, made.ToString());
        await using var broker = await MidgeProcess.StartAsync($"password_file {file}");

        var r = await RunAsync("server.mjs", broker.Port, "scram", "alice", password);

        Assert.True(r.GetProperty("reason").ValueKind == System.Text.Json.JsonValueKind.Number, broker.Log);
        Assert.Equal(reason, r.GetProperty("reason").GetInt32());
        Assert.Equal(verified, r.GetProperty("server_verified").GetBoolean());
    }
}
