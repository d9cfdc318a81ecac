using static Midge.Protocol.Tests.Codec;

namespace Midge.Protocol.Tests;

/// <summary>
/// Every invalid input the decoder must refuse, each named after the normative statement (or spec section) it
/// checks, with the reason code it must get.
/// </summary>
public class MalformedTests
{
    private const ProtocolVersion V3 = ProtocolVersion.V310;
    private const ProtocolVersion V4 = ProtocolVersion.V311;
    private const ProtocolVersion V5 = ProtocolVersion.V500;
    private const ReasonCode Malformed = ReasonCode.MalformedPacket;
    private const ReasonCode Protocol = ReasonCode.ProtocolError;

    public sealed record Bad(string Name, ProtocolVersion Version, string Hex, ReasonCode Reason);

    // A valid 3.1.1 CONNECT for reference: 10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64
    public static readonly Bad[] Cases =
    [
        // ---- CONNECT ----
        new("MQTT_2_2_2_2_ConnectFixedHeaderFlags_IsMalformed", V4, "11 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_3_ReservedConnectFlag_IsMalformed", V4, "10 0F 00 04 4D 51 54 54 04 03 00 3C 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_3_ReservedConnectFlag_V5_IsMalformed", V5, "10 10 00 04 4D 51 54 54 05 03 00 3C 00 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_14_WillQoS3_IsMalformed", V4, "10 0F 00 04 4D 51 54 54 04 1E 00 3C 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_13_WillQoSWithoutWillFlag_IsMalformed", V4, "10 0F 00 04 4D 51 54 54 04 0A 00 3C 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_15_WillRetainWithoutWillFlag_IsMalformed", V4, "10 0F 00 04 4D 51 54 54 04 22 00 3C 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_11_WillRetainWithoutWillFlag_V5_IsMalformed", V5, "10 10 00 04 4D 51 54 54 05 22 00 3C 00 00 03 63 69 64", Malformed),
        new("MQTT_3_1_2_22_PasswordWithoutUserName_IsMalformed", V4, "10 12 00 04 4D 51 54 54 04 42 00 3C 00 03 63 69 64 00 01 70", Malformed),
        new("MQTT_3_1_2_22_PasswordWithoutUserName_V31_IsMalformed", V3, "10 14 00 06 4D 51 49 73 64 70 03 42 00 3C 00 03 63 69 64 00 01 70", Malformed),
        new("MQTT_3_1_3_8_EmptyClientIdWithoutCleanSession_IsIdentifierRejected", V4, "10 0C 00 04 4D 51 54 54 04 00 00 3C 00 00", ReasonCode.ClientIdentifierNotValid),
        new("MQTT31_EmptyClientId_IsIdentifierRejected", V3, "10 0E 00 06 4D 51 49 73 64 70 03 02 00 3C 00 00", ReasonCode.ClientIdentifierNotValid),
        new("MQTT_3_1_3_ConnectTrailingByte_IsMalformed", V4, "10 10 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64 00", Malformed),
        new("MQTT_3_1_3_ConnectShorterThanClientId_IsMalformed", V4, "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 03 63", Malformed),
        new("MQTT_3_1_ConnectWithoutConnectFlags_IsMalformed", V4, "10 07 00 04 4D 51 54 54 04", Malformed),
        new("MQTT_1_5_4_2_ClientIdWithNullCharacter_IsMalformed", V4, "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 00 64", Malformed),
        new("MQTT_1_5_4_1_ClientIdWithEncodedSurrogate_IsMalformed", V4, "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 ED A0 80", Malformed),
        new("MQTT_1_5_4_1_ClientIdOverlongUtf8_IsMalformed", V4, "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 02 C0 AF", Malformed),
        new("MQTT_1_5_4_1_ClientIdTruncatedUtf8_IsMalformed", V4, "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 C3", Malformed),
        new("MQTT_3_1_2_14_WillTopicWithWildcard_IsTopicNameInvalid", V4, "10 14 00 04 4D 51 54 54 04 06 00 3C 00 03 63 69 64 00 01 23 00 00", ReasonCode.TopicNameInvalid),
        new("MQTT5_2_2_2_2_PropertyNotAllowedInConnect_IsMalformed", V5, "10 13 00 04 4D 51 54 54 05 02 00 3C 03 23 00 01 00 03 63 69 64", Malformed),
        new("MQTT5_3_1_2_11_2_DuplicateSessionExpiry_IsProtocolError", V5, "10 1A 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 03 63 69 64", Protocol),
        new("MQTT5_3_1_2_11_3_ReceiveMaximumZero_IsProtocolError", V5, "10 13 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 03 63 69 64", Protocol),
        new("MQTT5_3_1_2_11_4_MaximumPacketSizeZero_IsProtocolError", V5, "10 15 00 04 4D 51 54 54 05 02 00 3C 05 27 00 00 00 00 00 03 63 69 64", Protocol),
        new("MQTT5_3_1_2_11_7_RequestProblemInformation2_IsProtocolError", V5, "10 12 00 04 4D 51 54 54 05 02 00 3C 02 17 02 00 03 63 69 64", Protocol),
        new("MQTT5_3_1_2_11_6_RequestResponseInformation2_IsProtocolError", V5, "10 12 00 04 4D 51 54 54 05 02 00 3C 02 19 02 00 03 63 69 64", Protocol),
        new("MQTT5_3_1_2_11_10_AuthenticationDataWithoutMethod_IsProtocolError", V5, "10 14 00 04 4D 51 54 54 05 02 00 3C 04 16 00 01 AA 00 03 63 69 64", Protocol),
        new("MQTT5_2_2_2_2_UnknownProperty_IsMalformed", V5, "10 12 00 04 4D 51 54 54 05 02 00 3C 02 7F 00 00 03 63 69 64", Malformed),
        new("MQTT5_2_2_2_1_PropertyLengthBeyondPacket_IsMalformed", V5, "10 10 00 04 4D 51 54 54 05 02 00 3C 7F 00 03 63 69 64", Malformed),
        new("MQTT5_2_2_2_1_PropertyOverrunsPropertyLength_IsMalformed", V5, "10 13 00 04 4D 51 54 54 05 02 00 3C 02 21 00 0A 00 03 63 69 64", Malformed),
        new("MQTT_1_5_5_1_NonMinimalPropertyLength_IsMalformed", V5, "10 11 00 04 4D 51 54 54 05 02 00 3C 80 00 00 03 63 69 64", Malformed),
        new("MQTT5_3_3_2_3_2_WillPayloadFormatIndicator2_IsProtocolError", V5, "10 18 00 04 4D 51 54 54 05 06 00 3C 00 00 03 63 69 64 02 01 02 00 01 74 00 00", Protocol),
        new("MQTT5_3_1_3_2_SessionExpiryInWillProperties_IsMalformed", V5, "10 1B 00 04 4D 51 54 54 05 06 00 3C 00 00 03 63 69 64 05 11 00 00 00 01 00 01 74 00 00", Malformed),

        // ---- PUBLISH ----
        new("MQTT_3_3_1_4_PublishQoS3_IsMalformed", V4, "36 05 00 01 61 00 01", Malformed),
        new("MQTT_3_3_1_2_DupOnQoS0_IsMalformed", V4, "38 03 00 01 61", Malformed),
        new("MQTT_3_3_1_2_DupOnQoS0_V5_IsMalformed", V5, "38 04 00 01 61 00", Malformed),
        new("MQTT_2_3_1_1_PublishPacketIdZero_IsProtocolError", V4, "32 05 00 01 61 00 00", Protocol),
        new("MQTT_3_3_2_2_TopicNameWithPlus_IsTopicNameInvalid", V4, "30 03 00 01 2B", ReasonCode.TopicNameInvalid),
        new("MQTT_3_3_2_2_TopicNameWithHash_IsTopicNameInvalid", V5, "30 06 00 03 61 2F 23 00", ReasonCode.TopicNameInvalid),
        new("MQTT_4_7_3_1_EmptyTopicName_IsTopicNameInvalid", V4, "30 02 00 00", ReasonCode.TopicNameInvalid),
        new("MQTT5_3_3_2_3_4_EmptyTopicWithoutAlias_IsProtocolError", V5, "30 03 00 00 00", Protocol),
        new("MQTT_3_3_2_8_TopicAliasZero_IsTopicAliasInvalid", V5, "30 07 00 01 61 03 23 00 00", ReasonCode.TopicAliasInvalid),
        new("MQTT5_3_3_2_3_8_SubscriptionIdentifierZero_IsProtocolError", V5, "30 06 00 01 61 02 0B 00", Protocol),
        new("MQTT5_3_3_2_3_2_PayloadFormatIndicator2_IsProtocolError", V5, "30 06 00 01 61 02 01 02", Protocol),
        new("MQTT5_2_2_2_2_DuplicatePayloadFormatIndicator_IsProtocolError", V5, "30 08 00 01 61 04 01 00 01 01", Protocol),
        new("MQTT_3_3_2_14_ResponseTopicWithWildcard_IsProtocolError", V5, "30 09 00 01 61 05 08 00 02 61 23", Protocol),
        new("MQTT5_2_2_2_2_ReasonStringInPublish_IsMalformed", V5, "30 07 00 01 61 03 1F 00 00", Malformed),
        new("MQTT_3_3_2_PublishMissingPacketId_IsMalformed", V4, "32 03 00 01 61", Malformed),
        new("MQTT_1_5_3_TopicLongerThanPacket_IsMalformed", V4, "30 03 00 05 61", Malformed),
        new("MQTT5_3_3_2_3_PublishMissingPropertyLength_IsMalformed", V5, "30 03 00 01 61", Malformed),

        // ---- PUBACK / PUBREC / PUBREL / PUBCOMP ----
        new("MQTT_2_2_2_2_PubAckFlags_IsMalformed", V4, "41 02 00 01", Malformed),
        new("MQTT_3_6_1_1_PubRelFlags0000_IsMalformed", V4, "60 02 00 01", Malformed),
        new("MQTT_3_6_1_1_PubRelFlags0000_V5_IsMalformed", V5, "60 02 00 01", Malformed),
        new("MQTT_2_2_2_2_PubRecFlags_IsMalformed", V5, "52 02 00 01", Malformed),
        new("MQTT_2_3_1_1_PubAckPacketIdZero_IsProtocolError", V4, "40 02 00 00", Protocol),
        new("MQTT_3_4_PubAckTrailingByte_V311_IsMalformed", V4, "40 03 00 01 00", Malformed),
        new("MQTT_3_4_PubAckTooShort_IsMalformed", V4, "40 01 00", Malformed),
        new("MQTT5_3_4_2_1_PubAckUnknownReason_IsProtocolError", V5, "40 03 00 01 05", Protocol),
        new("MQTT5_3_6_2_1_PubRelReason0x10_IsProtocolError", V5, "62 03 00 01 10", Protocol),
        new("MQTT5_2_2_2_1_PubAckPropertyLengthBeyondPacket_IsMalformed", V5, "40 05 00 01 00 05 1F", Malformed),
        new("MQTT5_2_2_2_2_UserPropertyOnlyHalf_IsMalformed", V5, "40 08 00 01 00 04 26 00 01 6B", Malformed),

        // ---- SUBSCRIBE ----
        new("MQTT_3_8_1_1_SubscribeFlags0000_IsMalformed", V4, "80 06 00 01 00 01 61 00", Malformed),
        new("MQTT_3_8_3_3_SubscribeWithoutFilters_IsProtocolError", V4, "82 02 00 01", Protocol),
        new("MQTT5_3_8_3_2_SubscribeWithoutFilters_IsProtocolError", V5, "82 03 00 01 00", Protocol),
        new("MQTT_2_3_1_1_SubscribePacketIdZero_IsProtocolError", V4, "82 06 00 00 00 01 61 00", Protocol),
        new("MQTT_3_8_3_4_RequestedQoS3_IsMalformed", V4, "82 06 00 01 00 01 61 03", Malformed),
        new("MQTT_3_8_3_4_RequestedQoSReservedBits_IsMalformed", V4, "82 06 00 01 00 01 61 04", Malformed),
        new("MQTT_3_8_3_5_SubscriptionOptionsReservedBits_IsMalformed", V5, "82 07 00 01 00 00 01 61 40", Malformed),
        new("MQTT5_3_8_3_1_SubscriptionQoS3_IsProtocolError", V5, "82 07 00 01 00 00 01 61 03", Protocol),
        new("MQTT5_3_8_3_1_RetainHandling3_IsProtocolError", V5, "82 07 00 01 00 00 01 61 30", Protocol),
        new("MQTT_3_8_3_4_NoLocalOnSharedSubscription_IsProtocolError", V5, "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 61 04", Protocol),
        new("MQTT_4_7_1_2_HashNotLast_IsTopicFilterInvalid", V4, "82 0A 00 01 00 05 61 2F 23 2F 62 00", ReasonCode.TopicFilterInvalid),
        new("MQTT_4_7_1_3_PlusNotAlone_IsTopicFilterInvalid", V4, "82 07 00 01 00 02 61 2B 00", ReasonCode.TopicFilterInvalid),
        new("MQTT_4_7_3_1_EmptyFilter_IsTopicFilterInvalid", V5, "82 06 00 01 00 00 00 00", ReasonCode.TopicFilterInvalid),
        new("MQTT5_4_8_2_ShareWithoutFilter_IsTopicFilterInvalid", V5, "82 0E 00 01 00 00 08 24 73 68 61 72 65 2F 67 00", ReasonCode.TopicFilterInvalid),
        new("MQTT5_4_8_2_ShareWithEmptyGroup_IsTopicFilterInvalid", V5, "82 0F 00 01 00 00 09 24 73 68 61 72 65 2F 2F 61 00", ReasonCode.TopicFilterInvalid),
        new("MQTT5_4_8_2_ShareGroupWithWildcard_IsTopicFilterInvalid", V5, "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 2B 2F 61 00", ReasonCode.TopicFilterInvalid),
        new("MQTT5_3_8_2_1_2_SubscriptionIdentifierZero_IsProtocolError", V5, "82 09 00 01 02 0B 00 00 01 61 00", Protocol),
        new("MQTT5_3_8_2_1_2_TwoSubscriptionIdentifiers_IsProtocolError", V5, "82 0B 00 01 04 0B 01 0B 02 00 01 61 00", Protocol),
        new("MQTT_1_5_5_SubscriptionIdentifierFiveBytes_IsMalformed", V5, "82 0D 00 01 06 0B FF FF FF FF 01 00 01 61 00", Malformed),
        new("MQTT_3_8_3_SubscribeMissingOptionsByte_IsMalformed", V4, "82 05 00 01 00 01 61", Malformed),

        // ---- SUBACK ----
        new("MQTT_3_9_3_2_SubAckReservedCode_IsProtocolError", V4, "90 03 00 01 03", Protocol),
        new("MQTT_3_9_3_SubAckWithoutCodes_IsProtocolError", V4, "90 02 00 01", Protocol),
        new("MQTT5_3_9_3_SubAckUnknownReason_IsProtocolError", V5, "90 04 00 01 00 10", Protocol),

        // ---- UNSUBSCRIBE / UNSUBACK ----
        new("MQTT_3_10_1_1_UnsubscribeFlags0000_IsMalformed", V4, "A0 05 00 01 00 01 61", Malformed),
        new("MQTT_3_10_3_2_UnsubscribeWithoutFilters_IsProtocolError", V4, "A2 02 00 01", Protocol),
        new("MQTT_4_7_1_2_UnsubscribeInvalidFilter_IsTopicFilterInvalid", V4, "A2 06 00 01 00 02 23 61", ReasonCode.TopicFilterInvalid),
        new("MQTT_3_11_UnsubAckWithPayload_V311_IsMalformed", V4, "B0 03 00 01 00", Malformed),
        new("MQTT5_3_11_3_UnsubAckUnknownReason_IsProtocolError", V5, "B0 04 00 01 00 10", Protocol),

        // ---- PINGREQ / PINGRESP / DISCONNECT / AUTH / CONNACK ----
        new("MQTT_3_12_PingReqWithBody_IsMalformed", V4, "C0 01 00", Malformed),
        new("MQTT_2_2_2_2_PingReqFlags_IsMalformed", V4, "C1 00", Malformed),
        new("MQTT_2_2_2_2_PingRespFlags_IsMalformed", V5, "D8 00", Malformed),
        new("MQTT_3_14_1_1_DisconnectFlags_IsMalformed", V4, "E2 00", Malformed),
        new("MQTT_3_14_DisconnectWithBody_V311_IsMalformed", V4, "E0 01 00", Malformed),
        new("MQTT_3_14_2_1_DisconnectUnknownReason_IsProtocolError", V5, "E0 01 01", Protocol),
        new("MQTT5_2_2_2_2_TopicAliasInDisconnect_IsMalformed", V5, "E0 05 00 03 23 00 01", Malformed),
        new("MQTT5_3_14_2_2_DuplicateReasonString_IsProtocolError", V5, "E0 08 00 06 1F 00 00 1F 00 00", Protocol),
        new("MQTT_2_2_1_AuthBeforeMqtt5_IsMalformed", V4, "F0 00", Malformed),
        new("MQTT_3_15_1_1_AuthFlags_IsMalformed", V5, "F1 00", Malformed),
        new("MQTT_3_15_2_1_AuthUnknownReason_IsProtocolError", V5, "F0 01 01", Protocol),
        new("MQTT_2_2_1_ReservedPacketType0_IsMalformed", V4, "00 00", Malformed),
        new("MQTT_3_2_2_1_ConnAckReservedFlags_IsMalformed", V4, "20 02 02 00", Malformed),
        new("MQTT_3_2_2_3_ConnAckReservedReturnCode_IsMalformed", V4, "20 02 00 06", Malformed),
        new("MQTT_3_2_2_4_SessionPresentWithRefusal_IsProtocolError", V4, "20 02 01 05", Protocol),
        new("MQTT_3_2_2_6_SessionPresentWithError_V5_IsProtocolError", V5, "20 03 01 87 00", Protocol),
        new("MQTT5_3_2_2_2_ConnAckUnknownReason_IsProtocolError", V5, "20 03 00 01 00", Protocol),
        new("MQTT5_3_2_2_3_4_MaximumQoS2_IsProtocolError", V5, "20 05 00 00 02 24 02", Protocol),
        new("MQTT5_3_2_2_3_5_DuplicateRetainAvailable_IsProtocolError", V5, "20 07 00 00 04 25 01 25 01", Protocol),
        new("MQTT5_3_2_ConnAckMissingPropertyLength_IsMalformed", V5, "20 02 00 00", Malformed),
    ];

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_Refuses(string name)
    {
        var c = Array.Find(Cases, x => x.Name == name)!;
        var ex = DecodeFails(Hex(c.Hex), c.Version);
        Assert.Equal(c.Reason, ex.Reason);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_Refuses_OneBytePerSegment(string name)
    {
        var c = Array.Find(Cases, x => x.Name == name)!;
        var buffer = SegmentPerByte(Hex(c.Hex));
        Assert.Equal(FrameStatus.Complete, FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _));
        var ex = Assert.Throws<MqttProtocolException>(() => PacketDecoder.Decode(header, body, c.Version));
        Assert.Equal(c.Reason, ex.Reason);
    }

