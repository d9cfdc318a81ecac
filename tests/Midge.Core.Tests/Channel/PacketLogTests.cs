using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>
/// Mosquitto's per-packet debug lines (PacketLog), every packet type, including what the integration tests cannot
/// make Mosquitto 2.0.11 print (it sends no DISCONNECT, and has no AUTH without a plugin), and the check that keeps
/// them from costing anything with debug off.
/// </summary>
public sealed class PacketLogTests
{
    /// <summary>A logger that takes every level and keeps what it is given.</summary>
    private sealed class RecordingLoggerFactory(bool enabled = true) : ILoggerFactory, ILogger
    {
        public List<string> Lines { get; } = [];

        public ILogger CreateLogger(string categoryName) => this;
        public void AddProvider(ILoggerProvider provider) { }
        public void Dispose() { }
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => enabled;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines) Lines.Add(formatter(state, exception));
        }
    }

    private static (Broker Broker, RecordingLoggerFactory Log) Make(LogTypes types, bool loggerEnabled = true)
    {
        var log = new RecordingLoggerFactory(loggerEnabled);
        return (new Broker(new BrokerConfig { LogTypes = types }, log), log);
    }

    [Fact]
    public void Enabled_only_with_log_type_debug_and_a_logger_that_takes_debug()
    {
        Assert.True(PacketLog.IsEnabled(Make(LogTypes.All).Broker));
        Assert.True(PacketLog.IsEnabled(Make(LogTypes.Debug).Broker));
        // The logger would take debug lines (subscribe lines are debug too), but log_type has no debug.
        Assert.False(PacketLog.IsEnabled(Make(LogTypes.Default | LogTypes.Subscribe).Broker));
        Assert.False(PacketLog.IsEnabled(Make(LogTypes.All, loggerEnabled: false).Broker));

        var (broker, _) = Make(LogTypes.Default);
        broker.Reload(new BrokerConfig { LogTypes = LogTypes.Debug }); // SIGHUP: at once, for every connection
        Assert.True(PacketLog.IsEnabled(broker));
    }

    [Fact]
    public void Lines_for_every_packet_the_broker_sends()
    {
        var (broker, log) = Make(LogTypes.All);
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, new ConnAckPacket { SessionPresent = true });
        PacketLog.Sending(broker, "127.0.0.1", ProtocolVersion.V311, new ConnAckPacket { ReasonCode = ReasonCode.NotAuthorized });
        PacketLog.Sending(broker, "127.0.0.1", ProtocolVersion.V500, new ConnAckPacket { ReasonCode = ReasonCode.NotAuthorized });
        PacketLog.Sending(broker, "c", ProtocolVersion.V500, new PublishAckPacket(PacketType.PubAck, 7, ReasonCode.NoMatchingSubscribers));
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, new PublishAckPacket(PacketType.PubRec, 8));
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, new PublishAckPacket(PacketType.PubRel, 9));
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, new PublishAckPacket(PacketType.PubComp, 10));
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, new SubAckPacket { PacketId = 1 });
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, new UnsubAckPacket { PacketId = 1 });
        PacketLog.Sending(broker, "c", ProtocolVersion.V311, PingRespPacket.Instance);
        PacketLog.Sending(broker, "c", ProtocolVersion.V500, new DisconnectPacket { ReasonCode = ReasonCode.SessionTakenOver });
        PacketLog.Sending(broker, "c", ProtocolVersion.V500, new AuthPacket
        {
            ReasonCode = ReasonCode.ContinueAuthentication,
            Properties = new MqttProperties { AuthenticationMethod = "SCRAM-SHA-512" },
        });
        var message = Message.Create("a/b", new byte[] { 1, 2, 3 }, QoS.ExactlyOnce, retain: true, null, null, 0);
        PacketLog.SendingPublish(broker, "c", message, new OutgoingPublish { QoS = QoS.AtLeastOnce, PacketId = 3, Dup = true });
        PacketLog.SendingPublish(broker, "c", message, new OutgoingPublish { Retain = true, TopicStart = 2 }); // mount point stripped

        Assert.Equal(
        [
            "Sending CONNACK to c (1, 0)",
            "Sending CONNACK to 127.0.0.1 (0, 5)",
            "Sending CONNACK to 127.0.0.1 (0, 135)",
            "Sending PUBACK to c (m7, rc16)",
            "Sending PUBREC to c (m8, rc0)",
            "Sending PUBREL to c (m9)",
            "Sending PUBCOMP to c (m10)",
            "Sending SUBACK to c",
            "Sending UNSUBACK to c",
            "Sending PINGRESP to c",
            "Sending DISCONNECT to c (rc142)",
            "Sending AUTH to c (rc24, SCRAM-SHA-512)",
            "Sending PUBLISH to c (d1, q1, r0, m3, 'a/b', ... (3 bytes))",
            "Sending PUBLISH to c (d0, q0, r1, m0, 'b', ... (3 bytes))",
        ], log.Lines);
    }

    [Fact]
    public void Lines_for_every_packet_a_client_sends()
    {
        var (broker, log) = Make(LogTypes.Debug);
        PacketLog.Received(broker, "c", new ConnectPacket { ClientId = "c" }); // no line: "New client connected" says it
        PacketLog.Received(broker, "c", new PublishPacket { Topic = "t", Payload = new byte[5], QoS = QoS.ExactlyOnce, Retain = true, PacketId = 4 });
        PacketLog.Received(broker, "c", new PublishAckPacket(PacketType.PubAck, 1));
        PacketLog.Received(broker, "c", new PublishAckPacket(PacketType.PubRec, 2));
        PacketLog.Received(broker, "c", new PublishAckPacket(PacketType.PubRel, 3));
        PacketLog.Received(broker, "c", new PublishAckPacket(PacketType.PubComp, 4, ReasonCode.PacketIdentifierNotFound));
        PacketLog.Received(broker, "c", new SubscribePacket { PacketId = 1 });
        PacketLog.Received(broker, "c", new UnsubscribePacket { PacketId = 1 });
        PacketLog.Received(broker, "c", PingReqPacket.Instance);
        PacketLog.Received(broker, "c", new DisconnectPacket());
        PacketLog.Received(broker, "c", new AuthPacket
        {
            ReasonCode = ReasonCode.ReAuthenticate,
            Properties = new MqttProperties { AuthenticationMethod = "SCRAM-SHA-256" },
        });
        PacketLog.Connected(broker, null);
        PacketLog.Connected(broker, new WillMessage { Topic = "w", Payload = new byte[3], QoS = QoS.AtLeastOnce, Retain = true });

        Assert.Equal(
        [
            "Received PUBLISH from c (d0, q2, r1, m4, 't', ... (5 bytes))",
            "Received PUBACK from c (Mid: 1, RC:0)",
            "Received PUBREC from c (Mid: 2)",
            "Received PUBREL from c (Mid: 3)",
            "Received PUBCOMP from c (Mid: 4, RC:146)",
            "Received SUBSCRIBE from c",
            "Received UNSUBSCRIBE from c",
            "Received PINGREQ from c",
            "Received DISCONNECT from c",
            "Received AUTH from c (rc25, SCRAM-SHA-256)",
            "No will message specified.",
            "Will message specified (3 bytes) (r1, q1).",
            "\tw",
        ], log.Lines);
    }

    [Fact]
    public void Subscribe_filters_are_listed_before_the_broker_decides_on_them()
    {
        var (broker, log) = Make(LogTypes.All);
        var (channel, _) = new ChannelHarnessWith(broker).Connect("c");
        channel.Handle(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new TopicSubscription("a/#", QoS.ExactlyOnce), new TopicSubscription("b", QoS.AtMostOnce)],
        });
        channel.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["a/#"] });

        Assert.Equal(["\ta/# (QoS 2)", "c 2 a/#", "\tb (QoS 0)", "c 0 b", "\ta/#", "c a/#"],
            log.Lines.Where(l => !l.StartsWith("New client", StringComparison.Ordinal)));
    }

    [Fact]
    public void Nothing_is_written_with_debug_off()
    {
        var (broker, log) = Make(LogTypes.Default | LogTypes.Subscribe | LogTypes.Unsubscribe);
        var (channel, _) = new ChannelHarnessWith(broker).Connect("c");
        channel.Handle(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("a", QoS.AtMostOnce)] });
        channel.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["a"] });
        Assert.DoesNotContain(log.Lines, l => l.StartsWith('\t'));
    }

    /// <summary>Connects channels to a given broker (the harness makes its own).</summary>
    private sealed class ChannelHarnessWith(Broker broker)
    {
        public (MqttChannel Channel, RecordingOutput Output) Connect(string clientId)
        {
            var output = new RecordingOutput();
            var channel = new MqttChannel(broker, new ListenerConfig { AllowAnonymous = true }, output, "test");
            channel.Handle(new ConnectPacket { ClientId = clientId });
            Assert.True(channel.IsConnected);
            return (channel, output);
        }
    }
}
