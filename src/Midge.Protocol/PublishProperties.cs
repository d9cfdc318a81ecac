using System.Collections.Immutable;
using Midge.Protocol.Internal;

namespace Midge.Protocol;

/// <summary>
/// The MQTT 5 properties of an application message that a broker forwards to every receiver as they came: Payload
/// Format Indicator, Content Type, Response Topic, Correlation Data and User Properties. The others a PUBLISH may
/// carry are per receiver (Message Expiry Interval, Subscription Identifiers, Topic Alias: see
/// <see cref="OutgoingPublish"/>).
/// </summary>
/// <remarks>
/// Immutable, and encoded once when made: every PUBLISH that carries them copies the same bytes, however many
/// receivers there are. Correlation Data is read back from those bytes, so nothing outside holds it.
/// </remarks>
public sealed class PublishProperties
{
    private readonly byte[] _encoded;
    private readonly int _correlationAt = -1;
    private readonly int _correlationLength;

    public PublishProperties(byte? payloadFormatIndicator = null, string? contentType = null, string? responseTopic = null,
        ReadOnlyMemory<byte>? correlationData = null, ImmutableArray<UserProperty> userProperties = default)
    {
        PayloadFormatIndicator = payloadFormatIndicator;
        ContentType = contentType;
        ResponseTopic = responseTopic;
        UserProperties = userProperties.IsDefault ? [] : userProperties;

        int size = 0;
        if (payloadFormatIndicator.HasValue) size += 2;
        if (contentType is not null) size += 1 + MqttWriter.StringSize(contentType);
        if (responseTopic is not null) size += 1 + MqttWriter.StringSize(responseTopic);
        if (correlationData is { } cd) size += 3 + cd.Length;
        foreach (var u in UserProperties) size += 1 + MqttWriter.StringSize(u.Name) + MqttWriter.StringSize(u.Value);

        // In identifier order, as PropertyCodec.WriteContent writes a packet's own properties.
        _encoded = new byte[size];
        var w = new MqttWriter(_encoded);
        if (payloadFormatIndicator is { } pfi) PropertyCodec.WriteByteProperty(ref w, PropertyId.PayloadFormatIndicator, pfi);
        if (contentType is not null) PropertyCodec.WriteStringProperty(ref w, PropertyId.ContentType, contentType);
        if (responseTopic is not null) PropertyCodec.WriteStringProperty(ref w, PropertyId.ResponseTopic, responseTopic);
        if (correlationData is { } data)
        {
            w.WriteByte((byte)PropertyId.CorrelationData);
            _correlationAt = w.Written + 2;
            _correlationLength = data.Length;
            w.WriteBinary(data.Span);
        }
        foreach (var u in UserProperties)
        {
            w.WriteByte((byte)PropertyId.UserProperty);
            w.WriteString(u.Name);
            w.WriteString(u.Value);
        }
    }

    public byte? PayloadFormatIndicator { get; }

    public string? ContentType { get; }

    public string? ResponseTopic { get; }

    /// <summary>Correlation Data, or null when the message has none (an empty one is not null).</summary>
    public ReadOnlyMemory<byte>? CorrelationData =>
        _correlationAt < 0 ? null : new ReadOnlyMemory<byte>(_encoded, _correlationAt, _correlationLength);

    /// <summary>User Properties in the order they came (empty when none).</summary>
    public ImmutableArray<UserProperty> UserProperties { get; }

    /// <summary>The size of the encoded properties (without a length prefix).</summary>
    public int EncodedSize => _encoded.Length;

    /// <summary>The forwarded properties of a decoded PUBLISH (or will), or null when it has none of them.</summary>
    public static PublishProperties? From(MqttProperties? p)
    {
        if (p is null) return null;
        bool users = p.UserProperties is { Count: > 0 };
        if (p.PayloadFormatIndicator is null && p.ContentType is null && p.ResponseTopic is null && p.CorrelationData is null && !users)
        {
            return null;
        }
        return new PublishProperties(p.PayloadFormatIndicator, p.ContentType, p.ResponseTopic,
            p.CorrelationData is { } cd ? new ReadOnlyMemory<byte>(cd) : null, users ? [.. p.UserProperties!] : default);
    }

    /// <summary>A mutable copy, for code that works with <see cref="MqttProperties"/> (a session store's records,
    /// say).</summary>
    public MqttProperties ToMqttProperties() => new()
    {
        PayloadFormatIndicator = PayloadFormatIndicator,
        ContentType = ContentType,
        ResponseTopic = ResponseTopic,
        CorrelationData = CorrelationData?.ToArray(),
        UserProperties = UserProperties.IsEmpty ? null : [.. UserProperties],
    };

    internal void WriteTo(ref MqttWriter w) => w.WriteBytes(_encoded);
}
