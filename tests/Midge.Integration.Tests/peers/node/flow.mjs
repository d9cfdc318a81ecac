// Topic aliases both ways and Maximum Packet Size with MQTT.js. argv: port scenario
// (Receive Maximum is checked with a raw socket in C#: MQTT.js reads no further packet until the
// application acknowledged the last one, so it can never hold two unacknowledged messages.)
import { args, close, open, payloads, publish, report, run, sleep, subscribe, unique, until } from './common.mjs';

const scenarios = {
  // The client registers alias 1 with a topic, then publishes with the alias alone; the broker assigns its own
  // aliases to a subscriber that allows 5, and none to one that allows none.
  async 'topic-alias'() {
    const topic = unique('js/alias');
    const aliased = await open(unique('js-aliased'), { properties: { topicAliasMaximum: 5 } });
    const plain = await open(unique('js-plain'));
    await subscribe(aliased, topic, { qos: 1 });
    await subscribe(plain, topic, { qos: 1 });
    const pub = await open(unique('js-pub'));
    const acks = [];
    acks.push(await publish(pub, topic, 'one', { qos: 1, properties: { topicAlias: 1 } }));
    acks.push(await publish(pub, '', 'two', { qos: 1, properties: { topicAlias: 1 } }));
    acks.push(await publish(pub, '', 'three', { qos: 1, properties: { topicAlias: 1 } }));
    await until(() => aliased.messages.length >= 3 && plain.messages.length >= 3, 3000);
    const wire = (p) => p.publishes.map((x) => ({ topic: x.topic.toString(), alias: x.properties?.topicAlias ?? null }));
    const result = {
      broker_topic_alias_maximum: pub.connack.properties?.topicAliasMaximum ?? null,
      acks,
      aliased_received: aliased.messages.map((m) => `${m.topic}|${m.payload}`),
      aliased_wire: wire(aliased),
      plain_received: plain.messages.map((m) => `${m.topic}|${m.payload}`),
      plain_wire: wire(plain),
      topic,
    };
    await close(aliased, plain, pub);
    report(result);
  },

  // A subscriber that accepts packets of at most 200 bytes gets the small messages and not the 1000-byte one.
  async 'maximum-packet-size'() {
    const topic = unique('js/maxpkt');
    const sub = await open(unique('js-small'), { properties: { maximumPacketSize: 200 } });
    await subscribe(sub, topic, { qos: 1 });
    const pub = await open(unique('js-pub'));
    await publish(pub, topic, 'small-1', { qos: 1 });
    await publish(pub, topic, 'x'.repeat(1000), { qos: 1 });
    await publish(pub, topic, 'small-2', { qos: 0 });
    await until(() => sub.messages.length >= 2, 3000);
    await sleep(200);
    const result = { received: sub.messages.map((m) => (m.payload.length > 20 ? `big-${m.payload.length}` : m.payload)) };
    await close(sub, pub);
    report(result);
  },
};

run(() => scenarios[args[0]]());
