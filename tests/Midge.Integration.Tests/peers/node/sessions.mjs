// Session expiry, message expiry and will delay with MQTT.js. argv: port scenario
import { args, close, drop, open, payloads, publish, report, run, sleep, subscribe, unique, until } from './common.mjs';

const scenarios = {
  // A session kept for 10 s is resumed with its queued QoS 1 messages; one kept for 1 s is gone after 2.5 s.
  async 'session-expiry'() {
    const topic = unique('js/session');
    const pub = await open(unique('js-pub'));

    const keptId = unique('js-kept');
    const first = await open(keptId, { clean: true, properties: { sessionExpiryInterval: 10 } });
    await subscribe(first, topic, { qos: 1 });
    await close(first);
    for (let i = 0; i < 3; i++) await publish(pub, topic, `away-${i}`, { qos: 1 });
    const back = await open(keptId, { clean: false, properties: { sessionExpiryInterval: 10 } });
    await until(() => back.messages.length >= 3, 3000);

    const shortId = unique('js-short');
    const short = await open(shortId, { clean: true, properties: { sessionExpiryInterval: 1 } });
    await subscribe(short, topic, { qos: 1 });
    await close(short);
    await publish(pub, topic, 'too-late', { qos: 1 });
    await sleep(2500);
    const expired = await open(shortId, { clean: false, properties: { sessionExpiryInterval: 1 } });
    await sleep(300);

    const result = {
      first_session_present: first.connack.sessionPresent,
      kept_session_present: back.connack.sessionPresent,
      kept_received: payloads(back),
      kept_qos: back.messages.map((m) => m.qos),
      expired_session_present: expired.connack.sessionPresent,
      expired_received: payloads(expired),
    };
    await close(pub, back, expired);
    report(result);
  },

  // A persistent subscriber is sent a QoS 1 and a QoS 2 message and acknowledges neither (MQTT.js reads nothing more
  // until the first is answered), then its connection drops; on its return (through a cluster: perhaps on another
  // node) both come again, the first with DUP.
  async redelivery() {
    const topic = unique('js/redeliver');
    const id = unique('js-unacked');
    const withheld = [];
    const first = await open(id, {
      clean: true,
      properties: { sessionExpiryInterval: 60 },
      customHandleAcks: (t, message) => withheld.push(message.toString()), // never answers: no PUBACK
    });
    await subscribe(first, topic, { qos: 2 });
    const pub = await open(unique('js-pub'));
    await publish(pub, topic, 'one', { qos: 1 });
    await publish(pub, topic, 'two', { qos: 2 });
    await until(() => withheld.length >= 1, 3000);
    drop(first);
    await sleep(200);
    const back = await open(id, { clean: false, properties: { sessionExpiryInterval: 60 } });
    await until(() => back.messages.length >= 2, 3000);
    await sleep(300);
    const result = {
      withheld,
      session_present: back.connack.sessionPresent,
      received: payloads(back),
      dup: back.messages.map((m) => m.dup),
      qos: back.messages.map((m) => m.qos),
    };
    await close(pub, back);
    report(result);
  },

  // While the subscriber is away a 1 s message expires and a 60 s one waits; the one delivered carries the
  // interval that remains.
  async 'message-expiry'() {
    const topic = unique('js/expiry');
    const id = unique('js-exp');
    const sub = await open(id, { clean: true, properties: { sessionExpiryInterval: 30 } });
    await subscribe(sub, topic, { qos: 1 });
    await close(sub);
    const pub = await open(unique('js-pub'));
    await publish(pub, topic, 'short-lived', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publish(pub, topic, 'long-lived', { qos: 1, properties: { messageExpiryInterval: 60 } });
    await sleep(2200);
    const back = await open(id, { clean: false, properties: { sessionExpiryInterval: 30 } });
    await until(() => back.messages.length >= 1, 3000);
    await sleep(300);
    const result = {
      session_present: back.connack.sessionPresent,
      received: payloads(back),
      expiry: back.messages.map((m) => m.properties.messageExpiryInterval ?? null),
    };
    await close(pub, back);
    report(result);
  },

  // A will with a 1 s delay comes about 1 s after the abrupt close; a second client reconnects within its
  // delay, so its will never comes.
  async 'will-delay'() {
    const willTopic = unique('js/will');
    const watcher = await open(unique('js-watch'));
    await subscribe(watcher, willTopic, { qos: 1 });

    const delayed = await open(unique('js-delayed'), {
      properties: { sessionExpiryInterval: 10 },
      will: { topic: willTopic, payload: Buffer.from('delayed will'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
    });
    const droppedAt = Date.now();
    drop(delayed);
    await until(() => watcher.messages.length >= 1, 4000);
    const arrivedAfterMs = watcher.messages.length > 0 ? Date.now() - droppedAt : null;

    const cancelId = unique('js-cancel');
    const will = { topic: willTopic, payload: Buffer.from('cancelled will'), qos: 1, retain: false, properties: { willDelayInterval: 2 } };
    const cancelled = await open(cancelId, { properties: { sessionExpiryInterval: 10 }, will });
    drop(cancelled);
    await sleep(300);
    const again = await open(cancelId, { clean: false, properties: { sessionExpiryInterval: 10 } });
    await sleep(2600);

    const result = {
      received: payloads(watcher),
      arrived_after_ms: arrivedAfterMs,
      reconnected_session_present: again.connack.sessionPresent,
    };
    await close(watcher, again);
    report(result);
  },
};

run(() => scenarios[args[0]]());
