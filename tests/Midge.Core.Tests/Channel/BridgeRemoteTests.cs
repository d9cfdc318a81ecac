using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Channel;
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

    private static Action<ConnectPacket> Bridge(bool bit) => c =>
    {
        c.IsBridge = bit;
        c.CleanStart = false; // a Mosquitto bridge's default (cleansession false)
    };

    /// <summary>A bridge with "topic # both 1", a local subscriber to everything and a local publisher.</summary>
    private static (ChannelHarness H, MqttChannel Bridge, RecordingOutput BridgeOut, RecordingOutput SubOut, MqttChannel Pub) Setup(
        ProtocolVersion version, bool bridgeBit, bool noLocal = false, bool retainAsPublished = false)
    {
        var h = new ChannelHarness();
        var (bridge, bridgeOut, connack) = h.Connect("edge.bridge", version, configure: Bridge(bridgeBit));
        Assert.Equal(ReasonCode.Success, connack.ReasonCode);
        bridge.Handle(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new TopicSubscription("#", QoS.AtLeastOnce) { NoLocal = noLocal, RetainAsPublished = retainAsPublished }],
        });
        bridgeOut.Take();
        var (sub, subOut, _) = h.Connect("local-sub");
        sub.Handle(ChannelHarness.Subscribe(1, ("#", QoS.AtLeastOnce)));
        subOut.Take();
        var (pub, _, _) = h.Connect("local-pub");
        return (h, bridge, bridgeOut, subOut, pub);
    }

    [Theory]
    [InlineData(ProtocolVersion.V310)]
    [InlineData(ProtocolVersion.V311)]
    public void BridgeBit_NoEchoOfItsOwnMessages_AndRetainAsPublished(ProtocolVersion version)
    {
        var (h, bridge, bridgeOut, subOut, pub) = Setup(version, bridgeBit: true);
        Assert.True(h.Broker.Clients.TryGet("edge.bridge", out var session));
        Assert.True(session!.IsBridge);

        // What the bridge brings in reaches local subscribers once, and does not go back out through it.
        bridge.Handle(ChannelHarness.Publish("a/from-edge", "1", QoS.AtLeastOnce, id: 1));
        bridge.Handle(ChannelHarness.Publish("a/retained-from-edge", "2", QoS.AtLeastOnce, retain: true, id: 2));
        Assert.Equal(2, bridgeOut.Take().OfType<PublishAckPacket>().Count());
        Assert.Equal(["a/from-edge", "a/retained-from-edge"], subOut.Publishes().Select(p => p.Topic));

        // What is published here goes out through the bridge once, with its RETAIN flag as published.
        pub.Handle(ChannelHarness.Publish("a/plain", "3", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("a/retained", "4", QoS.AtLeastOnce, retain: true, id: 2));
        var sent = bridgeOut.Publishes();
        Assert.Equal([("a/plain", false), ("a/retained", true)], sent.Select(p => (p.Topic, p.Fields.Retain)));
        // An ordinary subscriber without Retain As Published still gets RETAIN 0 for messages routed live.
        Assert.Equal([false, false], subOut.Publishes().Select(p => p.Fields.Retain));
    }

    [Theory]
    [InlineData(ProtocolVersion.V310)]
    [InlineData(ProtocolVersion.V311)]
    public void WithoutTheBridgeBit_ABridgeIsAnOrdinaryClient(ProtocolVersion version)
    {
        // try_private false: Mosquitto as the remote echoes the bridge's messages back to it too.
        var (h, bridge, bridgeOut, _, pub) = Setup(version, bridgeBit: false);
        Assert.True(h.Broker.Clients.TryGet("edge.bridge", out var session));
        Assert.False(session!.IsBridge);
        bridge.Handle(ChannelHarness.Publish("a/from-edge", "1", QoS.AtLeastOnce, id: 1));
        Assert.Equal("a/from-edge", Assert.Single(bridgeOut.Publishes()).Topic);
        pub.Handle(ChannelHarness.Publish("a/retained", "4", QoS.AtLeastOnce, retain: true, id: 2));
        Assert.False(Assert.Single(bridgeOut.Publishes()).Fields.Retain);
    }

    [Fact]
    public void Mqtt5Bridge_GetsTheSameThroughNoLocalAndRetainAsPublished()
    {
        // Mosquitto's bridge_protocol_version mqttv50 sends level 5 without the bridge bit and subscribes with
        // No Local and Retain As Published (options 0x0c).
        var (h, bridge, bridgeOut, subOut, pub) = Setup(ProtocolVersion.V500, bridgeBit: false, noLocal: true, retainAsPublished: true);
        Assert.True(h.Broker.Clients.TryGet("edge.bridge", out var session));
        Assert.False(session!.IsBridge);
        bridge.Handle(ChannelHarness.Publish("a/from-edge", "1", QoS.AtLeastOnce, retain: true, id: 1));
        Assert.Empty(bridgeOut.Publishes());
        Assert.Single(subOut.Publishes());
        pub.Handle(ChannelHarness.Publish("a/retained", "4", QoS.AtLeastOnce, retain: true, id: 2));
        Assert.True(Assert.Single(bridgeOut.Publishes()).Fields.Retain);
    }

    [Fact]
    public void Mqtt5_WithTheBridgeBit_KeepsTheOptionsItSubscribedWith()
    {
        // As Mosquitto: only a 3.x bridge has its subscriptions changed; an MQTT 5 client says what it wants.
        var (h, bridge, bridgeOut, _, _) = Setup(ProtocolVersion.V500, bridgeBit: true);
        Assert.True(h.Broker.Clients.TryGet("edge.bridge", out var session));
        Assert.False(session!.IsBridge);
        bridge.Handle(ChannelHarness.Publish("a/from-edge", "1", QoS.AtLeastOnce, id: 1));
        Assert.Single(bridgeOut.Publishes());
    }

    [Fact]
    public void TheBridgeFlag_IsKeptWhileAway_AndDecidedAgainOnEachConnection()
    {
        var (h, bridge, _, _, pub) = Setup(ProtocolVersion.V311, bridgeBit: true);
        Assert.True(h.Broker.Clients.TryGet("edge.bridge", out var session));
        bridge.OnConnectionClosed();
        Assert.False(session!.IsOnline);
        Assert.True(session.IsBridge);

        // Queued while the bridge is away: RETAIN as published, as if it were connected.
        pub.Handle(ChannelHarness.Publish("a/retained", "4", QoS.AtLeastOnce, retain: true, id: 1));
        var (_, again, _) = h.Connect("edge.bridge", ProtocolVersion.V311, cleanStart: false, configure: c => c.IsBridge = true);
        Assert.True(Assert.Single(again.Publishes()).Fields.Retain);

        // The same client id without the bit is an ordinary client again: its messages come back to it.
        var (plain, plainOut, _) = h.Connect("edge.bridge", ProtocolVersion.V311, cleanStart: false);
        Assert.True(h.Broker.Clients.TryGet("edge.bridge", out session));
        Assert.False(session!.IsBridge);
        plain.Handle(ChannelHarness.Publish("a/echo", "5", QoS.AtLeastOnce, id: 1));
        // (after a/retained, resent with DUP: the connection before left it unacknowledged)
        Assert.Equal([("a/retained", true), ("a/echo", false)], plainOut.Publishes().Select(p => (p.Topic, p.Fields.Dup)));
    }

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

        // An ACL without a write rule for the state topic refuses the bridge's will, and so its CONNECT.
        File.WriteAllText(acl, "topic readwrite shared/#\n");
        h.Broker.Reload(h.Broker.Config);
        var (_, _, refused) = h.Connect("edge.bridge2", version, configure: c =>
        {
            c.IsBridge = true;
            c.Will = new WillMessage { Topic = "$SYS/broker/connection/edge.bridge2/state", Payload = "0"u8.ToArray(), QoS = QoS.AtLeastOnce, Retain = true };
        });
        Assert.Equal(ReasonCode.NotAuthorized, refused.ReasonCode);
    }

    [Fact]
    public void AnotherBrokersBridge_IsLoggedAsMosquittoLogsIt()
    {
        var log = new RecordingLogger();
        Log.ClientConnected(log, "127.0.0.1:5000", "vm.x", ProtocolVersion.V311, clean: false, 60, null, bridge: true);
        Log.ClientConnected(log, "127.0.0.1:5001", "c", ProtocolVersion.V311, clean: true, 60, "u", bridge: false);
        Assert.Equal(
            ["New bridge connected from 127.0.0.1:5000 as vm.x (p2, c0, k60).", "New client connected from 127.0.0.1:5001 as c (p2, c1, k60, u'u')."],
            log.Lines);
    }

    private sealed class RecordingLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
