using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using Midge.Protocol.Packets;
using static Midge.Protocol.Tests.Codec;

namespace Midge.Protocol.Tests;

/// <summary>A generated packet with the version it is encoded for; prints as its dump.</summary>
public sealed record Sample(ProtocolVersion Version, MqttPacket Packet)
{
    public override string ToString() => $"{Version} {Dump(Packet)}";
}

/// <summary>
/// Generators of valid packets for every type and version. FsCheck draws the version, the packet type and a
/// seed; the seed drives a builder that picks every field (strings with multi-byte characters, topic names and
/// filters, optional MQTT 5 properties allowed for that packet, lists of 1..n entries).
/// </summary>
internal static class Generators
{
    private static readonly string[] Words = ["a", "b", "sensor", "é", "中文", "😀", "x y", "$", "temp-1", ""];

    public static Gen<Sample> Samples =>
        from version in Gen.Elements(ProtocolVersion.V310, ProtocolVersion.V311, ProtocolVersion.V500)
        from type in Gen.Choose(1, 15)
        from seed in Gen.Choose(0, int.MaxValue)
        where type != (int)PacketType.Auth || version == ProtocolVersion.V500
        select new Sample(version, Build(new Random(seed), (PacketType)type, version));

    private static string Text(Random r, int maxWords = 3)
    {
        int n = r.Next(0, maxWords + 1);
        var parts = new string[n];
        for (int i = 0; i < n; i++) parts[i] = Words[r.Next(Words.Length)];
        return string.Concat(parts);
    }

    private static string TopicName(Random r)
    {
        int levels = r.Next(1, 5);
        var parts = new string[levels];
        for (int i = 0; i < levels; i++) parts[i] = Words[r.Next(Words.Length)];
        var topic = string.Join('/', parts);
        return topic.Length == 0 ? "t" : topic;
    }

    private static string TopicFilter(Random r)
    {
        int levels = r.Next(1, 5);
        var parts = new string[levels];
        for (int i = 0; i < levels; i++)
        {
            int k = r.Next(10);
            parts[i] = k < 2 ? "+" : (k == 2 && i == levels - 1) ? "#" : Words[r.Next(Words.Length)];
        }
        var filter = string.Join('/', parts);
        if (filter.Length == 0) filter = "f";
        return r.Next(6) == 0 ? "$share/g" + r.Next(10) + "/" + filter : filter;
    }

    private static byte[] Bytes(Random r, int max = 16)
    {
        var b = new byte[r.Next(0, max + 1)];
        r.NextBytes(b);
        return b;
    }

    private static bool Coin(Random r) => r.Next(2) == 0;

    private static QoS AnyQoS(Random r) => (QoS)r.Next(3);

    /// <summary>Random properties among those allowed in <paramref name="kind"/>, or null (no properties).</summary>
    private static MqttProperties? Props(Random r, string kind)
    {
        if (r.Next(3) == 0) return null;
        var p = new MqttProperties();
        bool any = false;
        bool Pick() => any |= r.Next(3) == 0;
        switch (kind)
        {
            case "publish":
            case "will":
                if (Pick()) p.PayloadFormatIndicator = (byte)r.Next(2);
                if (Pick()) p.MessageExpiryInterval = (uint)r.Next();
                if (Pick()) p.ContentType = Text(r);
                if (Pick()) p.ResponseTopic = TopicName(r);
                if (Pick()) p.CorrelationData = Bytes(r);
                if (kind == "will" && Pick()) p.WillDelayInterval = (uint)r.Next();
                if (kind == "publish" && Pick()) p.TopicAlias = (ushort)r.Next(1, 65536);
                if (kind == "publish" && Pick())
                {
                    p.SubscriptionIdentifiers = [];
                    for (int i = r.Next(1, 4); i > 0; i--) p.SubscriptionIdentifiers.Add((uint)r.Next(1, 268_435_456));
                }
                break;
            case "connect":
                if (Pick()) p.SessionExpiryInterval = (uint)r.Next();
                if (Pick()) p.ReceiveMaximum = (ushort)r.Next(1, 65536);
                if (Pick()) p.MaximumPacketSize = (uint)r.Next(1, int.MaxValue);
                if (Pick()) p.TopicAliasMaximum = (ushort)r.Next(65536);
                if (Pick()) p.RequestResponseInformation = (byte)r.Next(2);
                if (Pick()) p.RequestProblemInformation = (byte)r.Next(2);
                if (Pick()) { p.AuthenticationMethod = Text(r); if (Coin(r)) p.AuthenticationData = Bytes(r); }
                break;
            case "connack":
                if (Pick()) p.SessionExpiryInterval = (uint)r.Next();
                if (Pick()) p.ReceiveMaximum = (ushort)r.Next(1, 65536);
                if (Pick()) p.MaximumQoS = (byte)r.Next(2);
                if (Pick()) p.RetainAvailable = (byte)r.Next(2);
                if (Pick()) p.MaximumPacketSize = (uint)r.Next(1, int.MaxValue);
                if (Pick()) p.AssignedClientIdentifier = Text(r);
                if (Pick()) p.TopicAliasMaximum = (ushort)r.Next(65536);
                if (Pick()) p.ReasonString = Text(r);
                if (Pick()) p.WildcardSubscriptionAvailable = (byte)r.Next(2);
                if (Pick()) p.SubscriptionIdentifierAvailable = (byte)r.Next(2);
                if (Pick()) p.SharedSubscriptionAvailable = (byte)r.Next(2);
                if (Pick()) p.ServerKeepAlive = (ushort)r.Next(65536);
                if (Pick()) p.ResponseInformation = Text(r);
                if (Pick()) p.ServerReference = Text(r);
                if (Pick()) p.AuthenticationMethod = Text(r);
                if (Pick()) p.AuthenticationData = Bytes(r);
                break;
            case "subscribe":
                if (Pick()) p.SubscriptionIdentifiers = [(uint)r.Next(1, 268_435_456)];
                break;
            case "disconnect":
                if (Pick()) p.SessionExpiryInterval = (uint)r.Next();
                if (Pick()) p.ServerReference = Text(r);
                if (Pick()) p.ReasonString = Text(r);
                break;
            case "auth":
                if (Pick()) p.AuthenticationMethod = Text(r);
                if (Pick()) p.AuthenticationData = Bytes(r);
                if (Pick()) p.ReasonString = Text(r);
                break;
            case "ack":
                if (Pick()) p.ReasonString = Text(r);
                break;
        }
        if (Pick())
        {
            p.UserProperties = [];
            for (int i = r.Next(1, 4); i > 0; i--) p.UserProperties.Add(new UserProperty(Text(r), Text(r)));
        }
        return any ? p : null;
    }

