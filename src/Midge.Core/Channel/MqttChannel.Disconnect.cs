using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;

namespace Midge.Core.Channel;

public sealed partial class MqttChannel
{
    private void HandleDisconnect(DisconnectPacket disconnect)
    {
        var session = _session!;
        if (Version == ProtocolVersion.V500 && disconnect.Properties?.SessionExpiryInterval is { } expiry)
        {
            // MQTT-3.14.2-2: a session that was to end at close may not be given a lifetime at DISCONNECT.
            if (session.ExpiryInterval == 0 && expiry != 0)
            {
                throw new MqttProtocolException(ReasonCode.ProtocolError, "session expiry set at DISCONNECT after 0 at CONNECT");
            }
            if (_broker.Config.MaxSessionExpiryInterval is { } cap && expiry > cap) expiry = cap;
            session.ExpiryInterval = expiry;
        }
        // MQTT-3.14.4-3: a normal DISCONNECT discards the will; 0x04 asks for it to be sent.
        if (!(Version == ProtocolVersion.V500 && disconnect.ReasonCode == ReasonCode.DisconnectWithWillMessage)) _will = null;
        if (Interlocked.Exchange(ref _state, 2) == 2) return;
        _output.Close(null);
    }

    /// <summary>MQTT 5 enhanced authentication (section 4.12): SCRAM over CONNECT/AUTH/CONNACK.</summary>
    private void StartEnhancedAuthentication(ConnectPacket connect, string method, byte[]? clientFirst)
    {
        _security = _broker.Security.For(_listener);
        if (!ScramServerExchange.IsSupported(method) || _security.Credentials is not { } credentials)
        {
            RejectConnect(Version, ReasonCode.BadAuthenticationMethod, $"authentication method '{method}' is not supported");
            return;
        }
        _enhancedAuth = new EnhancedAuthentication(method)
        {
            Exchange = new ScramServerExchange(method, credentials),
            PendingConnect = connect,
        };
        var step = _enhancedAuth.Exchange.Step(clientFirst ?? []);
        if (step.Outcome != ScramOutcome.Continue)
        {
            RejectConnect(Version, ReasonCode.BadUserNameOrPassword, step.Error ?? "authentication failed");
            return;
        }
        Volatile.Write(ref _state, 3);
        Send(AuthReply(ReasonCode.ContinueAuthentication, step.Data));
    }

    private ValueTask HandleAuth(AuthPacket auth)
    {
        var props = auth.Properties;
        // MQTT-3.15.2-? / 4.12: AUTH without an agreed method, or with another method, is a protocol error.
        if (_enhancedAuth is not { } enhanced || props?.AuthenticationMethod != enhanced.Method)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "AUTH without the authentication method agreed at CONNECT");
        }
        if (_state == 3)
        {
            if (auth.ReasonCode != ReasonCode.ContinueAuthentication || enhanced.Exchange is not { } exchange)
            {
                throw new MqttProtocolException(ReasonCode.ProtocolError, "unexpected AUTH reason during authentication");
            }
            var step = exchange.Step(props.AuthenticationData ?? []);
            if (step.Outcome != ScramOutcome.Success)
            {
                RejectConnect(Version, ReasonCode.BadUserNameOrPassword, step.Error ?? "authentication failed");
                return default;
            }
            var connect = enhanced.PendingConnect!;
            connect.UserName = exchange.UserName;
            enhanced.Credential = _security.Credentials?.Invoke(exchange.UserName!)?.ToString();
            enhanced.Exchange = null;
            enhanced.PendingConnect = null;
            Volatile.Write(ref _state, 0);
            return HandleConnect(connect, step.Data);
        }

        // Re-authentication of a connected client (section 4.12.1).
        if (auth.ReasonCode == ReasonCode.ReAuthenticate)
        {
            enhanced.Exchange = new ScramServerExchange(enhanced.Method, _security.Credentials!);
            var first = enhanced.Exchange.Step(props.AuthenticationData ?? []);
            if (first.Outcome != ScramOutcome.Continue)
            {
                ServerDisconnect(ReasonCode.NotAuthorized, publishWill: true, first.Error);
                return default;
            }
            Send(AuthReply(ReasonCode.ContinueAuthentication, first.Data));
            return default;
        }
        if (auth.ReasonCode != ReasonCode.ContinueAuthentication || enhanced.Exchange is not { } reauth)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "AUTH continue without a re-authentication in progress");
        }
        var final = reauth.Step(props.AuthenticationData ?? []);
        // The same user must re-authenticate; a different one would change who the session belongs to.
        if (final.Outcome != ScramOutcome.Success || reauth.UserName != UserName)
        {
            enhanced.Exchange = null;
            ServerDisconnect(ReasonCode.NotAuthorized, publishWill: true, final.Error ?? "re-authentication as another user");
            return default;
        }
        enhanced.Credential = _security.Credentials?.Invoke(UserName!)?.ToString();
        enhanced.Exchange = null;
        Send(AuthReply(ReasonCode.Success, final.Data));
        return default;
    }

    private AuthPacket AuthReply(ReasonCode reason, byte[]? data)
    {
        var reply = new AuthPacket { ReasonCode = reason };
        var p = reply.GetOrCreateProperties();
        p.AuthenticationMethod = _enhancedAuth?.Method;
        p.AuthenticationData = data;
        return reply;
    }

    /// <summary>The SCRAM state of a client that gave an Authentication Method at CONNECT; most clients give none,
    /// so it is one object made then, not fields in every channel.</summary>
    private sealed class EnhancedAuthentication(string method)
    {
        public string Method { get; } = method;
        /// <summary>The exchange in progress (at CONNECT or a re-authentication); null between exchanges.</summary>
        public ScramServerExchange? Exchange;
        /// <summary>The CONNECT that completes when the exchange succeeds.</summary>
        public ConnectPacket? PendingConnect;
        /// <summary>The stored credential the client proved, for the re-check after a reload.</summary>
        public string? Credential;
    }
}