    [Fact]
    public void Names_AreUnique()
    {
        var seen = new HashSet<string>();
        foreach (var c in Cases) Assert.True(seen.Add(c.Name), c.Name);
    }

    // ---- CONNECT protocol name/level: the exception carries what the broker needs for its CONNACK ----

    [Theory]
    [InlineData("10 0F 00 04 4D 51 54 54 06 02 00 3C 00 03 63 69 64", 6, ProtocolVersion.V311)] // unknown level
    [InlineData("10 0F 00 04 4D 51 54 54 03 02 00 3C 00 03 63 69 64", 3, ProtocolVersion.V311)] // "MQTT" with level 3
    [InlineData("10 11 00 06 4D 51 49 73 64 70 04 02 00 3C 00 03 63 69 64", 4, ProtocolVersion.V311)] // "MQIsdp" with level 4
    [InlineData("10 11 00 06 4D 51 49 73 64 70 05 02 00 3C 00 03 63 69 64", 5, ProtocolVersion.V500)] // "MQIsdp" with level 5
    [InlineData("10 0F 00 04 4D 51 54 58 05 02 00 3C 00 03 63 69 64", 5, ProtocolVersion.V500)] // unknown name "MQTX"
    [InlineData("10 0F 00 04 4D 51 54 54 86 02 00 3C 00 03 63 69 64", 0x86, ProtocolVersion.V311)] // bridge bit, unknown level
    [InlineData("10 0F 00 04 4D 51 54 54 83 02 00 3C 00 03 63 69 64", 0x83, ProtocolVersion.V311)] // bridge bit, "MQTT" with level 3
    [InlineData("10 0F 00 04 4D 51 54 54 80 02 00 3C 00 03 63 69 64", 0x80, ProtocolVersion.V311)] // the bridge bit alone
    public void MQTT_3_1_2_2_UnsupportedProtocolLevel_IsUnsupportedProtocolVersion(string hex, byte level, ProtocolVersion connAckVersion)
    {
        var ex = DecodeFails(Hex(hex), ProtocolVersion.V311);
        Assert.Equal(ReasonCode.UnsupportedProtocolVersion, ex.Reason);
        Assert.Equal(level, ex.RawProtocolLevel);
        Assert.Equal(connAckVersion, ex.Version);
    }

