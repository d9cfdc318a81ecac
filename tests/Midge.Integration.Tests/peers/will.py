"""The will is published when a client vanishes without DISCONNECT, and not after a normal DISCONNECT.
argv: port protocol(311|5)"""
import sys
import paho.mqtt.client as mqtt
from common import Peer, pump, report, unique

protocol = mqtt.MQTTv5 if sys.argv[2] == "5" else mqtt.MQTTv311
topic = unique("will")
watcher = Peer(unique("watcher"), protocol)
watcher.connect()
watcher.subscribe(topic + "/#", 1)

abrupt = Peer(unique("abrupt"), protocol, will=(topic + "/abrupt", "gone abruptly", 1, False))
abrupt_connected = abrupt.connect()
abrupt.drop()
got_abrupt = pump([watcher], lambda: any(m["topic"] == topic + "/abrupt" for m in watcher.messages), 5)

polite = Peer(unique("polite"), protocol, will=(topic + "/polite", "should not appear", 1, False))
polite_connected = polite.connect()
polite.disconnect()
pump([watcher], lambda: any(m["topic"] == topic + "/polite" for m in watcher.messages), 1.5)

report({"abrupt_connected": abrupt_connected, "polite_connected": polite_connected,
        "abrupt_will": [m["payload"] for m in watcher.messages if m["topic"] == topic + "/abrupt"],
        "abrupt_will_qos": [m["qos"] for m in watcher.messages if m["topic"] == topic + "/abrupt"],
        "polite_will": [m["payload"] for m in watcher.messages if m["topic"] == topic + "/polite"]})
