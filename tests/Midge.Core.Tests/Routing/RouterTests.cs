using Midge.Config;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Core.Routing;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Routing;

/// <summary>The router's seam: destinations besides local sessions.</summary>
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
}
