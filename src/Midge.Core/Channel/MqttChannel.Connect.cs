using Midge.Core.Messages;
using Midge.Core.Security;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;

namespace Midge.Core.Channel;

public sealed partial class MqttChannel
{
    private ValueTask HandleConnect(ConnectPacket connect) => HandleConnect(connect, null);

    /// <summary>CONNECT, or its completion after enhanced authentication succeeded with
    /// <paramref name="authenticated"/> (the server-final-message to put in CONNACK). The credentials are checked
    /// by the authenticate hooks, then the password file; when one of them answers later, the rest of the CONNECT
    /// waits in <see cref="CompleteConnectAsync"/> and no thread waits with it.</summary>
    private ValueTask HandleConnect(ConnectPacket connect, byte[]? authenticated)
    {
        var config = _broker.Config;
        if (_broker.Hooks.ClientConnect.IsAttached)
        {
            _broker.Hooks.ClientConnect.Invoke(new(connect.ClientId, connect.UserName, RemoteEndPoint, connect.ProtocolVersion));
        }
        Version = connect.ProtocolVersion;
        var props = connect.Properties;
        _clientMaximumPacketSize = props?.MaximumPacketSize;
        _problemInformationAllowed = props?.RequestProblemInformation != 0;
        string clientId = connect.ClientId;
        string? assignedId = null;

        if (_listener.ServerReference is { } reference)
        {
            // MQTT 5 redirection (section 4.11): tell the client where to go; 3.x has no way to say it.
            RejectConnect(Version, _listener.ServerMoved ? ReasonCode.ServerMoved : ReasonCode.UseAnotherServer,
                "this listener redirects to " + reference, serverReference: reference);
            return default;
        }

        if (props?.AuthenticationMethod is { } method && authenticated is null)
        {
            StartEnhancedAuthentication(connect, method, props.AuthenticationData);
            return default;
        }

        // use_identity_as_username / use_subject_as_username: the TLS client certificate names the user, whatever
        // CONNECT says, and no password is checked (Mosquitto). No certificate: bad user name or password.
        bool certificateIdentity = _listener.Tls?.UsesCertificateIdentity == true;
        string? userName = connect.UserName;
        if (certificateIdentity)
        {
            if (CertificateUserName is null)
            {
                RejectConnect(Version, ReasonCode.BadUserNameOrPassword, "no client certificate identity",
                    ConnectReturnCode.BadUserNameOrPassword);
                return default;
            }
            userName = CertificateUserName;
        }

        if (_listener.UseUsernameAsClientId)
        {
            if (userName is null)
            {
                RejectConnect(Version, ReasonCode.NotAuthorized, "use_username_as_clientid needs a username");
                return default;
            }
            clientId = userName;
        }
        else if (clientId.Length == 0)
        {
            // MQTT-3.1.3-8 (3.1.1): a zero-length id needs Clean Session; 3.1 does not allow it at all.
            if (Version == ProtocolVersion.V310 || !_listener.AllowZeroLengthClientId ||
                (Version == ProtocolVersion.V311 && !connect.CleanStart))
            {
                RejectConnect(Version, ReasonCode.ClientIdentifierNotValid, "zero-length client id not allowed");
                return default;
            }
            clientId = _listener.AutoIdPrefix + Guid.NewGuid().ToString("N");
            assignedId = clientId;
        }

        if (config.ClientIdPrefixes.Count > 0 && !HasAllowedPrefix(clientId, config.ClientIdPrefixes))
        {
            RejectConnect(Version, ReasonCode.NotAuthorized, "client id prefix not allowed");
            return default;
        }

        if (!AdmitConnect(clientId, assigned: assignedId is not null, userName)) return default;

        _security = _broker.Security.For(_listener);
        // The bridge bit in a CONNECT (another broker's bridge, try_private) changes what the client is sent
        // (Session.IsBridge), never what it may do: any client can set it, so the ACL applies as to any client, as in
        // Mosquitto, which exempts only the bridges it runs itself.
        var identity = new ClientIdentity(clientId, userName);
        if (authenticated is null)
        {
            var verdict = CheckCredentials(connect, clientId, userName, certificateIdentity);
            if (!verdict.IsCompletedSuccessfully) return CompleteConnectAsync(verdict, connect, clientId, assignedId, identity, certificateIdentity);
            if (verdict.Result is { } failure)
            {
                RefuseCredentials(failure);
                return default;
            }
        }
        return CompleteConnect(connect, authenticated, clientId, assignedId, identity, certificateIdentity);
    }

