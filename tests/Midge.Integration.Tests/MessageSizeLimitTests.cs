using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// message_size_limit bounds what a PUBLISH makes the broker buffer: a frame far over it is refused from its
/// header, before its body arrives; one just over it is read and refused for its payload, the connection kept.
/// </summary>
public sealed class MessageSizeLimitTests
{
    [Fact]
    public async Task APublishFarOverTheLimit_IsRefusedFromItsHeader_WithDisconnect0x95()
    {
        await using var broker = await MidgeProcess.StartAsync("message_size_limit 1000");
        using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "huge", RawMqttClient.V5);
        // A QoS 0 PUBLISH announcing 10 MB; only its first bytes follow.
        await client.SendAsync([0x30, 0x80, 0xAD, 0xE2, 0x04, 0x00, 0x01, (byte)'t', 0x00]);
        var packets = await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
        var disconnect = Assert.Single(packets);
        Assert.Equal(14, disconnect.Type);
        Assert.Equal(0x95, disconnect.Body[0]);
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
    }

    [Fact]
    public async Task APublishJustOverTheLimit_GetsPubAck0x95_AndTheConnectionStays()
    {
        await using var broker = await MidgeProcess.StartAsync("message_size_limit 1000");
        using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "over", RawMqttClient.V5);
        var body = new List<byte> { 0x00, 0x01, (byte)'t', 0x00, 0x07, 0x00 }; // topic t, packet id 7, no properties
        body.AddRange(new byte[1001]);
        await client.SendAsync(RawMqttClient.Frame(0x32, body));
        var puback = await client.ReadAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(4, puback?.Type);
        Assert.Equal(0x95, puback!.Body[2]);
        await client.SendAsync(RawMqttClient.Frame(0xC0, []));
        Assert.Equal(13, (await client.ReadAsync(TimeSpan.FromSeconds(5)))?.Type); // PINGRESP: still connected
    }
}
