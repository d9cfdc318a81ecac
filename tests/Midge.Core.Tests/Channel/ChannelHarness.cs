using Midge.Config;
using Midge.Core.Channel;
using Midge.Core.Messages;
using Midge.Core.Sessions.Store;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Channel;

/// <summary>A broker clock the test moves by hand; the wall clock moves with it.</summary>
internal sealed class ManualTime : TimeProvider
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long _ms = 1_000_000;
    public override long TimestampFrequency => 1000;
    public override long GetTimestamp() => Interlocked.Read(ref _ms);
    public override DateTimeOffset GetUtcNow() => Epoch.AddMilliseconds(Interlocked.Read(ref _ms));
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ms, (long)by.TotalMilliseconds);
}

/// <summary>Records what a channel sends, in order.</summary>
internal sealed class RecordingOutput : IClientOutput
{
    private readonly object _sync = new();
    private readonly List<object> _sent = [];

    public int Backlog { get; set; }
    public long BacklogBytes { get; set; }
    public bool Closed { get; private set; }
    public MqttPacket? FinalPacket { get; private set; }

    public void Send(MqttPacket packet)
    {
        lock (_sync) _sent.Add(packet);
    }

    public void SendPublish(Message message, in OutgoingPublish fields)
    {
        lock (_sync) _sent.Add(new SentPublish(message, fields));
    }

    public void Close(MqttPacket? finalPacket)
    {
        Closed = true;
        FinalPacket = finalPacket;
    }

    public List<object> Take()
    {
        lock (_sync)
        {
            var copy = _sent.ToList();
            _sent.Clear();
            return copy;
        }
    }

    /// <summary>Removes and returns the first recorded packet of type T, leaving the rest.</summary>
    public T TakeFirst<T>() where T : class
    {
        lock (_sync)
        {
            int at = _sent.FindIndex(o => o is T);
            var item = (T)_sent[at];
            _sent.RemoveAt(at);
            return item;
        }
    }

    public List<SentPublish> Publishes() => Take().OfType<SentPublish>().ToList();
}

internal sealed record SentPublish(Message Message, OutgoingPublish Fields)
{
    public string Topic => Message.Topic[Fields.TopicStart..];
    public string Payload => System.Text.Encoding.UTF8.GetString(Message.Payload.Span);
}

/// <summary>A broker with channels driven directly, no sockets.</summary>
internal sealed class ChannelHarness
{
    /// <param name="store">A session store for the broker (none by default).</param>
    /// <param name="time">The clock, to share one with an earlier harness (a broker restarted on the same store).</param>
    public ChannelHarness(BrokerConfig? config = null, ListenerConfig? listener = null, ISessionStore? store = null, ManualTime? time = null)
    {
        Time = time ?? new ManualTime();
        Broker = new Broker(config ?? new BrokerConfig(), null, Time, store);
        Listener = listener ?? new ListenerConfig { AllowAnonymous = true };
    }

    public ManualTime Time { get; }
    public Broker Broker { get; }
    public ListenerConfig Listener { get; }

    public (MqttChannel Channel, RecordingOutput Output) Open(ListenerConfig? listener = null)
    {
        var output = new RecordingOutput();
        var channel = new MqttChannel(Broker, listener ?? Listener, output, "127.0.0.1:5000");
        return (channel, output);
    }

    public (MqttChannel Channel, RecordingOutput Output, ConnAckPacket ConnAck) Connect(string clientId,
        ProtocolVersion version = ProtocolVersion.V500, bool cleanStart = true, Action<ConnectPacket>? configure = null,
        ListenerConfig? listener = null)
    {
        var (channel, output) = Open(listener);
        var connect = new ConnectPacket
        {
            ClientId = clientId,
            ProtocolVersion = version,
            ProtocolName = version == ProtocolVersion.V310 ? "MQIsdp" : "MQTT",
            CleanStart = cleanStart,
            KeepAlive = 60,
        };
        configure?.Invoke(connect);
        channel.Handle(connect);
        // null when the connection was closed without any CONNACK (one too large for the client, say).
        var connack = output.FinalPacket as ConnAckPacket ?? (output.Closed ? null! : output.TakeFirst<ConnAckPacket>());
        return (channel, output, connack);
    }

    public static PublishPacket Publish(string topic, string payload, QoS qos = QoS.AtMostOnce, bool retain = false, ushort id = 0) =>
        new() { Topic = topic, Payload = System.Text.Encoding.UTF8.GetBytes(payload), QoS = qos, Retain = retain, PacketId = id };

    public static SubscribePacket Subscribe(ushort id, params (string Filter, QoS QoS)[] filters) => new()
    {
        PacketId = id,
        Subscriptions = filters.Select(f => new TopicSubscription(f.Filter, f.QoS)).ToList(),
    };
}
