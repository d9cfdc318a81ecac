"""Helpers shared by the paho-mqtt peer scripts (paho-mqtt 1.6 API).

Every client is driven by pump() on the calling thread: no background loop, so no automatic reconnect hides
what the broker did, and every wait is bounded by a deadline.
"""
import json
import sys
import time
import uuid

import paho.mqtt.client as mqtt

HOST = "127.0.0.1"


def port():
    return int(sys.argv[1])


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Peer:
    """A paho client with its events recorded."""

    def __init__(self, client_id, protocol=mqtt.MQTTv311, clean_session=True, will=None):
        self.v5 = protocol == mqtt.MQTTv5
        if self.v5:
            self.client = mqtt.Client(client_id=client_id, protocol=protocol)
        else:
            self.client = mqtt.Client(client_id=client_id, protocol=protocol, clean_session=clean_session)
        self.connected = False
        self.connack = None
        self.session_present = None
        self.disconnected = False
        self.disconnect_rc = None
        self.messages = []
        self.subacks = []
        self.acked = set()
        if will is not None:
            self.client.will_set(*will)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = lambda c, u, mid: self.acked.add(mid)

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = int(rc.value) if hasattr(rc, "value") else int(rc)
        self.connected = self.connack == 0
        self.session_present = int(flags.get("session present", 0))

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.connected = False
        self.disconnected = True
        self.disconnect_rc = int(rc.value) if hasattr(rc, "value") else int(rc)

    def _on_message(self, client, userdata, msg):
        props = {}
        if self.v5 and msg.properties is not None:
            for name in ("ContentType", "ResponseTopic", "CorrelationData", "UserProperty",
                         "PayloadFormatIndicator", "MessageExpiryInterval", "SubscriptionIdentifier"):
                if hasattr(msg.properties, name):
                    value = getattr(msg.properties, name)
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    props[name] = value
        self.messages.append({"topic": msg.topic, "payload": msg.payload.decode("utf-8", "replace"),
                              "qos": msg.qos, "retain": int(msg.retain), "dup": int(msg.dup),
                              "mid": msg.mid, "props": props})

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        self.subacks.append(mid)

    def connect(self, timeout=5.0, **kwargs):
        self.connected = False
        self.connack = None
        self.disconnected = False
        self.client.connect(HOST, port(), keepalive=30, **kwargs)
        pump([self], lambda: self.connack is not None or self.disconnected, timeout)
        return self.connected

    def subscribe(self, topic, qos, timeout=5.0, **kwargs):
        result, mid = self.client.subscribe(topic, qos, **kwargs)
        pump([self], lambda: mid in self.subacks, timeout)
        return mid in self.subacks

    def publish(self, topic, payload, qos=0, retain=False, properties=None, timeout=5.0):
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if qos > 0:
            pump([self], lambda: info.mid in self.acked, timeout)
            return info.mid in self.acked
        pump([self], lambda: False, 0.05)
        return True

    def disconnect(self, **kwargs):
        self.client.disconnect(**kwargs)
        pump([self], lambda: self.disconnected, 2.0)

    def drop(self):
        """Closes the socket without DISCONNECT: an abnormal disconnection for the broker."""
        self.client.socket().close()


def pump(peers, done, timeout):
    """Runs each peer's network loop until done() is true or timeout seconds passed; returns done()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        for p in peers:
            if p.client.socket() is not None:
                p.client.loop(0.02)
    return done()


def report(result):
    print(json.dumps(result))
    sys.stdout.flush()
