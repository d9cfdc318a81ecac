using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>max_connections: a client over the limit is told why (MQTT 5: CONNACK 0x89 Server busy).</summary>
public sealed class MaxConnectionsTests
{
    [Theory]
    [InlineData(RawMqttClient.V5, 0x89)]
    [InlineData(RawMqttClient.V311, 3)]
    public async Task OverTheLimit_GetsServerBusy_AndTheFirstClientKeepsWorking(byte version, byte code)
    {
        await using var broker = await MidgeProcess.StartAsync("max_connections 1");
        // The fixture's readiness probe holds the only place until the broker has seen it close.
        RawMqttClient? connected = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(5); connected is null; await Task.Delay(50))
        {
            try
            {
                connected = await RawMqttClient.ConnectMqttAsync(broker.Port, "first", RawMqttClient.V5);
            }
            catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
            {
            }
        }
        using var first = connected;

        using (var second = await RawMqttClient.ConnectTcpAsync(broker.Port))
        {
            await second.SendAsync(RawMqttClient.Connect("second", version));
            var packets = await second.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
            var connack = Assert.Single(packets);
            Assert.Equal(2, connack.Type);
            Assert.Equal(code, connack.Body[1]);
        }

        await first.SendAsync(RawMqttClient.Subscribe(1, "still/here", 0, RawMqttClient.V5));
        Assert.Equal(9, (await first.ReadAsync(TimeSpan.FromSeconds(5)))?.Type);
    }
}
