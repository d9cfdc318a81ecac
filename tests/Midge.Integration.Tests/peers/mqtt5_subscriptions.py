"""MQTT 5 subscriptions with paho: subscription identifiers on overlapping subscriptions, No Local, and a shared
subscription spreading 30 messages over 3 members, each delivered once. argv: port"""
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from common import Peer, pump, report, unique


def sub_id(identifier):
    p = Properties(PacketTypes.SUBSCRIBE)
    p.SubscriptionIdentifier = identifier
    return p


result = {}
pub = Peer(unique("p5-pub"), mqtt.MQTTv5)
pub.connect()

# Subscription identifiers: a/+ (1) and a/# (2) overlap; one PUBLISH carries both.
base = unique("p5-subid")
ids = Peer(unique("p5-ids"), mqtt.MQTTv5)
ids.connect()
ids.subscribe(base + "/+", 1, properties=sub_id(1))
ids.subscribe(base + "/#", 1, properties=sub_id(2))
pub.publish(base + "/x", "both", qos=1)
pump([ids, pub], lambda: len(ids.messages) >= 1, 5)
pump([ids, pub], lambda: False, 0.2)
result["ids_messages"] = len(ids.messages)
result["ids"] = sorted(ids.messages[0]["props"].get("SubscriptionIdentifier", [])) if ids.messages else []

# No Local: a client does not get its own messages back on a No Local subscription, but gets others'.
topic = unique("p5-nolocal")
own = Peer(unique("p5-own"), mqtt.MQTTv5)
own.connect()
result["no_local_subscribed"] = own.subscribe(topic, 0, options=SubscribeOptions(qos=1, noLocal=True))
own.publish(topic, "mine", qos=1)
pub.publish(topic, "theirs", qos=1)
pump([own, pub], lambda: len(own.messages) >= 1, 5)
pump([own, pub], lambda: False, 0.2)
result["no_local_received"] = [m["payload"] for m in own.messages]

# Shared subscription: 30 messages over 3 members, each exactly once, every member used.
stopic = unique("p5-shared")
members = []
for i in range(3):
    m = Peer(unique("p5-member%d" % i), mqtt.MQTTv5)
    m.connect()
    m.subscribe("$share/pg/" + stopic, 1)
    members.append(m)
for i in range(30):
    pub.publish(stopic, "s-%d" % i, qos=1)
pump(members + [pub], lambda: sum(len(m.messages) for m in members) >= 30, 5)
pump(members + [pub], lambda: False, 0.2)
payloads = [x["payload"] for m in members for x in m.messages]
result["shared_received"] = len(payloads)
result["shared_unique"] = len(set(payloads))
result["shared_counts"] = [len(m.messages) for m in members]
report(result)
