using Midge.Protocol;
using Midge.Protocol.Packets;

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

    private void HandleAuth(AuthPacket auth)
    {
        // No authentication method was agreed at CONNECT (enhanced authentication is not offered yet), so an
        // AUTH packet is a protocol error (MQTT-3.15.2-1 / section 4.12).
        throw new MqttProtocolException(ReasonCode.ProtocolError, "AUTH without an authentication method");
    }
}
