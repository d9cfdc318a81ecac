namespace Midge.Bridges;

/// <summary>What one bridge has done since the broker started; thread-safe.</summary>
public sealed class BridgeCounters
{
    private long _sent, _received, _dropped, _reconnects;
    private volatile bool _connected;

    /// <summary>Messages the remote broker took (QoS 0 written, QoS 1/2 acknowledged).</summary>
    public long MessagesSent => Interlocked.Read(ref _sent);

    /// <summary>Messages from the remote broker published locally.</summary>
    public long MessagesReceived => Interlocked.Read(ref _received);

    /// <summary>Messages not carried: over bridge_max_packet_size, refused by the remote, QoS 0 lost with the connection.</summary>
    public long MessagesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Connections to the remote after the first.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    public bool Connected
    {
        get => _connected;
        internal set => _connected = value;
    }

    internal void OnSent() => Interlocked.Increment(ref _sent);

    internal void OnReceived() => Interlocked.Increment(ref _received);

    internal void OnDropped() => Interlocked.Increment(ref _dropped);

    internal void OnReconnect() => Interlocked.Increment(ref _reconnects);
}
