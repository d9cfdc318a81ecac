using Midge.Core;
using Midge.Core.Hooks;
using Midge.Core.Messages;
using Midge.Protocol;

namespace Midge.Hosting;

/// <summary>
/// The application's side of an embedded broker: publish from application code, receive in process, attach hooks.
/// One per broker; thread-safe.
/// </summary>
public sealed class MidgeBroker(Broker broker)
{
    /// <summary>The broker itself (counts, configuration, reload, disconnecting clients).</summary>
    public Broker Broker { get; } = broker;

    /// <summary>The hook points (<see cref="BrokerHooks"/>): authenticate, authorise, and what happens.</summary>
    public BrokerHooks Hooks => Broker.Hooks;

    /// <summary>
    /// Publishes a message from the application, as the broker's own (no client id: No Local never filters it, and
    /// the ACL file does not apply). Retained when <paramref name="retain"/> (an empty payload clears the topic's
    /// retained message). Returns how many subscriptions (or shared groups) it matched.
    /// </summary>
    /// <exception cref="ArgumentException">The topic is not a valid MQTT topic name (empty, wildcards, too long).</exception>
    public int Publish(string topic, ReadOnlyMemory<byte> payload, QoS qos = QoS.AtMostOnce, bool retain = false,
        MqttProperties? properties = null)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (!Topics.IsValidTopicName(topic)) throw new ArgumentException($"'{topic}' is not a valid topic name", nameof(topic));
        if (qos is < QoS.AtMostOnce or > QoS.ExactlyOnce) throw new ArgumentOutOfRangeException(nameof(qos));
        return Broker.PublishFromBroker(topic, payload, qos, retain, properties);
    }

    /// <summary>Publishes UTF-8 text (see <see cref="Publish(string, ReadOnlyMemory{byte}, QoS, bool, MqttProperties?)"/>).</summary>
    public int Publish(string topic, string payload, QoS qos = QoS.AtMostOnce, bool retain = false) =>
        Publish(topic, System.Text.Encoding.UTF8.GetBytes(payload), qos, retain);

    /// <summary>
    /// Calls <paramref name="onMessage"/> for every message published to a topic that matches
    /// <paramref name="filter"/> (MQTT wildcards <c>+</c> and <c>#</c>; <c>#</c> does not match <c>$SYS</c>), from
    /// clients, wills, <c>$SYS</c> or <see cref="Publish(string, ReadOnlyMemory{byte}, QoS, bool, MqttProperties?)"/>,
    /// before any client gets it. The callback runs on the publishing thread: it must be quick and must not block
    /// (hand slow work to a channel or a task). Disposing the result ends the subscription.
    /// </summary>
    /// <exception cref="ArgumentException">The filter is not a valid MQTT topic filter.</exception>
    public IDisposable Subscribe(string filter, Action<Message> onMessage)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(onMessage);
        if (!Topics.IsValidTopicFilter(filter) || Topics.IsShared(filter))
        {
            throw new ArgumentException($"'{filter}' is not a valid topic filter", nameof(filter));
        }
        bool exact = !Topics.HasWildcards(filter);
        return Hooks.MessagePublish.Attach(e =>
        {
            var topic = e.Message.Topic;
            if (exact ? string.Equals(topic, filter, StringComparison.Ordinal) : Topics.Matches(filter, topic)) onMessage(e.Message);
        });
    }
}
