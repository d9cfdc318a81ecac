using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Core.Routing;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Routing;

/// <summary>The router's seams: destinations besides local sessions; a routing that routes again on its thread.</summary>
public class RouterTests
{
    private sealed class RecordingDestination : IRouteDestination
    {
        public readonly List<Message> Received = [];

        public void Deliver(Message message)
        {
            lock (Received) Received.Add(message);
        }
    }

    [Fact]
    public void AddedDestination_GetsEveryRoutedMessageOnce_AndNoneAfterRemoval()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("a/#", QoS.AtLeastOnce), ("a/b", QoS.AtMostOnce)));
        subOut.Take();
        var destination = new RecordingDestination();
        h.Broker.Router.AddDestination(destination);
        h.Broker.Router.AddDestination(destination); // once, however often added

        var (pub, _, _) = h.Connect("p");
        pub.Handle(ChannelHarness.Publish("a/b", "matched twice", QoS.AtLeastOnce, id: 1));
        pub.Handle(ChannelHarness.Publish("nobody/here", "matched by none"));
        pub.Handle(ChannelHarness.Publish("a/r", "kept", retain: true));
        h.Broker.PublishFromBroker("$SYS/x", "v"u8.ToArray());

        Assert.Equal(["a/b", "nobody/here", "a/r", "$SYS/x"], destination.Received.Select(m => m.Topic));
        var first = destination.Received[0];
        Assert.Equal(("p", QoS.AtLeastOnce, "matched twice"), (first.OriginClientId, first.QoS,
            System.Text.Encoding.UTF8.GetString(first.Payload.Span)));
        Assert.Same(first, subOut.Publishes()[0].Message); // the very message the subscriber got

        Assert.True(h.Broker.Router.RemoveDestination(destination));
        Assert.False(h.Broker.Router.RemoveDestination(destination));
        pub.Handle(ChannelHarness.Publish("a/b", "after removal"));
        Assert.Equal(4, destination.Received.Count);
        Assert.Single(subOut.Publishes()); // local subscribers go on as before
    }

    [Fact]
    public void Destinations_AreCalledInTheOrderAdded_AfterLocalSubscribers()
    {
        var h = new ChannelHarness();
        var (sub, subOut, _) = h.Connect("s");
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtMostOnce)));
        subOut.Take();
        var order = new List<string>();
        h.Broker.Router.AddDestination(new CallbackDestination(_ => order.Add("first, local: " + subOut.Publishes().Count)));
        h.Broker.Router.AddDestination(new CallbackDestination(_ => order.Add("second")));
        h.Broker.PublishFromBroker("t", "x"u8.ToArray());
        Assert.Equal(["first, local: 1", "second"], order);
    }

    private sealed class CallbackDestination(Action<Message> onMessage) : IRouteDestination
    {
        public void Deliver(Message message) => onMessage(message);
    }

    /// <summary>A logger that publishes its warnings, as log_dest topic does.</summary>
    private sealed class PublishingLoggerFactory : ILoggerFactory, ILogger
    {
        public Broker? Broker;

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) Broker?.PublishFromBroker("$SYS/broker/log/W", System.Text.Encoding.UTF8.GetBytes(formatter(state, exception)));
        }
    }

    [Fact]
    public void A_Delivery_ThatRoutesAnotherMessage_OnTheSameThread_LeavesTheFirstRoutingWhole()
    {
        var logs = new PublishingLoggerFactory();
        var time = new ManualTime();
        var broker = new Broker(new BrokerConfig { MaxQueuedMessages = 1 }, logs, time);
        logs.Broker = broker;
        var listener = new ListenerConfig { AllowAnonymous = true };
        var watcherOut = new RecordingOutput();
        var watcher = new MqttChannel(broker, listener, watcherOut, "127.0.0.1:5000");
        watcher.Handle(new ConnectPacket { ClientId = "w", ProtocolVersion = ProtocolVersion.V500, ProtocolName = "MQTT", CleanStart = true });
        watcher.Handle(ChannelHarness.Subscribe(1, ("$SYS/broker/log/#", QoS.AtMostOnce)));
        foreach (var id in new[] { "a", "b" })
        {
            var channel = new MqttChannel(broker, listener, new RecordingOutput(), "127.0.0.1:5000");
            channel.Handle(new ConnectPacket { ClientId = id, ProtocolVersion = ProtocolVersion.V311, ProtocolName = "MQTT", CleanStart = false });
            channel.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtLeastOnce)));
            channel.OnConnectionClosed(); // away: messages queue, one at the most
        }
        watcherOut.Take();
        var message = Message.Create("t", "x"u8.ToArray(), QoS.AtLeastOnce, retain: false, null, "p", broker.NowMs);
        Assert.Equal(2, broker.Publish(message));
        // The queues are full: each drop logs a warning, which is published (routed) from inside this routing.
        Assert.Equal(2, broker.Publish(message));

        Assert.True(broker.Clients.TryGet("a", out var a));
        Assert.True(broker.Clients.TryGet("b", out var b));
        Assert.Equal((1, 1), (a!.QueuedCount, b!.QueuedCount));
        Assert.Contains(watcherOut.Publishes(), p => p.Topic == "$SYS/broker/log/W" && p.Payload.Contains("dropped"));
    }
}
