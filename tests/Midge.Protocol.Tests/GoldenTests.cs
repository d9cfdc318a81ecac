using Midge.Protocol.Packets;
using static Midge.Protocol.Tests.Codec;

namespace Midge.Protocol.Tests;

/// <summary>
/// Byte arrays written from the specifications, one or more per packet type and version. Each is decoded and
/// compared with the expected packet, decoded again fed one byte per segment, and (unless decode-only) the
/// expected packet is encoded and compared with the bytes.
/// </summary>
public class GoldenTests
{
    private const ProtocolVersion V3 = ProtocolVersion.V310;
    private const ProtocolVersion V4 = ProtocolVersion.V311;
    private const ProtocolVersion V5 = ProtocolVersion.V500;

    public sealed record Golden(string Name, ProtocolVersion Version, string Hex, Func<MqttPacket> Expected, bool Encodes = true, bool Decodes = true);

    private static byte[] B(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    public static readonly Golden[] Cases =
    [
        // ---- CONNECT ----
        new("CONNECT 3.1.1 will + credentials", V4,
            "10 1F 00 04 4D 51 54 54 04 EE 00 3C 00 03 63 69 64 00 03 77 2F 74 00 02 01 02 00 01 75 00 02 70 77",
            () => new ConnectPacket
            {
                ProtocolName = "MQTT", ProtocolVersion = V4, CleanStart = true, KeepAlive = 60, ClientId = "cid",
                Will = new WillMessage { Topic = "w/t", Payload = new byte[] { 1, 2 }, QoS = QoS.AtLeastOnce, Retain = true },
                UserName = "u", Password = B("pw"),
            }),
        new("CONNECT 3.1 MQIsdp", V3,
            "10 11 00 06 4D 51 49 73 64 70 03 02 00 0A 00 03 61 62 63",
            () => new ConnectPacket { ProtocolName = "MQIsdp", ProtocolVersion = V3, CleanStart = true, KeepAlive = 10, ClientId = "abc" }),
        new("CONNECT 5.0 properties", V5,
            "10 1E 00 04 4D 51 54 54 05 02 00 3C 0F 11 00 00 00 78 21 00 14 26 00 01 6B 00 01 76 00 02 63 6C",
            () =>
            {
                var p = new ConnectPacket { ProtocolName = "MQTT", ProtocolVersion = V5, CleanStart = true, KeepAlive = 60, ClientId = "cl" };
                var props = p.GetOrCreateProperties();
                props.SessionExpiryInterval = 120;
                props.ReceiveMaximum = 20;
                props.AddUserProperty("k", "v");
                return p;
            }),
        new("CONNECT 5.0 will properties, password without user name, empty client id", V5,
            "10 1B 00 04 4D 51 54 54 05 54 00 00 00 00 00 05 18 00 00 00 05 00 01 74 00 00 00 01 70",
            () => new ConnectPacket
            {
                ProtocolName = "MQTT", ProtocolVersion = V5, CleanStart = false, KeepAlive = 0, ClientId = "",
                Will = new WillMessage { Topic = "t", Payload = ReadOnlyMemory<byte>.Empty, QoS = QoS.ExactlyOnce, Properties = new MqttProperties { WillDelayInterval = 5 } },
                Password = B("p"),
            }),
        new("CONNECT 3.1.1 bridge level 0x84", V4,
            "10 0F 00 04 4D 51 54 54 84 02 00 3C 00 03 63 69 64",
            () => new ConnectPacket { ProtocolName = "MQTT", ProtocolVersion = V4, IsBridge = true, KeepAlive = 60, ClientId = "cid" }),
        new("CONNECT 3.1 bridge level 0x83", V3,
            "10 11 00 06 4D 51 49 73 64 70 83 02 00 0A 00 03 61 62 63",
            () => new ConnectPacket { ProtocolName = "MQIsdp", ProtocolVersion = V3, IsBridge = true, CleanStart = true, KeepAlive = 10, ClientId = "abc" }),
        new("CONNECT 5.0 bridge level 0x85", V5,
            "10 10 00 04 4D 51 54 54 85 02 00 3C 00 00 03 63 69 64",
            () => new ConnectPacket { ProtocolName = "MQTT", ProtocolVersion = V5, IsBridge = true, KeepAlive = 60, ClientId = "cid" }),
        // What Debian's mosquitto 2.0.11 sent for "connection x" on host "vm" (captured; try_private, notifications and
        // cleansession false by default): level 0x84, its will retained at QoS 1 on its state topic, payload "0".
        new("CONNECT 3.1.1 Mosquitto bridge with its notification will", V4,
            "10 36 00 04 4D 51 54 54 84 2C 00 3C 00 04 76 6D 2E 78 00 21 24 53 59 53 2F 62 72 6F 6B 65 72 2F 63 6F 6E 6E 65 63 74 69 6F 6E 2F 76 6D 2E 78 2F 73 74 61 74 65 00 01 30",
            () => new ConnectPacket
            {
                ProtocolName = "MQTT", ProtocolVersion = V4, IsBridge = true, CleanStart = false, KeepAlive = 60, ClientId = "vm.x",
                Will = new WillMessage { Topic = "$SYS/broker/connection/vm.x/state", Payload = B("0"), QoS = QoS.AtLeastOnce, Retain = true },
            }),

        // ---- CONNACK ----
        new("CONNACK 3.1.1 session present", V4, "20 02 01 00",
            () => new ConnAckPacket { SessionPresent = true, ReasonCode = ReasonCode.Success, V3ReturnCode = ConnectReturnCode.Accepted }),
        new("CONNACK 3.1.1 not authorized", V4, "20 02 00 05",
            () => new ConnAckPacket { ReasonCode = ReasonCode.NotAuthorized, V3ReturnCode = ConnectReturnCode.NotAuthorized }),
        new("CONNACK 3.1 identifier rejected", V3, "20 02 00 02",
            () => new ConnAckPacket { ReasonCode = ReasonCode.ClientIdentifierNotValid, V3ReturnCode = ConnectReturnCode.IdentifierRejected }),
        new("CONNACK 3.1.1 mapped from a 5.0 reason code", V4, "20 02 00 04",
            () => new ConnAckPacket { ReasonCode = ReasonCode.BadAuthenticationMethod }, Decodes: false),
        new("CONNACK 5.0 properties", V5, "20 0B 00 00 08 12 00 01 78 24 01 25 00",
            () => new ConnAckPacket
            {
                ReasonCode = ReasonCode.Success,
                Properties = new MqttProperties { AssignedClientIdentifier = "x", MaximumQoS = 1, RetainAvailable = 0 },
            }),
        new("CONNACK 5.0 not authorized", V5, "20 03 00 87 00", () => new ConnAckPacket { ReasonCode = ReasonCode.NotAuthorized }),

        // ---- PUBLISH ----
        new("PUBLISH 3.1.1 QoS 0", V4, "30 07 00 03 61 2F 62 68 69",
            () => new PublishPacket { Topic = "a/b", Payload = B("hi") }),
        new("PUBLISH 3.1.1 QoS 1 retain", V4, "33 08 00 03 61 2F 62 00 0A 78",
            () => new PublishPacket { Topic = "a/b", QoS = QoS.AtLeastOnce, Retain = true, PacketId = 10, Payload = B("x") }),
        new("PUBLISH 3.1.1 QoS 2 DUP empty payload", V4, "3C 07 00 03 61 2F 62 12 34",
            () => new PublishPacket { Topic = "a/b", QoS = QoS.ExactlyOnce, Dup = true, PacketId = 0x1234 }),
        new("PUBLISH 3.1 QoS 1", V3, "32 08 00 03 61 2F 62 00 0A 78",
            () => new PublishPacket { Topic = "a/b", QoS = QoS.AtLeastOnce, PacketId = 10, Payload = B("x") }),
        new("PUBLISH 5.0 QoS 0 no properties", V5, "30 08 00 03 61 2F 62 00 68 69",
            () => new PublishPacket { Topic = "a/b", Payload = B("hi") }),
        new("PUBLISH 5.0 QoS 1 properties", V5,
            "32 1B 00 03 61 2F 62 00 01 11 01 01 02 00 00 00 3C 03 00 04 74 65 78 74 23 00 05 68 69",
            () => new PublishPacket
            {
                Topic = "a/b", QoS = QoS.AtLeastOnce, PacketId = 1, Payload = B("hi"),
                Properties = new MqttProperties { PayloadFormatIndicator = 1, MessageExpiryInterval = 60, ContentType = "text", TopicAlias = 5 },
            }),
        new("PUBLISH 5.0 empty topic with Topic Alias", V5, "30 07 00 00 03 23 00 01 78",
            () => new PublishPacket { Topic = "", Payload = B("x"), Properties = new MqttProperties { TopicAlias = 1 } }),
        new("PUBLISH 5.0 QoS 2 subscription identifiers", V5, "34 0C 00 01 61 00 07 05 0B 01 0B 80 01 7A",
            () => new PublishPacket
            {
                Topic = "a", QoS = QoS.ExactlyOnce, PacketId = 7, Payload = B("z"),
                Properties = new MqttProperties { SubscriptionIdentifiers = [1, 128] },
            }),

        // ---- PUBACK / PUBREC / PUBREL / PUBCOMP ----
        new("PUBACK 3.1.1", V4, "40 02 00 01", () => new PublishAckPacket(PacketType.PubAck, 1)),
        new("PUBREC 3.1.1", V4, "50 02 00 02", () => new PublishAckPacket(PacketType.PubRec, 2)),
        new("PUBREL 3.1.1", V4, "62 02 00 03", () => new PublishAckPacket(PacketType.PubRel, 3)),
        new("PUBCOMP 3.1.1", V4, "70 02 00 04", () => new PublishAckPacket(PacketType.PubComp, 4)),
        new("PUBREL 3.1", V3, "62 02 00 03", () => new PublishAckPacket(PacketType.PubRel, 3)),
        new("PUBACK 5.0 short form", V5, "40 02 00 01", () => new PublishAckPacket(PacketType.PubAck, 1)),
        new("PUBACK 5.0 reason without properties", V5, "40 03 00 01 10",
            () => new PublishAckPacket(PacketType.PubAck, 1, ReasonCode.NoMatchingSubscribers)),
        new("PUBACK 5.0 reason and empty property length", V5, "40 04 00 01 00 00",
            () => new PublishAckPacket(PacketType.PubAck, 1), Encodes: false),
        new("PUBREC 5.0 reason string", V5, "50 0A 00 02 80 06 1F 00 03 62 61 64",
            () => new PublishAckPacket(PacketType.PubRec, 2, ReasonCode.UnspecifiedError) { Properties = new MqttProperties { ReasonString = "bad" } }),
        new("PUBREL 5.0 packet identifier not found", V5, "62 03 00 03 92",
            () => new PublishAckPacket(PacketType.PubRel, 3, ReasonCode.PacketIdentifierNotFound)),
        new("PUBCOMP 5.0", V5, "70 02 00 04", () => new PublishAckPacket(PacketType.PubComp, 4)),

        // ---- SUBSCRIBE / SUBACK ----
        new("SUBSCRIBE 3.1.1", V4, "82 0C 00 0A 00 03 61 2F 62 01 00 01 23 02",
            () => new SubscribePacket { PacketId = 10, Subscriptions = [new("a/b", QoS.AtLeastOnce), new("#", QoS.ExactlyOnce)] }),
        new("SUBSCRIBE 5.0 options", V5,
            "82 18 00 0B 02 0B 05 00 03 61 2F 2B 2D 00 0A 24 73 68 61 72 65 2F 67 2F 78 00",
            () => new SubscribePacket
            {
                PacketId = 11,
                Properties = new MqttProperties { SubscriptionIdentifiers = [5] },
                Subscriptions =
                [
                    new("a/+", QoS.AtLeastOnce) { NoLocal = true, RetainAsPublished = true, RetainHandling = RetainHandling.DoNotSend },
                    new("$share/g/x", QoS.AtMostOnce),
                ],
            }),
        new("SUBACK 3.1.1", V4, "90 05 00 0A 00 01 80",
            () => new SubAckPacket { PacketId = 10, ReasonCodes = [ReasonCode.GrantedQoS0, ReasonCode.GrantedQoS1, ReasonCode.UnspecifiedError] }),
        new("SUBACK 3.1.1 maps 5.0 failure codes to 0x80", V4, "90 04 00 0A 02 80",
            () => new SubAckPacket { PacketId = 10, ReasonCodes = [ReasonCode.GrantedQoS2, ReasonCode.NotAuthorized] }, Decodes: false),
        new("SUBACK 5.0", V5, "90 06 00 0B 00 01 87 A2",
            () => new SubAckPacket { PacketId = 11, ReasonCodes = [ReasonCode.GrantedQoS1, ReasonCode.NotAuthorized, ReasonCode.WildcardSubscriptionsNotSupported] }),

        // ---- UNSUBSCRIBE / UNSUBACK ----
        new("UNSUBSCRIBE 3.1.1", V4, "A2 0A 00 0C 00 03 61 2F 62 00 01 23",
            () => new UnsubscribePacket { PacketId = 12, Filters = ["a/b", "#"] }),
        new("UNSUBSCRIBE 5.0 user property", V5, "A2 0F 00 0C 07 26 00 01 6B 00 01 76 00 03 61 2F 62",
            () => new UnsubscribePacket
            {
                PacketId = 12, Filters = ["a/b"],
                Properties = new MqttProperties { UserProperties = [new UserProperty("k", "v")] },
            }),
        new("UNSUBACK 3.1.1", V4, "B0 02 00 0C", () => new UnsubAckPacket { PacketId = 12 }),
        new("UNSUBACK 5.0", V5, "B0 05 00 0C 00 00 11",
            () => new UnsubAckPacket { PacketId = 12, ReasonCodes = [ReasonCode.Success, ReasonCode.NoSubscriptionExisted] }),

        // ---- PINGREQ / PINGRESP ----
        new("PINGREQ 3.1.1", V4, "C0 00", () => PingReqPacket.Instance),
        new("PINGRESP 3.1.1", V4, "D0 00", () => PingRespPacket.Instance),
        new("PINGREQ 5.0", V5, "C0 00", () => PingReqPacket.Instance),
        new("PINGRESP 3.1", V3, "D0 00", () => PingRespPacket.Instance),

        // ---- DISCONNECT ----
        new("DISCONNECT 3.1.1", V4, "E0 00", () => new DisconnectPacket()),
        new("DISCONNECT 5.0 normal", V5, "E0 00", () => new DisconnectPacket()),
        new("DISCONNECT 5.0 reason only", V5, "E0 01 8E", () => new DisconnectPacket { ReasonCode = ReasonCode.SessionTakenOver }),
        new("DISCONNECT 5.0 reason and properties", V5, "E0 0D 04 0B 11 00 00 00 00 1F 00 03 62 79 65",
            () => new DisconnectPacket
            {
                ReasonCode = ReasonCode.DisconnectWithWillMessage,
                Properties = new MqttProperties { SessionExpiryInterval = 0, ReasonString = "bye" },
            }),

        // ---- AUTH ----
        new("AUTH 5.0 continue", V5, "F0 0F 18 0D 15 00 05 53 43 52 41 4D 16 00 02 01 02",
            () => new AuthPacket
            {
                ReasonCode = ReasonCode.ContinueAuthentication,
                Properties = new MqttProperties { AuthenticationMethod = "SCRAM", AuthenticationData = [1, 2] },
            }),
        new("AUTH 5.0 short form", V5, "F0 00", () => new AuthPacket()),
    ];

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases) data.Add(c.Name);
        return data;
    }

    private static Golden Get(string name) => Array.Find(Cases, c => c.Name == name)!;

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_GivesExpectedFields(string name)
    {
        var c = Get(name);
        if (!c.Decodes) return;
        var decoded = Decode(Hex(c.Hex), c.Version);
        Assert.Equal(Dump(c.Expected()), Dump(decoded));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_OneBytePerSegment_GivesSamePacket(string name)
    {
        var c = Get(name);
        if (!c.Decodes) return;
        var decoded = DecodeSegmented(Hex(c.Hex), c.Version);
        Assert.Equal(Dump(c.Expected()), Dump(decoded));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Encode_GivesGoldenBytes(string name)
    {
        var c = Get(name);
        if (!c.Encodes) return;
        var packet = c.Expected();
        var bytes = Encode(packet, c.Version);
        Assert.Equal(ToHex(Hex(c.Hex)), ToHex(bytes));
        Assert.Equal(bytes.Length, PacketEncoder.GetSize(packet, c.Version));
    }

    [Fact]
    public void WholeGoldenStream_OneBytePerSegment_DecodesEveryPacketInOrder()
    {
        foreach (var version in new[] { V3, V4, V5 })
        {
            var stream = new List<byte>();
            var expected = new List<string>();
            foreach (var c in Cases)
            {
                if (c.Version != version || !c.Decodes || c.Expected() is ConnectPacket) continue;
                stream.AddRange(Hex(c.Hex));
                expected.Add(Dump(c.Expected()));
            }
            var decoded = DecodeAll(SegmentPerByte([.. stream]), version);
            var actual = new List<string>();
            foreach (var p in decoded) actual.Add(Dump(p));
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void Decode_ConnectFields_311()
    {
        var p = Assert.IsType<ConnectPacket>(Decode(Hex(Get("CONNECT 3.1.1 will + credentials").Hex), V4));
        Assert.Equal("cid", p.ClientId);
        Assert.Equal("u", p.UserName);
        Assert.Equal(B("pw"), p.Password);
        Assert.Equal("w/t", p.Will!.Topic);
        Assert.Equal(QoS.AtLeastOnce, p.Will.QoS);
        Assert.True(p.Will.Retain);
        Assert.Equal(new byte[] { 1, 2 }, p.Will.Payload.ToArray());
        Assert.Null(p.Properties);
    }

    [Fact]
    public void Decode_CopiesPayload_SoTheBufferCanBeReused()
    {
        var bytes = Hex("30 07 00 03 61 2F 62 68 69");
        var p = Assert.IsType<PublishPacket>(Decode(bytes, V4));
        bytes.AsSpan().Clear();
        Assert.Equal(B("hi"), p.Payload.ToArray());
        Assert.Equal("a/b", p.Topic);
    }
}
