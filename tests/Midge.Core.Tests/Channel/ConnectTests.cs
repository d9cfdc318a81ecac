using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

public class ConnectTests
{
    [Fact]
    public void MQTT_3_1_0_1_FirstPacketMustBeConnect()
    {
        var h = new ChannelHarness();
        var (channel, output) = h.Open();
        channel.Handle(PingReqPacket.Instance);
        Assert.True(output.Closed);
        Assert.Empty(output.Take());
    }

    [Fact]
    public void MQTT_3_1_0_2_SecondConnectIsProtocolError()
    {
        var h = new ChannelHarness();
        var (channel, output, connack) = h.Connect("c1");
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        channel.Handle(new ConnectPacket { ClientId = "c1", ProtocolVersion = ProtocolVersion.V500 });
        Assert.True(output.Closed);
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void MQTT_3_2_2_1_CleanStartGivesSessionPresentZero()
    {
        var h = new ChannelHarness();
        var (_, _, connack) = h.Connect("c1", cleanStart: true);
        Assert.False(connack.SessionPresent);
    }

    [Fact]
    public void MQTT_3_2_2_2_ResumedSessionGivesSessionPresentOne()
    {
        var h = new ChannelHarness();
        var (c1, _, first) = h.Connect("c1", ProtocolVersion.V311, cleanStart: false);
        Assert.False(first.SessionPresent);
        c1.Handle(new DisconnectPacket());
        c1.OnConnectionClosed();
        var (_, _, second) = h.Connect("c1", ProtocolVersion.V311, cleanStart: false);
        Assert.True(second.SessionPresent);
    }

    [Fact]
    public void MQTT_3_1_3_8_ZeroLengthIdWithoutCleanSessionIsRejected_V311()
    {
        var h = new ChannelHarness();
        var (_, output, connack) = h.Connect("", ProtocolVersion.V311, cleanStart: false);
        Assert.Equal(ConnectReturnCode.IdentifierRejected, connack.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        Assert.True(output.Closed);
    }

    [Fact]
    public void MQTT_3_1_3_6_ZeroLengthIdIsAssigned_V311()
    {
        var h = new ChannelHarness();
        var (channel, _, connack) = h.Connect("", ProtocolVersion.V311, cleanStart: true);
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        Assert.StartsWith("auto-", channel.ClientId);
    }

    [Fact]
    public void MQTT_3_2_2_16_AssignedClientIdentifierReturned_V5()
    {
        var h = new ChannelHarness();
        var (channel, _, connack) = h.Connect("", ProtocolVersion.V500);
        Assert.Equal(channel.ClientId, connack.Properties?.AssignedClientIdentifier);
        Assert.StartsWith("auto-", channel.ClientId);
    }

    [Fact]
    public void AllowZeroLengthClientIdFalse_Rejects_V5With0x85()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = true, AllowZeroLengthClientId = false });
        var (_, _, connack) = h.Connect("", ProtocolVersion.V500);
        Assert.Equal(ReasonCode.ClientIdentifierNotValid, connack.ReasonCode);
    }

    [Fact]
    public void ZeroLengthClientId_V31_IsRejected()
    {
        var h = new ChannelHarness();
        var (_, _, connack) = h.Connect("", ProtocolVersion.V310);
        Assert.Equal(ReasonCode.ClientIdentifierNotValid, connack.ReasonCode);
    }

    [Fact]
    public void ClientIdPrefixes_RejectOthers()
    {
        var h = new ChannelHarness(new BrokerConfig { ClientIdPrefixes = ["dev-"] });
        Assert.Equal(ReasonCode.Success, h.Connect("dev-1").ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.NotAuthorized, h.Connect("other").ConnAck.ReasonCode);
    }

    [Fact]
    public void AnonymousRefused_WhenListenerDisallows()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = false });
        var (_, output, connack) = h.Connect("c1", ProtocolVersion.V311);
        Assert.Equal(ConnectReturnCode.NotAuthorized, ReasonCodes.ToV3ConnAck(connack.ReasonCode));
        Assert.True(output.Closed);
    }

    [Fact]
    public void MaxKeepalive_V5_ServerKeepAliveReturned()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxKeepalive = 30 });
        var (channel, _, connack) = h.Connect("c1", configure: c => c.KeepAlive = 120);
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        Assert.Equal((ushort)30, connack.Properties?.ServerKeepAlive);
        Assert.Equal(30, channel.KeepAlive);
    }

    [Fact]
    public void MaxKeepalive_V311_TooLargeIsRejected()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxKeepalive = 30 });
        var (_, _, connack) = h.Connect("c1", ProtocolVersion.V311, configure: c => c.KeepAlive = 120);
        Assert.NotEqual(ReasonCode.Success, connack.ReasonCode);
    }

    [Fact]
    public void ConnAck_V5_ReportsCapabilitiesTruthfully()
    {
        var h = new ChannelHarness(new BrokerConfig { RetainAvailable = false, MaxPacketSize = 1000 },
            new ListenerConfig { AllowAnonymous = true, MaxQoS = 1, MaxTopicAlias = 7 });
        var (_, _, connack) = h.Connect("c1");
        var p = connack.Properties!;
        Assert.Equal((ushort)20, p.ReceiveMaximum);
        Assert.Equal((byte)1, p.MaximumQoS);
        Assert.Equal((byte)0, p.RetainAvailable);
        Assert.Equal(1000u, p.MaximumPacketSize);
        Assert.Equal((ushort)7, p.TopicAliasMaximum);
    }

    [Fact]
    public void MQTT_3_1_4_3_TakeoverDisconnectsExistingClientWith0x8E()
    {
        var h = new ChannelHarness();
        var (first, firstOut, _) = h.Connect("same");
        var (_, _, connack) = h.Connect("same", cleanStart: false);
        Assert.True(firstOut.Closed);
        Assert.Equal(ReasonCode.SessionTakenOver, Assert.IsType<DisconnectPacket>(firstOut.FinalPacket).ReasonCode);
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        first.OnConnectionClosed();
        Assert.Equal(1, h.Broker.SessionCount);
    }

    [Fact]
    public void Takeover_InheritsSessionAndSubscriptions()
    {
        var h = new ChannelHarness();
        var (first, _, _) = h.Connect("same", ProtocolVersion.V311, cleanStart: false);
        first.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
        var (_, second, connack) = h.Connect("same", ProtocolVersion.V311, cleanStart: false);
        first.OnConnectionClosed();
        Assert.True(connack.SessionPresent);
        var (pub, _, _) = h.Connect("pub", ProtocolVersion.V311);
        pub.Handle(ChannelHarness.Publish("t", "hello", QoS.AtLeastOnce, id: 1));
        var sent = Assert.Single(second.Publishes());
        Assert.Equal("hello", sent.Payload);
    }

    [Fact]
    public void EnhancedAuthMethod_IsRefusedTruthfully()
    {
        var h = new ChannelHarness();
        var (_, _, connack) = h.Connect("c1", configure: c => c.GetOrCreateProperties().AuthenticationMethod = "SCRAM-SHA-1");
        Assert.Equal(ReasonCode.BadAuthenticationMethod, connack.ReasonCode);
    }

    [Fact]
    public void UnsupportedProtocolVersion_V311Gets0x01()
    {
        var h = new ChannelHarness();
        var (channel, output) = h.Open();
        channel.OnProtocolError(new MqttProtocolException(ReasonCode.UnsupportedProtocolVersion, "level 9", ProtocolVersion.V311) { RawProtocolLevel = 9 });
        var connack = Assert.IsType<ConnAckPacket>(output.FinalPacket);
        Assert.Equal(ConnectReturnCode.UnacceptableProtocolVersion, ReasonCodes.ToV3ConnAck(connack.ReasonCode));
    }

    [Fact]
    public void MQTT_3_1_2_24_KeepAliveTimeoutClosesAfterOneAndAHalfTimes()
    {
        var h = new ChannelHarness();
        var (channel, output, _) = h.Connect("c1", configure: c => c.KeepAlive = 10);
        h.Time.Advance(TimeSpan.FromSeconds(14));
        h.Broker.Tick();
        Assert.False(output.Closed);
        h.Time.Advance(TimeSpan.FromSeconds(2));
        h.Broker.Tick();
        Assert.True(output.Closed);
        Assert.Equal(ReasonCode.KeepAliveTimeout, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
        _ = channel;
    }
}
