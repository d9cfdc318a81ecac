using Midge.Config;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Core.Routing;
using Midge.Core.Sessions;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Routing;

/// <summary>The delivery decision (DeliveryRule), and what routing allocates per delivery: nothing.</summary>
public class DeliveryTests
{
    [Fact]
    public void DeliveryRule_DecidesNoLocal_QoS_RetainAsPublished_AndIdentifiers()
    {
        var h = new ChannelHarness();
        var (_, _, _) = h.Connect("me");
        Assert.True(h.Broker.Clients.TryGet("me", out var me));
        var retained = Message.Create("t", "x"u8.ToArray(), QoS.AtLeastOnce, retain: true, null, "me", 0);
        var plain = new Subscription("t", QoS.ExactlyOnce) { SubscriptionId = 5 };
        var noLocal = plain with { NoLocal = true };
        var asPublished = new Subscription("t", QoS.AtMostOnce) { RetainAsPublished = true };

        var rule = new DeliveryRule(retained, upgradeOutgoingQoS: false);
        Assert.False(rule.TryDecide(me!, noLocal, out _));
        Assert.True(rule.TryDecide(me!, plain, out var d));
        Assert.Equal((QoS.AtLeastOnce, false), (d.QoS, d.Retain));
        Assert.Same(plain.SubscriptionIds, d.SubscriptionIds); // the array the subscription made, not a new one
        Assert.Equal([5u], d.SubscriptionIds!);
        Assert.Equal(new Subscription("t", QoS.ExactlyOnce) { SubscriptionId = 5 }, plain); // the array is not in its equality
        Assert.Equal(new Subscription("t", QoS.ExactlyOnce) { SubscriptionId = 5 }.GetHashCode(), plain.GetHashCode());
        Assert.True(rule.TryDecide(me!, asPublished, out d));
        Assert.Equal((QoS.AtMostOnce, true, (uint[]?)null), (d.QoS, d.Retain, d.SubscriptionIds));
        Assert.Equal((QoS.AtLeastOnce, true), (rule.ForRetained(plain).QoS, rule.ForRetained(plain).Retain));
        Assert.Equal(QoS.ExactlyOnce, new DeliveryRule(retained, upgradeOutgoingQoS: true).ForRetained(plain).QoS);
    }

    [Fact]
    public void DeliveryRule_GivesABridge_NoLocalAndRetainAsPublished_OnEverySubscription()
    {
        // A 3.x connection with the bridge bit (Mosquitto's try_private): Session.IsBridge.
        var h = new ChannelHarness();
        h.Connect("bridge", ProtocolVersion.V311, configure: c => c.IsBridge = true);
        h.Connect("other", ProtocolVersion.V311);
        Assert.True(h.Broker.Clients.TryGet("bridge", out var bridge));
        Assert.True(h.Broker.Clients.TryGet("other", out var other));
        var plain = new Subscription("t", QoS.AtLeastOnce);
        var own = new DeliveryRule(Message.Create("t", "x"u8.ToArray(), QoS.AtLeastOnce, retain: true, null, "bridge", 0), upgradeOutgoingQoS: false);
        var others = new DeliveryRule(Message.Create("t", "x"u8.ToArray(), QoS.AtLeastOnce, retain: true, null, "other", 0), upgradeOutgoingQoS: false);

        Assert.False(own.TryDecide(bridge!, plain, out _)); // its own message does not go back
        Assert.True(own.TryDecide(other!, plain, out var d));
        Assert.False(d.Retain); // an ordinary subscriber: RETAIN 0 when routed live
        Assert.True(others.TryDecide(bridge!, plain, out d));
        Assert.True(d.Retain); // the bridge: RETAIN as published
        Assert.True(others.TryDecide(other!, plain, out _)); // No Local is the bridge's only, not its publishers'
    }

    [Fact]
    public void MergedDelivery_TakesTheHighestQoS_EitherRetain_AndEveryIdentifierInOrder()
    {
        uint[] one = [1], two = [2];
        var a = new Delivery(QoS.AtMostOnce, false, one);
        var none = new Delivery(QoS.ExactlyOnce, true, null);
        var merged = a.MergeWith(none);
        Assert.Equal((QoS.ExactlyOnce, true), (merged.QoS, merged.Retain));
        Assert.Same(one, merged.SubscriptionIds); // one identifier: the subscription's own array
        Assert.Same(one, none.MergeWith(a).SubscriptionIds);
        Assert.Equal([1u, 2u], a.MergeWith(new Delivery(QoS.AtMostOnce, false, two)).SubscriptionIds!);
        Assert.Equal([1u], one); // nothing written into a subscription's array
    }

    /// <summary>Counts what a channel sends, allocating nothing.</summary>
    private sealed class CountingOutput : IClientOutput
    {
        public int Packets;
        public int Publishes;
        public uint LastSubscriptionId;
        public int LastTopicStart;

