namespace Midge.Protocol;

/// <summary>A user property (UTF-8 string pair). Order and duplicates are significant.</summary>
public readonly record struct UserProperty(string Name, string Value);

/// <summary>
/// The MQTT 5 properties of one packet. A null field means the property was absent. Which properties a
/// packet may carry is enforced by the decoder (a disallowed property is a malformed packet); the encoder
/// writes whatever is set.
/// </summary>
public sealed class MqttProperties
{
    public byte? PayloadFormatIndicator { get; set; }
    public uint? MessageExpiryInterval { get; set; }
    public string? ContentType { get; set; }
    public string? ResponseTopic { get; set; }
    public byte[]? CorrelationData { get; set; }
    /// <summary>PUBLISH (server to client) may carry several; SUBSCRIBE carries at most one.</summary>
    public List<uint>? SubscriptionIdentifiers { get; set; }
    public uint? SessionExpiryInterval { get; set; }
    public string? AssignedClientIdentifier { get; set; }
    public ushort? ServerKeepAlive { get; set; }
    public string? AuthenticationMethod { get; set; }
    public byte[]? AuthenticationData { get; set; }
    public byte? RequestProblemInformation { get; set; }
    public uint? WillDelayInterval { get; set; }
    public byte? RequestResponseInformation { get; set; }
    public string? ResponseInformation { get; set; }
    public string? ServerReference { get; set; }
    public string? ReasonString { get; set; }
    public ushort? ReceiveMaximum { get; set; }
    public ushort? TopicAliasMaximum { get; set; }
    public ushort? TopicAlias { get; set; }
    public byte? MaximumQoS { get; set; }
    public byte? RetainAvailable { get; set; }
    public List<UserProperty>? UserProperties { get; set; }
    public uint? MaximumPacketSize { get; set; }
    public byte? WildcardSubscriptionAvailable { get; set; }
    public byte? SubscriptionIdentifierAvailable { get; set; }
    public byte? SharedSubscriptionAvailable { get; set; }

    public MqttProperties Clone()
    {
        var copy = (MqttProperties)MemberwiseClone();
        if (SubscriptionIdentifiers is not null) copy.SubscriptionIdentifiers = [.. SubscriptionIdentifiers];
        if (UserProperties is not null) copy.UserProperties = [.. UserProperties];
        return copy;
    }

    public void AddUserProperty(string name, string value) => (UserProperties ??= []).Add(new UserProperty(name, value));
}
