using Midge.Core.Channel;

namespace Midge.Transport;

/// <summary>
/// Mosquitto's per-packet debug lines (<see cref="PacketLog"/>) for this connection: each packet as it is decoded
/// (<see cref="HandleFrames"/>) and as it is encoded (<see cref="Encode"/>), so a line says what went over the wire.
/// Both call in here only once <see cref="PacketLog.IsEnabled"/> said yes.
/// </summary>
internal sealed partial class MqttConnection
{
    /// <summary>The client as the lines name it: its client id, or its address until a CONNECT succeeded.</summary>
    private string LogName => _channel.ClientId ?? RemoteAddress.Host(_context.RemoteEndPoint);

    private void LogSending(in Outgoing item)
    {
        if (item.Message is not null) PacketLog.SendingPublish(_broker, LogName, item.Message, item.Fields);
        else if (item.Packet is not null) PacketLog.Sending(_broker, LogName, _channel.Version, item.Packet);
    }
}