    /// <summary>The rest of a CONNECT whose credentials were answered later. The connection may have been closed
    /// meanwhile (connect_timeout, shutdown): then nothing more happens.</summary>
    private async ValueTask CompleteConnectAsync(ValueTask<string?> verdict, ConnectPacket connect, string clientId, string? assignedId,
        ClientIdentity identity, bool certificateIdentity)
    {
        string? failure;
        try
        {
            // A backend that never answers holds this connection no longer than connect_timeout.
            failure = await verdict.AsTask().WaitAsync(TimeSpan.FromMilliseconds(ConnectTimeoutMs)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            failure = "the authentication did not answer within connect_timeout";
        }
        if (Volatile.Read(ref _state) != 0) return;
        if (failure is not null)
        {
            RefuseCredentials(failure);
            return;
        }
        await CompleteConnect(connect, null, clientId, assignedId, identity, certificateIdentity).ConfigureAwait(false);
    }

    /// <summary>0x87 Not authorized for a failed login (3.x: 5), as Mosquitto answers: clients and scripts test for it.</summary>
    private void RefuseCredentials(string failure)
    {
        _broker.Stats.OnAuthenticationFailed();
        RejectConnect(Version, ReasonCode.NotAuthorized, failure);
    }

    /// <summary>The checks and the session after the credentials passed. Completes synchronously unless a cluster
    /// claims the client id first (<see cref="Broker.SessionClaims"/>).</summary>
    private ValueTask CompleteConnect(ConnectPacket connect, byte[]? authenticated, string clientId, string? assignedId,
        ClientIdentity identity, bool certificateIdentity)
    {
        var config = _broker.Config;
        var props = connect.Properties;
        string? userName = identity.Username;
        ushort keepAlive = connect.KeepAlive;
        bool serverKeepAlive = false;
        if (config.MaxKeepalive < 65535 && (keepAlive > config.MaxKeepalive || keepAlive == 0))
        {
            if (Version != ProtocolVersion.V500)
            {
                RejectConnect(Version, ReasonCode.ClientIdentifierNotValid, $"keep alive {keepAlive} exceeds max_keepalive");
                return default;
            }
            keepAlive = config.MaxKeepalive;
            serverKeepAlive = true;
        }

        if (connect.Will is { } will)
        {
            if ((int)will.QoS > _listener.MaxQoS)
            {
                RejectConnect(Version, ReasonCode.QoSNotSupported, "will QoS exceeds max_qos");
                return default;
            }
            if (will.Retain && !config.RetainAvailable)
            {
                RejectConnect(Version, ReasonCode.RetainNotSupported, "retain not available");
                return default;
            }
            if (config.MessageSizeLimit > 0 && will.Payload.Length > config.MessageSizeLimit)
            {
                // As Mosquitto answers: MQTT 5 0x95 Packet too large, 3.x 'not authorised'.
                RejectConnect(Version, ReasonCode.PacketTooLarge, $"will payload of {will.Payload.Length} bytes exceeds message_size_limit",
                    ConnectReturnCode.NotAuthorized);
                return default;
            }
            int maxLevels = config.Protection.MaxTopicLevels;
            if (maxLevels > 0 && CountLevels(will.Topic) > maxLevels)
            {
                // 3.x has no code for it: 'not authorised', as for a will topic the ACL refuses.
                RejectConnect(Version, ReasonCode.TopicNameInvalid, $"will topic deeper than max_topic_levels {maxLevels}",
                    ConnectReturnCode.NotAuthorized);
                return default;
            }
            if (_listener.MountPoint is { } mount) will.Topic = mount + will.Topic;
            if (IsReservedTopic(will.Topic) || _security.Acl?.CanPublish(identity, will.Topic) == false)
            {
                RejectConnect(Version, ReasonCode.NotAuthorized, "will topic not authorised");
                return default;
            }
        }

        uint expiry = Version == ProtocolVersion.V500
            ? props?.SessionExpiryInterval ?? 0
            : connect.CleanStart ? 0 : uint.MaxValue;
        uint? cappedExpiry = null;
        if (Version == ProtocolVersion.V500 && config.MaxSessionExpiryInterval is { } cap && expiry > cap)
        {
            expiry = cap; // told to the client in CONNACK (MQTT-3.2.2-? Session Expiry Interval)
            cappedExpiry = cap;
        }

        _password = certificateIdentity ? null : connect.Password;
        _identity = identity;
        KeepAlive = keepAlive;
        _will = connect.Will;

        // The CONNACK is made before the session is touched: one the client could not take ends the attempt
        // with nothing changed (MQTT-3.1.2-24; Session Present is a flag bit, so its value changes no size).
        var connack = BuildConnAck(config, sessionPresent: false, assignedId, serverKeepAlive ? keepAlive : null);
        if (Version == ProtocolVersion.V500)
        {
            var p = connack.GetOrCreateProperties();
            if (authenticated is not null)
            {
                p.AuthenticationMethod = _enhancedAuth?.Method;
                p.AuthenticationData = authenticated;
            }
            if (cappedExpiry is { } capped) p.SessionExpiryInterval = capped;
            if (props?.RequestResponseInformation == 1 && config.ResponseInformation is { } info)
            {
                p.ResponseInformation = info.Replace("%c", clientId, StringComparison.Ordinal);
            }
        }
        if (!FitsClient(connack))
        {
            Close($"CONNACK of {PacketEncoder.GetSize(connack, Version)} bytes exceeds the client's Maximum Packet Size {_clientMaximumPacketSize}");
            return default;
        }

        if (_broker.SessionClaims is { } claims)
        {
            // A cluster: the client id is claimed across the cluster first; a session another node gave up comes back
            // with the claim and is resumed here.
            var claim = claims.ClaimAsync(clientId, connect.CleanStart);
            if (!claim.IsCompletedSuccessfully) return AttachAfterClaimAsync(claim, connect, config, connack, identity, clientId, expiry, keepAlive);
            _broker.ImportSession(claim.Result, connect.CleanStart);
        }
        AttachSession(connect, config, connack, identity, clientId, expiry, keepAlive);
        return default;
    }

    /// <summary>The rest of a CONNECT whose client id the cluster claimed asynchronously. The connection may have been
    /// closed meanwhile: then the session that came with the claim waits, offline, for the client.</summary>
    private async ValueTask AttachAfterClaimAsync(ValueTask<SessionState?> claim, ConnectPacket connect, Config.BrokerConfig config,
        ConnAckPacket connack, ClientIdentity identity, string clientId, uint expiry, ushort keepAlive)
    {
        var moved = await claim.ConfigureAwait(false);
        _broker.ImportSession(moved, connect.CleanStart);
        if (Volatile.Read(ref _state) != 0) return;
        AttachSession(connect, config, connack, identity, clientId, expiry, keepAlive);
    }

    /// <summary>Takes the session (the registry decides: new, resumed or taken over), answers CONNACK, attaches.</summary>
    private void AttachSession(ConnectPacket connect, Config.BrokerConfig config, ConnAckPacket connack, ClientIdentity identity,
        string clientId, uint expiry, ushort keepAlive)
    {
        var props = connect.Properties;
        string? userName = identity.Username;
        long now = _broker.NowMs;
        // The client registry takes over or ends an existing session, or resumes it, under the client id's lock, and
        // calls back (still under it) for the CONNACK and the attachment.
        var session = _broker.Clients.Connect(clientId, connect.CleanStart, expiry, now, (attached, sessionPresent) =>
        {
            _session = attached;
            Volatile.Write(ref _state, 1);
            connack.SessionPresent = sessionPresent;
            _output.Send(connack);
            var limits = new ClientLimits
            {
                Version = Version,
                SendWindow = SendWindow(config, props),
                MaxPacketSize = props?.MaximumPacketSize ?? 0,
                MountPoint = _listener.MountPoint,
                Acl = identity.IsBridge ? null : _security.Acl,
                Identity = identity,
                // As Mosquitto: a 3.x bridge gets No Local and Retain As Published on everything; an MQTT 5 client
                // chooses them per subscription, bridge bit or not (Mosquitto's own MQTT 5 bridges do, without it).
                IsBridge = connect.IsBridge && Version != ProtocolVersion.V500,
            };
            attached.Attach(this, _output, limits, now);
            if (_broker.SessionStore is not null) attached.RecordWill(StoredWill());
        });
        OutgoingTopicAliasMaximum = Version == ProtocolVersion.V500
            ? Math.Min(props?.TopicAliasMaximum ?? (ushort)0, config.MaxOutgoingTopicAlias)
            : 0;
        _broker.DrainSharedQueues(session);
        if (_will is { } will && _broker.ClusterWills is { } wills)
        {
            wills.WillSet(clientId, this, Message.Create(will.Topic, will.Payload, will.QoS, will.Retain, WillPublishProperties(will.Properties),
                clientId, _broker.NowMs), will.Properties?.WillDelayInterval ?? 0);
        }
        _broker.Stats.OnClientConnected();
        if (_broker.Hooks.ClientConnected.IsAttached)
        {
            _broker.Hooks.ClientConnected.Invoke(new(clientId, userName, RemoteEndPoint, Version));
        }
        if (config.ConnectionMessages)
        {
            Log.ClientConnected(_broker.Logger, _remote, clientId, Version, connect.CleanStart, keepAlive, userName, connect.IsBridge);
        }
    }

    private ConnAckPacket BuildConnAck(Config.BrokerConfig config, bool sessionPresent, string? assignedId, ushort? serverKeepAlive)
    {
        var connack = new ConnAckPacket { SessionPresent = sessionPresent, ReasonCode = ReasonCode.Success };
        if (Version != ProtocolVersion.V500) return connack;
        var p = connack.GetOrCreateProperties();
        if (config.MaxInflightMessages is > 0 and < 65535) p.ReceiveMaximum = (ushort)config.MaxInflightMessages;
        if (_listener.MaxQoS < 2) p.MaximumQoS = (byte)_listener.MaxQoS;
        if (!config.RetainAvailable) p.RetainAvailable = 0;
        if (config.MaxPacketSize > 0) p.MaximumPacketSize = (uint)config.MaxPacketSize;
        if (assignedId is not null) p.AssignedClientIdentifier = assignedId;
        p.TopicAliasMaximum = _listener.MaxTopicAlias;
        if (serverKeepAlive is { } ka) p.ServerKeepAlive = ka;
        return connack;
    }

    /// <summary>
    /// Checks a CONNECT's credentials: the authenticate hooks first (<see cref="Hooks.BrokerHooks.Authenticate"/>),
    /// then, when they all defer, Mosquitto's rules (<see cref="CheckPasswordFile"/>); a listener that takes the user
    /// name from the client certificate checks no password. Null when the client may connect, else why not.
    /// </summary>
    private ValueTask<string?> CheckCredentials(ConnectPacket connect, string clientId, string? userName, bool certificateIdentity)
    {
        var hooks = _broker.Hooks.Authenticate;
        if (hooks.IsAttached)
        {
            var context = new Hooks.AuthenticateContext(clientId, userName, certificateIdentity ? null : connect.Password,
                RemoteEndPoint, Version, _listener.Port);
            var pending = hooks.DecideAsync(context);
            if (!pending.IsCompletedSuccessfully) return AfterAuthenticateHooksAsync(pending, connect, clientId, certificateIdentity);
            if (pending.Result != Hooks.HookVerdict.Defer) return ValueTask.FromResult(HookFailure(pending.Result));
        }
        return certificateIdentity ? ValueTask.FromResult<string?>(null) : CheckPasswordFile(connect, clientId);
    }

    private async ValueTask<string?> AfterAuthenticateHooksAsync(ValueTask<Hooks.HookVerdict> pending, ConnectPacket connect, string clientId,
        bool certificateIdentity)
    {
        var verdict = await pending.ConfigureAwait(false);
        if (verdict != Hooks.HookVerdict.Defer) return HookFailure(verdict);
        return certificateIdentity ? null : await CheckPasswordFile(connect, clientId).ConfigureAwait(false);
    }

    private string? HookFailure(Hooks.HookVerdict verdict)
    {
        if (verdict != Hooks.HookVerdict.Allow) return "refused by an authentication hook";
        _admittedByHook = true;
        return null;
    }

    /// <summary>
    /// Mosquitto's rules: without a user name, allow_anonymous decides; with one, the password file (when there
    /// is one) must accept it; with neither a password file nor allow_anonymous, nobody gets in. Null when the
    /// client may connect, else why not. Completes synchronously for a password file; an asynchronous
    /// authenticator is awaited, never waited for.
    /// </summary>
    private ValueTask<string?> CheckPasswordFile(ConnectPacket connect, string clientId)
    {
        bool allowAnonymous = _localOnly || (_listener.AllowAnonymous ?? false);
        if (connect.UserName is null || _security.Authenticator is null)
        {
            if (allowAnonymous) return ValueTask.FromResult<string?>(null);
            return ValueTask.FromResult<string?>(connect.UserName is null
                ? "anonymous connections are not allowed (allow_anonymous false)"
                : "bad user name or password");
        }
        var pending = _security.Authenticator.AuthenticateAsync(
            new AuthRequest(clientId, connect.UserName, connect.Password), CancellationToken.None);
        if (pending.IsCompletedSuccessfully) return ValueTask.FromResult(PasswordFailure(pending.Result, allowAnonymous));
        return AwaitPasswordAsync(pending, allowAnonymous);

        static async ValueTask<string?> AwaitPasswordAsync(ValueTask<AuthResult> pending, bool allowAnonymous) =>
            PasswordFailure(await pending.ConfigureAwait(false), allowAnonymous);
    }

    private static string? PasswordFailure(AuthResult result, bool allowAnonymous) =>
        result.Outcome == AuthOutcome.Allow || (result.Outcome == AuthOutcome.Defer && allowAnonymous) ? null : "bad user name or password";

    /// <summary>After a reload: closes the connection if its credentials no longer pass (MQTT 5: 0x87).</summary>
    internal void RecheckCredentials(Config.BrokerConfig config)
    {
        if (!IsConnected || _session is not { } session) return;
        foreach (var l in config.Listeners)
        {
            if (l.Port == _listener.Port && l.BindAddress == _listener.BindAddress && l.UnixSocketPath == _listener.UnixSocketPath) _listener = l;
        }
        _security = _broker.Security.For(_listener);
        // A client that an authenticate hook let in is the hook's to judge: the files the reload changed do not apply.
        if (_listener.Tls?.UsesCertificateIdentity == true || _admittedByHook)
        {
            AfterRecheck(session, stillValid: true);
            return;
        }
        if (_enhancedAuth?.Credential is { } credential)
        {
            AfterRecheck(session, UserName is not null && _security.Credentials?.Invoke(UserName)?.ToString() == credential);
            return;
        }
        var pending = CheckPasswordFile(new ConnectPacket { UserName = UserName, Password = _password }, session.ClientId);
        if (pending.IsCompletedSuccessfully) AfterRecheck(session, pending.Result is null);
        else _ = RecheckLaterAsync(pending, session);
    }

    private async Task RecheckLaterAsync(ValueTask<string?> pending, Session session)
    {
        string? failure;
        try
        {
            failure = await pending.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex.Message;
        }
        if (IsConnected) AfterRecheck(session, failure is null);
    }

    private void AfterRecheck(Session session, bool stillValid)
    {
        if (stillValid)
        {
            if (_identity is { IsBridge: false }) session.SetAcl(_security.Acl); // an acl_file added by the reload
            return;
        }
        Log.CredentialsRevoked(_broker.Logger, session.ClientId);
        ServerDisconnect(ReasonCode.NotAuthorized, publishWill: true, "credentials no longer valid");
    }

    /// <summary>How many QoS 1/2 PUBLISHes may await acknowledgement: the client's Receive Maximum
    /// (MQTT-3.3.4-9) capped by max_inflight_messages (0 = no cap).</summary>
    private static int SendWindow(Config.BrokerConfig config, MqttProperties? props)
    {
        int window = props?.ReceiveMaximum ?? 65535;
        if (config.MaxInflightMessages > 0 && config.MaxInflightMessages < window) window = config.MaxInflightMessages;
        return window;
    }

    /// <summary>Answers CONNECT with a failure CONNACK and closes (MQTT-3.2.2-5/-6).</summary>
    private void RejectConnect(ProtocolVersion version, ReasonCode reason, string message, ConnectReturnCode? v3Code = null,
        string? serverReference = null)
    {
        if (Interlocked.Exchange(ref _state, 2) == 2) return;
        Version = version;
        Log.ConnectRejected(_broker.Logger, RemoteEndPoint, reason, message);
        var connack = new ConnAckPacket { ReasonCode = reason };
        if (version == ProtocolVersion.V500)
        {
            if (serverReference is not null) connack.GetOrCreateProperties().ServerReference = serverReference;
            if (_problemInformationAllowed) connack.GetOrCreateProperties().ReasonString = message;
        }
        else if (v3Code is { } code)
        {
            connack.V3ReturnCode = code;
        }
        else if (reason == ReasonCode.ClientIdentifierNotValid)
        {
            connack.V3ReturnCode = ConnectReturnCode.IdentifierRejected;
        }
        else if (reason is ReasonCode.UseAnotherServer or ReasonCode.ServerMoved)
        {
            connack.V3ReturnCode = ConnectReturnCode.ServerUnavailable;
        }
        else if (reason == ReasonCode.BadUserNameOrPassword)
        {
            // Mosquitto answers a failed login on 3.x with "not authorised" (5); scripts see the same error.
            connack.V3ReturnCode = ConnectReturnCode.NotAuthorized;
        }
        _output.Close(FitsClient(connack) ? connack : null); // too large even without its reason: closed unanswered
    }

    private static bool HasAllowedPrefix(string clientId, IReadOnlyList<string> prefixes)
    {
        foreach (var prefix in prefixes)
        {
            if (clientId.StartsWith(prefix, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>
    /// Topics clients may not publish to: the broker's own $SYS tree and the $share prefix. The one exception
    /// is Mosquitto's: <c>$SYS/broker/connection/NAME/state</c>, where a bridge from another broker sets its
    /// will and publishes its state (notifications on, Mosquitto's default); the ACL still applies to it.
    /// </summary>
    internal static bool IsReservedTopic(string topic) =>
        (topic.StartsWith("$SYS", StringComparison.Ordinal) && !IsBridgeStateTopic(topic)) ||
        topic.StartsWith("$share/", StringComparison.Ordinal);

    private const string BridgeStatePrefix = "$SYS/broker/connection/", BridgeStateSuffix = "/state";

    /// <summary>Whether the topic matches <c>$SYS/broker/connection/+/state</c> (an empty name matches + too).</summary>
    private static bool IsBridgeStateTopic(string topic) =>
        topic.Length >= BridgeStatePrefix.Length + BridgeStateSuffix.Length &&
        topic.StartsWith(BridgeStatePrefix, StringComparison.Ordinal) &&
        topic.EndsWith(BridgeStateSuffix, StringComparison.Ordinal) &&
        !topic.AsSpan(BridgeStatePrefix.Length, topic.Length - BridgeStatePrefix.Length - BridgeStateSuffix.Length).Contains('/');
}
