"""clean_session=False: QoS 1 messages published while the subscriber is away are delivered on reconnect.
argv: port"""
import paho.mqtt.client as mqtt
from common import Peer, pump, report, unique

topic = unique("persist")
client_id = unique("persist-sub")
sub = Peer(client_id, mqtt.MQTTv311, clean_session=False)
first = sub.connect() and sub.subscribe(topic, 1)
first_session_present = sub.session_present
sub.disconnect()

pub = Peer(unique("persist-pub"))
pub.connect()
published = sum(1 for i in range(10) if pub.publish(topic, "offline-%d" % i, qos=1))
pub.disconnect()

again = Peer(client_id, mqtt.MQTTv311, clean_session=False)
second = again.connect()
pump([again], lambda: len(again.messages) >= 10, 5)
pump([again], lambda: False, 0.3)
report({"first": first, "first_session_present": first_session_present, "published": published,
        "reconnected": second, "session_present": again.session_present,
        "received": [m["payload"] for m in again.messages], "qos": sorted(set(m["qos"] for m in again.messages))})
