"""A second connection with the same client id takes over: the first is disconnected.
argv: port protocol(311|5)"""
import sys
import paho.mqtt.client as mqtt
from common import Peer, pump, report, unique

protocol = mqtt.MQTTv5 if sys.argv[2] == "5" else mqtt.MQTTv311
client_id = unique("takeover")
topic = unique("takeover-topic")
first = Peer(client_id, protocol)
first_connected = first.connect()
second = Peer(client_id, protocol)
second_connected = second.connect()
pump([first, second], lambda: first.disconnected, 5)
# The survivor still works: it subscribes and receives its own message.
subscribed = second.subscribe(topic, 1)
second.publish(topic, "still here", qos=1)
pump([second], lambda: len(second.messages) >= 1, 5)
report({"first_connected": first_connected, "second_connected": second_connected,
        "first_disconnected": first.disconnected, "first_rc": first.disconnect_rc,
        "second_still_connected": second.connected and not second.disconnected, "subscribed": subscribed,
        "second_received": [m["payload"] for m in second.messages]})
