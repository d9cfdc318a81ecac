using System.Globalization;
using System.Text;

namespace Midge.Core.Sys;

/// <summary>
/// Publishes Mosquitto's <c>$SYS/broker/...</c> tree, retained, every <c>sys_interval</c> seconds: counters as
/// they stand, and load averages (messages, bytes, connections per minute over 1, 5 and 15 minutes) as
/// exponentially damped moving averages. A topic is republished only when its value changed.
/// </summary>
public sealed class SysTopics
{
    private static readonly (string Name, double Minutes)[] Windows = [("1min", 1), ("5min", 5), ("15min", 15)];
    private readonly Broker _broker;
    private readonly string _version;
    private readonly Dictionary<string, string> _last = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _loads = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _previous = new(StringComparer.Ordinal);
    private long _lastRunMs;
    private long _heapMaximum;

    public SysTopics(Broker broker, string version)
    {
        _broker = broker;
        _version = version;
    }

    /// <summary>Publishes the tree now. Call every sys_interval seconds.</summary>
    public void Publish()
    {
        var stats = _broker.Stats;
        long now = _broker.NowMs;
        double intervalSeconds = _lastRunMs == 0 ? 0 : (now - _lastRunMs) / 1000.0;
        _lastRunMs = now;

        Set("$SYS/broker/version", "midge version " + _version);
        Set("$SYS/broker/uptime", ((now - _broker.StartedAtMs) / 1000).ToString(CultureInfo.InvariantCulture) + " seconds");

        long connected = _broker.ConnectedCount;
        long total = _broker.SessionCount;
        long disconnected = Math.Max(0, total - connected);
        Set("$SYS/broker/clients/total", total);
        Set("$SYS/broker/clients/connected", connected);
        Set("$SYS/broker/clients/active", connected);
        Set("$SYS/broker/clients/disconnected", disconnected);
        Set("$SYS/broker/clients/inactive", disconnected);
        Set("$SYS/broker/clients/maximum", stats.ClientsMaximum);
        Set("$SYS/broker/clients/expired", stats.ClientsExpired);

        Set("$SYS/broker/messages/received", stats.MessagesReceived);
        Set("$SYS/broker/messages/sent", stats.MessagesSent);
        Set("$SYS/broker/publish/messages/received", stats.PublishReceived);
        Set("$SYS/broker/publish/messages/sent", stats.PublishSent);
        Set("$SYS/broker/publish/messages/dropped", stats.PublishDropped);
        Set("$SYS/broker/bytes/received", stats.BytesReceived);
        Set("$SYS/broker/bytes/sent", stats.BytesSent);
        Set("$SYS/broker/subscriptions/count", _broker.SubscriptionCount);
        Set("$SYS/broker/retained messages/count", _broker.RetainedCount);
        Set("$SYS/broker/store/messages/count", _broker.RetainedCount);
        long heap = GC.GetTotalMemory(false);
        _heapMaximum = Math.Max(_heapMaximum, heap);
        Set("$SYS/broker/heap/current", heap);
        Set("$SYS/broker/heap/maximum", _heapMaximum);

        if (intervalSeconds > 0)
        {
            Load("messages/received", stats.MessagesReceived, intervalSeconds);
            Load("messages/sent", stats.MessagesSent, intervalSeconds);
            Load("publish/received", stats.PublishReceived, intervalSeconds);
            Load("publish/sent", stats.PublishSent, intervalSeconds);
            Load("publish/dropped", stats.PublishDropped, intervalSeconds);
            Load("bytes/received", stats.BytesReceived, intervalSeconds);
            Load("bytes/sent", stats.BytesSent, intervalSeconds);
            Load("connections", stats.ConnectsTotal, intervalSeconds);
            Load("sockets", stats.ConnectsTotal, intervalSeconds);
        }
        else
        {
            _previous["messages/received"] = stats.MessagesReceived;
            _previous["messages/sent"] = stats.MessagesSent;
            _previous["publish/received"] = stats.PublishReceived;
            _previous["publish/sent"] = stats.PublishSent;
            _previous["publish/dropped"] = stats.PublishDropped;
            _previous["bytes/received"] = stats.BytesReceived;
            _previous["bytes/sent"] = stats.BytesSent;
            _previous["connections"] = stats.ConnectsTotal;
            _previous["sockets"] = stats.ConnectsTotal;
        }
    }

    /// <summary>Per-minute rate over the last interval, damped into 1/5/15-minute averages like a Unix load average.</summary>
    private void Load(string name, long counter, double intervalSeconds)
    {
        _previous.TryGetValue(name, out long before);
        _previous[name] = counter;
        double perMinute = (counter - before) * 60.0 / intervalSeconds;
        foreach (var (window, minutes) in Windows)
        {
            string key = name + "/" + window;
            _loads.TryGetValue(key, out double old);
            double factor = Math.Exp(-intervalSeconds / (60.0 * minutes));
            double value = perMinute + (old - perMinute) * factor;
            _loads[key] = value;
            Set("$SYS/broker/load/" + key, value.ToString("0.00", CultureInfo.InvariantCulture));
        }
    }

    private void Set(string topic, long value) => Set(topic, value.ToString(CultureInfo.InvariantCulture));

    private void Set(string topic, string value)
    {
        if (_last.TryGetValue(topic, out var old) && old == value) return;
        _last[topic] = value;
        _broker.PublishFromBroker(topic, Encoding.UTF8.GetBytes(value), Protocol.QoS.AtMostOnce, retain: true);
    }
}
