"""MQTT 5 with paho: session expiry (kept, zero, expired) and PUBLISH properties passed through.
argv: port"""
import time
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from common import Peer, pump, report, unique


def connect_props(expiry):
    p = Properties(PacketTypes.CONNECT)
    p.SessionExpiryInterval = expiry
    return p


result = {}

# Session kept for 60 s: messages published while away are delivered, session present = 1.
topic = unique("v5-session")
client_id = unique("v5-sub")
sub = Peer(client_id, mqtt.MQTTv5)
sub.connect(clean_start=True, properties=connect_props(60))
result["kept_first_session_present"] = sub.session_present
sub.subscribe(topic, 1)
sub.disconnect()
pub = Peer(unique("v5-pub"), mqtt.MQTTv5)
pub.connect()
for i in range(5):
    pub.publish(topic, "away-%d" % i, qos=1)
back = Peer(client_id, mqtt.MQTTv5)
back.connect(clean_start=False, properties=connect_props(60))
pump([back], lambda: len(back.messages) >= 5, 5)
result["kept_session_present"] = back.session_present
result["kept_received"] = [m["payload"] for m in back.messages]
back.disconnect()

# Session expiry 0 (the default): nothing survives the disconnect.
zero_id = unique("v5-zero")
zero = Peer(zero_id, mqtt.MQTTv5)
zero.connect(clean_start=True)
zero.subscribe(topic, 1)
zero.disconnect()
pub.publish(topic, "nobody home", qos=1)
zero_again = Peer(zero_id, mqtt.MQTTv5)
zero_again.connect(clean_start=False)
pump([zero_again], lambda: len(zero_again.messages) >= 1, 1)
result["zero_session_present"] = zero_again.session_present
result["zero_received"] = [m["payload"] for m in zero_again.messages]
zero_again.disconnect()

# Session expiry 1 s: gone after 3 s.
short_id = unique("v5-short")
short = Peer(short_id, mqtt.MQTTv5)
short.connect(clean_start=True, properties=connect_props(1))
short.subscribe(topic, 1)
short.disconnect()
time.sleep(3)
short_again = Peer(short_id, mqtt.MQTTv5)
short_again.connect(clean_start=False, properties=connect_props(1))
result["expired_session_present"] = short_again.session_present
short_again.disconnect()

# PUBLISH properties reach an MQTT 5 subscriber unchanged.
ptopic = unique("v5-props")
psub = Peer(unique("v5-psub"), mqtt.MQTTv5)
psub.connect()
psub.subscribe(ptopic, 1)
props = Properties(PacketTypes.PUBLISH)
props.ContentType = "application/json"
props.ResponseTopic = "replies/here"
props.CorrelationData = b"corr-42"
props.PayloadFormatIndicator = 1
props.MessageExpiryInterval = 300
props.UserProperty = [("k", "v"), ("k", "w")]
pub.publish(ptopic, '{"a":1}', qos=1, properties=props)
pump([psub, pub], lambda: len(psub.messages) >= 1, 5)
result["props_messages"] = psub.messages
report(result)