        public int Backlog => 0;
        public long BacklogBytes => 0;

        public void Send(MqttPacket packet) => Packets++;

        public void SendPublish(Message message, in OutgoingPublish fields)
        {
            Publishes++;
            LastTopicStart = fields.TopicStart;
            if (fields.SubscriptionIdentifiers is { Length: > 0 } ids) LastSubscriptionId = ids[^1];
        }

        public void Close(MqttPacket? finalPacket)
        {
        }
    }

    private const int N = 10_000;

    /// <summary>An MQTT 5 client on a counting output, subscribed to each filter with its identifier.</summary>
    private static CountingOutput ConnectCounting(ChannelHarness h, string clientId, params (string Filter, uint Id)[] subscriptions)
    {
        var output = new CountingOutput();
        var channel = new MqttChannel(h.Broker, h.Listener, output, "127.0.0.1:5000");
        channel.Handle(new ConnectPacket { ClientId = clientId, ProtocolVersion = ProtocolVersion.V500, ProtocolName = "MQTT", CleanStart = true });
        ushort packetId = 1;
        foreach (var (filter, id) in subscriptions)
        {
            var subscribe = ChannelHarness.Subscribe(packetId++, (filter, QoS.AtLeastOnce));
            subscribe.GetOrCreateProperties().SubscriptionIdentifiers = [id];
            channel.Handle(subscribe);
        }
        return output;
    }

    /// <summary>Bytes this thread allocates publishing one QoS 0 message to <paramref name="topic"/> <paramref name="count"/> times,
    /// after 1,000 times to warm up (JIT, the per-thread lists).</summary>
    private static long AllocatedRouting(ChannelHarness h, int count, string topic = "t/x")
    {
        var message = Message.Create(topic, new byte[16], QoS.AtMostOnce, retain: false, null, "publisher", h.Broker.NowMs);
        for (int i = 0; i < 1000; i++) h.Broker.Publish(message);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++) h.Broker.Publish(message);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    public enum FanOut
    {
        One,
        Merged,
        PerSubscription,
        Shared,
        MountPoint,
    }

    [Theory]
    [InlineData(FanOut.One)]
    [InlineData(FanOut.Merged)]
    [InlineData(FanOut.PerSubscription)]
    [InlineData(FanOut.Shared)]
    [InlineData(FanOut.MountPoint)]
    public void RoutingToSubscribersWithIdentifiers_AllocatesNothingPerDelivery(FanOut fanOut)
    {
        var config = new BrokerConfig
        {
            OverlappingSubscriptions = fanOut == FanOut.PerSubscription
                ? OverlappingSubscriptions.PerSubscription
                : OverlappingSubscriptions.Merge,
        };
        var mountPoint = new ListenerConfig { AllowAnonymous = true, MountPoint = "m/" };
        var h = new ChannelHarness(config, fanOut == FanOut.MountPoint ? mountPoint : null);
        string[] filters = fanOut switch
        {
            FanOut.One or FanOut.MountPoint => ["t/x"],
            FanOut.Shared => ["$share/g/t/x"],
            _ => ["t/x", "t/+", "#"], // three subscribers, each on its own filter: three matches, three deliveries
        };
        var outputs = new List<CountingOutput>();
        for (int i = 0; i < filters.Length; i++) outputs.Add(ConnectCounting(h, "s" + i, (filters[i], (uint)(10 + i))));

        long allocated = AllocatedRouting(h, N, fanOut == FanOut.MountPoint ? "m/t/x" : "t/x");

        int deliveries = 0;
        foreach (var output in outputs) deliveries += output.Publishes;
        Assert.Equal((N + 1000) * filters.Length, deliveries);
        Assert.Equal(10u + (uint)(filters.Length - 1), outputs[^1].LastSubscriptionId); // identifiers did go out
        Assert.Equal(fanOut == FanOut.MountPoint ? 2 : 0, outputs[0].LastTopicStart); // "t/x" as the client sees it
        Assert.True(allocated < 1024, $"{allocated} bytes allocated routing {N} messages ({(double)allocated / N:F2} per message)");
    }

    [Fact]
    public void A_SessionWithTwoMatchingIdentifiedSubscriptions_AllocatesOnlyTheArrayOfBoth()
    {
        var h = new ChannelHarness();
        var output = ConnectCounting(h, "s", ("t/x", 10), ("t/#", 11));

        long perMessage = AllocatedRouting(h, N) / N;

        Assert.Equal(N + 1000, output.Publishes); // merged: one delivery each
        Assert.Equal(11u, output.LastSubscriptionId);
        Assert.True(perMessage <= 32, $"{perMessage} bytes per message; a uint[2] is 32");
    }
}
