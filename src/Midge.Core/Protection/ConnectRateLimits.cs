using System.Collections.Concurrent;
using Midge.Config;

namespace Midge.Core.Protection;

/// <summary>
/// <c>max_connection_rate</c> as seen by the protocol: CONNECT packets per second per listener, on the broker
/// clock. The transport already closes sockets beyond the rate at accept; this second bucket catches
/// connections opened within the rate whose CONNECTs then arrive in a burst, and answers them properly
/// (MQTT 5: CONNACK 0x9F Connection rate exceeded).
/// </summary>
internal sealed class ConnectRateLimits
{
    private readonly ConcurrentDictionary<(int Port, string? Bind), Holder> _listeners = new();

    public bool TryConnect(ListenerConfig listener, long nowMs)
    {
        int rate = listener.Protection.MaxConnectionRate;
        if (rate <= 0) return true;
        var holder = _listeners.GetOrAdd((listener.Port, listener.BindAddress), static (_, s) => new Holder(s.rate, s.nowMs), (rate, nowMs));
        lock (holder) return holder.Bucket.TryTake(1, nowMs);
    }

    private sealed class Holder(int rate, long nowMs)
    {
        public TokenBucket Bucket = new(rate, rate, nowMs);
    }
}
