"""A retained message reaches later subscribers with the retain flag; an empty retained publish clears it.
argv: port"""
from common import Peer, pump, report, unique

topic = unique("retained")
pub = Peer(unique("rpub"))
pub.connect()
pub.publish(topic, "the value", qos=1, retain=True)

late = Peer(unique("late"))
late.connect()
late.subscribe(topic, 1)
pump([late], lambda: len(late.messages) >= 1, 5)
late_messages = [(m["payload"], m["retain"], m["qos"]) for m in late.messages]

pub.publish(topic, "", qos=1, retain=True)
after = Peer(unique("after"))
after.connect()
after.subscribe(topic, 1)
pub.publish(topic, "live marker", qos=1)
pump([after, pub], lambda: len(after.messages) >= 1, 5)
pump([after, pub], lambda: False, 0.2)
report({"late": late_messages, "after_clear": [(m["payload"], m["retain"]) for m in after.messages]})
