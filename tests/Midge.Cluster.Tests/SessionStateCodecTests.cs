using System.Buffers;
using System.Text;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Cluster.Tests;

/// <summary>A session as one node hands it to another, and back.</summary>
public class SessionStateCodecTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 5, 0, 0, TimeSpan.Zero);

    [Fact]
    public void EveryPartOfASession_SurvivesTheHandOver()
    {
        var m1 = new StoredMessage("q/1", "one"u8.ToArray(), QoS.AtLeastOnce, Retain: false)
        {
            OriginClientId = "pub",
            OriginUserName = "alice",
            Properties = new MqttProperties { ContentType = "text/plain", UserProperties = [new UserProperty("a", "b")] },
            ExpiresAt = Now.AddSeconds(30),
        };
        var m2 = new StoredMessage("i/2", "two"u8.ToArray(), QoS.ExactlyOnce, Retain: true);
        var state = new SessionState("client é")
        {
            ExpiryInterval = 3600,
            DisconnectedAt = Now.AddSeconds(-5),
            Subscriptions =
            [
                new Subscription("m/q/#", QoS.AtLeastOnce) { ClientFilter = "q/#", NoLocal = true, SubscriptionId = 9 },
                new Subscription("x", QoS.ExactlyOnce) { RetainAsPublished = true, RetainHandling = RetainHandling.SendAtSubscribeIfNew, Exclusive = true },
            ],
            Queued = [new QueuedMessage(4, m1, QoS.AtLeastOnce, false, [9, 10])],
            Inflight =
            [
                new InflightMessage(7, 2, m2, QoS.ExactlyOnce, true, null, InflightState.AwaitingPubRec),
                new InflightMessage(8, 3, m1, QoS.AtLeastOnce, false, [9], InflightState.AwaitingPubAck),
            ],
            IncomingQoS2 = [3, 65535],
            Will = new StoredWill(new StoredMessage("will/t", "bye"u8.ToArray(), QoS.AtLeastOnce, Retain: true) { OriginClientId = "client é" }, 30)
            {
                DueAt = Now.AddSeconds(30),
            },
        };

        var back = SessionStateCodec.Decode(new ReadOnlySequence<byte>(SessionStateCodec.Encode(state, Now)), Now);

        Assert.Equal(("client é", 3600u, Now.AddSeconds(-5)), (back.ClientId, back.ExpiryInterval, back.DisconnectedAt!.Value));
        Assert.Equal(state.Subscriptions, back.Subscriptions);
        Assert.Equal(state.IncomingQoS2, back.IncomingQoS2);
        var q = Assert.Single(back.Queued);
        Assert.Equal((4L, QoS.AtLeastOnce, false), (q.Sequence, q.QoS, q.Retain));
        Assert.Equal([9u, 10u], q.SubscriptionIds!);
        Assert.Equal(("q/1", "one", "pub", "alice", Now.AddSeconds(30)),
            (q.Message.Topic, System.Text.Encoding.UTF8.GetString(q.Message.Payload.Span), q.Message.OriginClientId, q.Message.OriginUserName, q.Message.ExpiresAt!.Value));
        Assert.Equal("text/plain", q.Message.Properties!.ContentType);
        Assert.Equal([new UserProperty("a", "b")], q.Message.Properties.UserProperties);
        Assert.Equal([(7, 2L, InflightState.AwaitingPubRec, QoS.ExactlyOnce, true), (8, 3L, InflightState.AwaitingPubAck, QoS.AtLeastOnce, false)],
            back.Inflight.Select(f => ((int)f.PacketId, f.Sequence, f.State, f.QoS, f.Retain)));
        Assert.Null(back.Inflight[0].SubscriptionIds);
        Assert.Equal(("i/2", QoS.ExactlyOnce, true), (back.Inflight[0].Message.Topic, back.Inflight[0].Message.QoS, back.Inflight[0].Message.Retain));
        Assert.Equal((30u, Now.AddSeconds(30), "will/t", "client é"), (back.Will!.DelayInterval, back.Will.DueAt!.Value, back.Will.Message.Topic, back.Will.Message.OriginClientId));
    }

    [Fact]
    public void A_queued_message_and_one_in_flight_survive_as_keys_of_their_own()
    {
        var utcNow = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var m = new StoredMessage("q/1", "one"u8.ToArray(), QoS.ExactlyOnce, Retain: true) { OriginClientId = "c", ExpiresAt = utcNow.AddSeconds(60) };
        var queued = SessionStateCodec.DecodeQueued(new ReadOnlySequence<byte>(SessionStateCodec.EncodeQueued(new QueuedMessage(41, m, QoS.AtLeastOnce, true, [3, 4]), utcNow)), utcNow);
        Assert.Equal((41L, "q/1", QoS.AtLeastOnce, true, utcNow.AddSeconds(60)),
            (queued.Sequence, queued.Message.Topic, queued.QoS, queued.Retain, queued.Message.ExpiresAt));
        Assert.Equal([3u, 4u], queued.SubscriptionIds!);
        var sent = new InflightMessage(65_535, 42, m, QoS.ExactlyOnce, false, null, InflightState.AwaitingPubComp) { FromQueue = 41 };
        var inflight = SessionStateCodec.DecodeInflight(new ReadOnlySequence<byte>(SessionStateCodec.EncodeInflight(sent, utcNow)), utcNow);
        Assert.Equal(((ushort)65_535, 42L, 41L, InflightState.AwaitingPubComp, "one"),
            (inflight.PacketId, inflight.Sequence, inflight.FromQueue, inflight.State, Encoding.UTF8.GetString(inflight.Message.Payload.Span)));
        Assert.Throws<FormatException>(() => SessionStateCodec.DecodeInflight(new ReadOnlySequence<byte>(SessionStateCodec.EncodeQueued(new QueuedMessage(1, m, QoS.AtLeastOnce, false, null), utcNow)[..12]), utcNow));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 9 })]
    [InlineData(new byte[] { 1, 0, 0, 0, 1, 0x61, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 1, 0, 0, 0, 1, 0x61, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF })]
    public void Garbage_IsAFormatException(byte[] bytes) =>
        Assert.Throws<FormatException>(() => SessionStateCodec.Decode(new ReadOnlySequence<byte>(bytes), Now));
}