    [Fact]
    public void ConnectErrors_AfterTheLevel_CarryTheVersion()
    {
        var ex = DecodeFails(Hex("10 12 00 04 4D 51 54 54 05 02 00 3C 02 17 02 00 03 63 69 64"), ProtocolVersion.V311);
        Assert.Equal(ProtocolVersion.V500, ex.Version);
        ex = DecodeFails(Hex("10 0F 00 04 4D 51 54 54 04 03 00 3C 00 03 63 69 64"), ProtocolVersion.V500);
        Assert.Equal(ProtocolVersion.V311, ex.Version);
    }

    [Fact]
    public void Mqtt31_IsLenientWhere31DefinedNoRule()
    {
        // 3.1 SUBSCRIBE carried QoS 1 and could carry DUP: flags 1010 are accepted, as Mosquitto does.
        var packet = Decode(Hex("8A 06 00 01 00 01 61 00"), ProtocolVersion.V310);
        Assert.IsType<Packets.SubscribePacket>(packet);
        // Connect flag bit 0 was "unused" in 3.1.
        Assert.IsType<Packets.ConnectPacket>(Decode(Hex("10 11 00 06 4D 51 49 73 64 70 03 03 00 0A 00 03 61 62 63"), ProtocolVersion.V310));
    }
}
