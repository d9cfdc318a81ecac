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
        _authMethod = method;
        _pendingConnect = connect;
        _auth = new ScramServerExchange(method, credentials);
        var step = _auth.Step(clientFirst ?? []);
        if (step.Outcome != ScramOutcome.Continue)
        {
            RejectConnect(Version, ReasonCode.BadUserNameOrPassword, step.Error ?? "authentication failed");
            return;
        }
        Volatile.Write(ref _state, 3);
        _output.Send(AuthReply(ReasonCode.ContinueAuthentication, step.Data));
    }

    private void HandleAuth(AuthPacket auth)
    {
        var props = auth.Properties;
        // MQTT-3.15.2-? / 4.12: AUTH without an agreed method, or with another method, is a protocol error.
        if (_authMethod is null || props?.AuthenticationMethod != _authMethod)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "AUTH without the authentication method agreed at CONNECT");
        }
        if (_state == 3)
        {
            if (auth.ReasonCode != ReasonCode.ContinueAuthentication || _auth is null)
            {
                throw new MqttProtocolException(ReasonCode.ProtocolError, "unexpected AUTH reason during authentication");
            }
            var step = _auth.Step(props.AuthenticationData ?? []);
            if (step.Outcome != ScramOutcome.Success)
            {
                RejectConnect(Version, ReasonCode.BadUserNameOrPassword, step.Error ?? "authentication failed");
                return;
            }
            var connect = _pendingConnect!;
            connect.UserName = _auth.UserName;
            _scramCredential = _security.Credentials?.Invoke(_auth.UserName!)?.ToString();
            _auth = null;
            _pendingConnect = null;
            Volatile.Write(ref _state, 0);
            HandleConnect(connect, step.Data);
            return;
        }

        // Re-authentication of a connected client (section 4.12.1).
        if (auth.ReasonCode == ReasonCode.ReAuthenticate)
        {
            _auth = new ScramServerExchange(_authMethod, _security.Credentials!);
            var first = _auth.Step(props.AuthenticationData ?? []);
            if (first.Outcome != ScramOutcome.Continue)
            {
                ServerDisconnect(ReasonCode.NotAuthorized, publishWill: true, first.Error);
                return;
            }
            _output.Send(AuthReply(ReasonCode.ContinueAuthentication, first.Data));
            return;
        }
        if (auth.ReasonCode != ReasonCode.ContinueAuthentication || _auth is null)
        {
            throw new MqttProtocolException(ReasonCode.ProtocolError, "AUTH continue without a re-authentication in progress");
        }
        var final = _auth.Step(props.AuthenticationData ?? []);
        // The same user must re-authenticate; a different one would change who the session belongs to.
        if (final.Outcome != ScramOutcome.Success || _auth.UserName != UserName)
        {
            _auth = null;
            ServerDisconnect(ReasonCode.NotAuthorized, publishWill: true, final.Error ?? "re-authentication as another user");
            return;
        }
        _scramCredential = _security.Credentials?.Invoke(UserName!)?.ToString();
        _auth = null;
        _output.Send(AuthReply(ReasonCode.Success, final.Data));
    }

    private AuthPacket AuthReply(ReasonCode reason, byte[]? data)
    {
        var reply = new AuthPacket { ReasonCode = reason };
        var p = reply.GetOrCreateProperties();
        p.AuthenticationMethod = _authMethod;
        p.AuthenticationData = data;
        return reply;
    }
}