    private static T Pick<T>(Random r, ReadOnlySpan<T> items) => items[r.Next(items.Length)];

    public static MqttPacket Build(Random r, PacketType type, ProtocolVersion v)
    {
        bool v5 = v == ProtocolVersion.V500;
        switch (type)
        {
            case PacketType.Connect:
            {
                var c = new ConnectPacket
                {
                    ProtocolVersion = v,
                    ProtocolName = v == ProtocolVersion.V310 ? "MQIsdp" : "MQTT",
                    CleanStart = Coin(r),
                    KeepAlive = (ushort)r.Next(65536),
                    ClientId = Text(r),
                    IsBridge = r.Next(8) == 0,
                };
                if ((v == ProtocolVersion.V310 && c.ClientId.Length == 0) || (v == ProtocolVersion.V311 && c.ClientId.Length == 0 && !c.CleanStart))
                    c.ClientId = "client";
                if (Coin(r))
                {
                    c.Will = new WillMessage { Topic = TopicName(r), Payload = Bytes(r), QoS = AnyQoS(r), Retain = Coin(r) };
                    if (v5) c.Will.Properties = Props(r, "will");
                }
                if (Coin(r)) c.UserName = Text(r);
                if ((c.UserName is not null || v5) && Coin(r)) c.Password = Bytes(r);
                if (v5) c.Properties = Props(r, "connect");
                return c;
            }
            case PacketType.ConnAck:
            {
                var ca = new ConnAckPacket();
                if (v5)
                {
                    ca.ReasonCode = Pick<ReasonCode>(r, [ReasonCode.Success, ReasonCode.NotAuthorized, ReasonCode.ServerMoved, ReasonCode.QuotaExceeded]);
                    ca.SessionPresent = ca.ReasonCode == ReasonCode.Success && Coin(r);
                    ca.Properties = Props(r, "connack");
                }
                else
                {
                    ca.V3ReturnCode = (ConnectReturnCode)r.Next(6);
                    ca.ReasonCode = ca.V3ReturnCode switch
                    {
                        ConnectReturnCode.Accepted => ReasonCode.Success,
                        ConnectReturnCode.UnacceptableProtocolVersion => ReasonCode.UnsupportedProtocolVersion,
                        ConnectReturnCode.IdentifierRejected => ReasonCode.ClientIdentifierNotValid,
                        ConnectReturnCode.ServerUnavailable => ReasonCode.ServerUnavailable,
                        ConnectReturnCode.BadUserNameOrPassword => ReasonCode.BadUserNameOrPassword,
                        _ => ReasonCode.NotAuthorized,
                    };
                    ca.SessionPresent = v == ProtocolVersion.V311 && ca.V3ReturnCode == ConnectReturnCode.Accepted && Coin(r);
                }
                return ca;
            }
            case PacketType.Publish:
            {
                var p = new PublishPacket { Topic = TopicName(r), QoS = AnyQoS(r), Retain = Coin(r), Payload = Bytes(r, r.Next(4) == 0 ? 70_000 : 32) };
                if (p.QoS != QoS.AtMostOnce)
                {
                    p.PacketId = (ushort)r.Next(1, 65536);
                    p.Dup = Coin(r);
                }
                if (v5)
                {
                    p.Properties = Props(r, "publish");
                    if (p.Properties?.TopicAlias is not null && Coin(r)) p.Topic = "";
                }
                return p;
            }
            case PacketType.PubAck:
            case PacketType.PubRec:
            case PacketType.PubRel:
            case PacketType.PubComp:
            {
                var a = new PublishAckPacket(type, (ushort)r.Next(1, 65536));
                if (v5)
                {
                    a.ReasonCode = type is PacketType.PubRel or PacketType.PubComp
                        ? Pick<ReasonCode>(r, [ReasonCode.Success, ReasonCode.PacketIdentifierNotFound])
                        : Pick<ReasonCode>(r, [ReasonCode.Success, ReasonCode.NoMatchingSubscribers, ReasonCode.NotAuthorized, ReasonCode.PayloadFormatInvalid]);
                    a.Properties = Props(r, "ack");
                }
                return a;
            }
            case PacketType.Subscribe:
            {
                var s = new SubscribePacket { PacketId = (ushort)r.Next(1, 65536) };
                for (int i = r.Next(1, 5); i > 0; i--)
                {
                    var filter = TopicFilter(r);
                    s.Subscriptions.Add(v5
                        ? new TopicSubscription(filter, AnyQoS(r))
                        {
                            NoLocal = !Topics.IsShared(filter) && Coin(r),
                            RetainAsPublished = Coin(r),
                            RetainHandling = (RetainHandling)r.Next(3),
                        }
                        : new TopicSubscription(filter, AnyQoS(r)));
                }
                if (v5) s.Properties = Props(r, "subscribe");
                return s;
            }
            case PacketType.SubAck:
            {
                var s = new SubAckPacket { PacketId = (ushort)r.Next(1, 65536) };
                for (int i = r.Next(1, 5); i > 0; i--)
                {
                    s.ReasonCodes.Add(v5
                        ? Pick<ReasonCode>(r, [ReasonCode.GrantedQoS0, ReasonCode.GrantedQoS1, ReasonCode.GrantedQoS2, ReasonCode.NotAuthorized, ReasonCode.TopicFilterInvalid, ReasonCode.SharedSubscriptionsNotSupported])
                        : Pick<ReasonCode>(r, [ReasonCode.GrantedQoS0, ReasonCode.GrantedQoS1, ReasonCode.GrantedQoS2, ReasonCode.UnspecifiedError]));
                }
                if (v5) s.Properties = Props(r, "ack");
                return s;
            }
            case PacketType.Unsubscribe:
            {
                var u = new UnsubscribePacket { PacketId = (ushort)r.Next(1, 65536) };
                for (int i = r.Next(1, 5); i > 0; i--) u.Filters.Add(TopicFilter(r));
                if (v5) u.Properties = Props(r, "ack-user-only");
                return u;
            }
            case PacketType.UnsubAck:
            {
                var u = new UnsubAckPacket { PacketId = (ushort)r.Next(1, 65536) };
                if (v5)
                {
                    for (int i = r.Next(1, 5); i > 0; i--)
                        u.ReasonCodes.Add(Pick<ReasonCode>(r, [ReasonCode.Success, ReasonCode.NoSubscriptionExisted, ReasonCode.NotAuthorized, ReasonCode.TopicFilterInvalid]));
                    u.Properties = Props(r, "ack");
                }
                return u;
            }
            case PacketType.PingReq:
                return PingReqPacket.Instance;
            case PacketType.PingResp:
                return PingRespPacket.Instance;
            case PacketType.Disconnect:
            {
                var d = new DisconnectPacket();
                if (v5)
                {
                    d.ReasonCode = Pick<ReasonCode>(r, [ReasonCode.NormalDisconnection, ReasonCode.DisconnectWithWillMessage, ReasonCode.SessionTakenOver, ReasonCode.ServerShuttingDown, ReasonCode.KeepAliveTimeout]);
                    d.Properties = Props(r, "disconnect");
                }
                return d;
            }
            default:
                return new AuthPacket
                {
                    ReasonCode = Pick<ReasonCode>(r, [ReasonCode.Success, ReasonCode.ContinueAuthentication, ReasonCode.ReAuthenticate]),
                    Properties = Props(r, "auth"),
                };
        }
    }
}

public class RoundTripTests
{
    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(3000);

    [Fact]
    public void DecodeOfEncode_IsIdentity_ForEveryPacketTypeAndVersion()
    {
        Prop.ForAll(Arb.From(Generators.Samples), s =>
        {
            var bytes = Encode(s.Packet, s.Version);
            if (bytes.Length != PacketEncoder.GetSize(s.Packet, s.Version)) return false;
            return Dump(Decode(bytes, s.Version)) == Dump(s.Packet);
        }).Check(Runs);
    }

    [Fact]
    public void DecodeOfEncode_OneBytePerSegment_IsIdentity()
    {
        Prop.ForAll(Arb.From(Generators.Samples), s =>
            Dump(DecodeSegmented(Encode(s.Packet, s.Version), s.Version)) == Dump(s.Packet)).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    [Fact]
    public void Generators_CoverEveryTypeAndVersion()
    {
        var seen = new HashSet<(ProtocolVersion, PacketType)>();
        Prop.ForAll(Arb.From(Generators.Samples), s => seen.Add((s.Version, s.Packet.Type)) || true).Check(Runs);
        Assert.Equal(14 * 3 + 1, seen.Count);
    }
}
