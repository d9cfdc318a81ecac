using System.Runtime.CompilerServices;
using Midge.Protocol;

namespace Midge.Security;

/// <summary>Who a connected client is, for ACL checks. Keep one instance per connection (checkers may cache on it).</summary>
/// <param name="ClientId">The client identifier.</param>
/// <param name="Username">The authenticated user name, or null for an anonymous client.</param>
public sealed record ClientIdentity(string ClientId, string? Username)
{
    /// <summary>
    /// A bridge this broker runs itself (its local end): Mosquitto skips ACL checks for those. Never set for a
    /// client whose CONNECT carries the bridge bit (another broker's bridge, <c>try_private</c>): any client can set
    /// that bit, so such a client is checked like any other.
    /// </summary>
    public bool IsBridge { get; init; }
}

/// <summary>The answer to a SUBSCRIBE filter.</summary>
public enum SubscribeDecision
{
    /// <summary>Grant the subscription; each message is still checked by <see cref="IAclChecker.CanDeliver"/>.</summary>
    Allow,

    /// <summary>Refuse it (SUBACK 0x80 in v3, 0x87 Not authorized in v5): no message on it could ever be delivered.</summary>
    Deny,
}

/// <summary>
/// The broker's authorization seam. <see cref="CanPublish"/> is asked for every PUBLISH a client sends (a refusal
/// drops the message; v5 PUBACK/PUBREC 0x87), <see cref="CanDeliver"/> for every message about to be sent to a
/// subscriber (Mosquitto checks read access at delivery, against the message's topic), and
/// <see cref="CanSubscribe"/> for every SUBSCRIBE filter. Implementations must be thread-safe and fast: the first
/// two are on the publish path.
/// </summary>
public interface IAclChecker
{
    bool CanPublish(ClientIdentity client, string topic);

    bool CanDeliver(ClientIdentity client, string topic);

    SubscribeDecision CanSubscribe(ClientIdentity client, string filter);
}

/// <summary>
/// <see cref="IAclChecker"/> over an <see cref="AclFile"/> (Mosquitto's <c>acl_file</c>). The per-client rules
/// (patterns substituted) are computed once per <see cref="ClientIdentity"/> instance and per file snapshot.
/// <see cref="Reload"/> swaps the file atomically (SIGHUP).
/// </summary>
public sealed class AclFileChecker(AclFile file) : IAclChecker
{
    private readonly ConditionalWeakTable<ClientIdentity, Entry> _cache = new();
    private volatile AclFile _file = file ?? throw new ArgumentNullException(nameof(file));

    /// <summary>
    /// Refuse a SUBSCRIBE whose filter no read rule could ever allow (default). Mosquitto 2.0 grants every
    /// subscription and only filters at delivery; set false to behave exactly like it.
    /// </summary>
    public bool RefuseUnreadableSubscriptions { get; init; } = true;

    public AclFile File => _file;

    public void Reload(AclFile file) => _file = file ?? throw new ArgumentNullException(nameof(file));

    public bool CanPublish(ClientIdentity client, string topic)
    {
        if (AclFile.IsForbiddenDollarWrite(topic)) return false;
        return client.IsBridge || Acl(client).CanWrite(topic);
    }

    public bool CanDeliver(ClientIdentity client, string topic) => client.IsBridge || Acl(client).CanRead(topic);

    public SubscribeDecision CanSubscribe(ClientIdentity client, string filter)
    {
        if (client.IsBridge || !RefuseUnreadableSubscriptions) return SubscribeDecision.Allow;
        if (Topics.IsShared(filter))
        {
            if (!Topics.TryParseShared(filter, out _, out var inner)) return SubscribeDecision.Deny;
            filter = inner;
        }
        return Acl(client).CanEverRead(filter) ? SubscribeDecision.Allow : SubscribeDecision.Deny;
    }

    private ClientAcl Acl(ClientIdentity client)
    {
        ArgumentNullException.ThrowIfNull(client);
        var file = _file;
        if (_cache.TryGetValue(client, out var entry) && ReferenceEquals(entry.File, file)) return entry.Acl;
        var acl = file.ForClient(client.Username, client.ClientId);
        _cache.AddOrUpdate(client, new Entry(file, acl));
        return acl;
    }

    private sealed record Entry(AclFile File, ClientAcl Acl);
}
