using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>
/// Midge as the remote end of another broker's bridge: the bridge bit in CONNECT's protocol level (Mosquitto's
/// <c>try_private</c>, 0x83/0x84) makes the connection a bridge, which is never sent its own messages back and gets
/// RETAIN as published; an MQTT 5 bridge gets the same through No Local and Retain As Published. The bit changes
/// what the client is sent, never what it may do (the ACL applies).
/// </summary>
public sealed class BridgeRemoteTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("midge-bridge-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(ProtocolVersion.V311)]
    [InlineData(ProtocolVersion.V500)]
    public void TheBridgeBit_DoesNotBypassTheAcl(ProtocolVersion version)
    {
        // Any client can set the bit; Mosquitto exempts only the bridges it runs itself from the ACL.
        string acl = Path.Combine(_dir, "acl");
        File.WriteAllText(acl, "topic readwrite shared/#\npattern write $SYS/broker/connection/%c/state\n");
        var listener = new ListenerConfig { AllowAnonymous = true, AclFile = acl };
        var h = new ChannelHarness(new BrokerConfig { Listeners = [listener], AclFile = acl }, listener);
        var (watcher, watcherOut, _) = h.Connect("watcher");
        watcher.Handle(ChannelHarness.Subscribe(1, ("secret/#", QoS.AtLeastOnce), ("shared/#", QoS.AtLeastOnce)));
        watcherOut.Take();

        var (bridge, bridgeOut, connack) = h.Connect("edge.bridge", version, configure: c =>
        {
            c.IsBridge = true;
            c.Will = new WillMessage { Topic = "$SYS/broker/connection/edge.bridge/state", Payload = "0"u8.ToArray(), QoS = QoS.AtLeastOnce, Retain = true };
        });
        Assert.Equal(ReasonCode.Success, connack.ReasonCode); // its will topic is one the ACL lets it write
        bridge.Handle(ChannelHarness.Subscribe(1, ("secret/#", QoS.AtLeastOnce), ("shared/#", QoS.AtLeastOnce)));
        var suback = Assert.IsType<SubAckPacket>(Assert.Single(bridgeOut.Take()));
        Assert.NotEqual(ReasonCode.GrantedQoS1, suback.ReasonCodes[0]);
        Assert.Equal(ReasonCode.GrantedQoS1, suback.ReasonCodes[1]);

        bridge.Handle(ChannelHarness.Publish("secret/x", "no", QoS.AtLeastOnce, id: 1));
        bridge.Handle(ChannelHarness.Publish("shared/x", "yes", QoS.AtLeastOnce, id: 2));
        bridgeOut.Take();
        Assert.Equal(["shared/x"], watcherOut.Publishes().Select(p => p.Topic));
    }
}
