"""Publishes 50 QoS 2 messages; the QoS 2 subscriber must receive each exactly once, in order.
argv: port protocol(311|5)"""
import sys
import paho.mqtt.client as mqtt
from common import Peer, pump, port, report, unique

protocol = mqtt.MQTTv5 if sys.argv[2] == "5" else mqtt.MQTTv311
topic = unique("exactly-once")
sub = Peer(unique("q2sub"), protocol)
pub = Peer(unique("q2pub"), protocol)
ok = sub.connect() and sub.subscribe(topic, 2) and pub.connect()
count = 50
for i in range(count):
    pub.client.publish(topic, "m%d" % i, qos=2)
pump([pub, sub], lambda: len(pub.acked) == count and len(sub.messages) >= count, 15)
pump([pub, sub], lambda: False, 0.5)  # anything more would be a duplicate
payloads = [m["payload"] for m in sub.messages]
report({"connected": ok, "completed": len(pub.acked), "received": len(payloads),
        "unique": len(set(payloads)), "in_order": payloads == ["m%d" % i for i in range(count)],
        "qos": sorted(set(m["qos"] for m in sub.messages))})
