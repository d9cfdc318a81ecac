// Subscription options, subscription identifiers, shared and exclusive subscriptions with MQTT.js.
// argv: port scenario
import { args, close, drop, open, payloads, publish, report, run, sleep, subscribe, unique, until } from './common.mjs';

const scenarios = {
  // No Local, Retain As Published and Retain Handling 0/1/2.
  async options() {
    const base = unique('js/opts');
    const self = await open(unique('js-self'));
    await subscribe(self, `${base}/nl`, { qos: 1, nl: true });
    await subscribe(self, `${base}/local`, { qos: 1, nl: false });
    const other = await open(unique('js-other'));
    await publish(self, `${base}/nl`, 'own-on-no-local', { qos: 1 });
    await publish(self, `${base}/local`, 'own-on-local', { qos: 1 });
    await publish(other, `${base}/nl`, 'other-on-no-local', { qos: 1 });
    await until(() => self.messages.length >= 2, 2000);
    await sleep(150);

    // Retain As Published: a live retained message keeps RETAIN=1 only for rap subscribers.
    const rap = await open(unique('js-rap'));
    await subscribe(rap, `${base}/rap`, { qos: 1, rap: true });
    const norap = await open(unique('js-norap'));
    await subscribe(norap, `${base}/rap`, { qos: 1, rap: false });
    await publish(other, `${base}/rap`, 'live-retained', { qos: 1, retain: true });
    await until(() => rap.messages.length >= 1 && norap.messages.length >= 1, 2000);

    // Retain Handling: the retained message is sent at every subscribe (0), at the first only (1), never (2).
    const rh = {};
    for (const handling of [0, 1, 2]) {
      const peer = await open(unique(`js-rh${handling}`));
      await subscribe(peer, `${base}/rap`, { qos: 1, rh: handling });
      await until(() => peer.messages.length >= 1, handling === 2 ? 300 : 2000);
      const afterFirst = peer.messages.length;
      await subscribe(peer, `${base}/rap`, { qos: 1, rh: handling });
      await until(() => peer.messages.length > afterFirst, 400);
      rh[handling] = { first: afterFirst, total: peer.messages.length, retain: peer.messages.map((m) => m.retain) };
      await close(peer);
    }
    await publish(other, `${base}/rap`, '', { qos: 1, retain: true });

    const result = {
      self_received: payloads(self),
      rap_retain: rap.messages.map((m) => m.retain),
      norap_retain: norap.messages.map((m) => m.retain),
      retain_handling: rh,
    };
    await close(self, other, rap, norap);
    report(result);
  },

  // Two overlapping subscriptions with identifiers 1 and 2: one PUBLISH carrying both.
  async identifiers() {
    const base = unique('js/subid');
    const sub = await open(unique('js-subid'));
    await subscribe(sub, `${base}/+`, { qos: 1, properties: { subscriptionIdentifier: 1 } });
    await subscribe(sub, `${base}/#`, { qos: 1, properties: { subscriptionIdentifier: 2 } });
    await subscribe(sub, `${base}/other`, { qos: 1 });
    const pub = await open(unique('js-pub'));
    await publish(pub, `${base}/x`, 'both', { qos: 1 });
    await publish(pub, `${base}/other`, 'three-filters', { qos: 1 });
    await until(() => sub.messages.length >= 2, 2000);
    await sleep(200);
    const ids = (m) => {
      const v = m.properties.subscriptionIdentifier;
      return v === undefined ? [] : [].concat(v).sort((a, b) => a - b);
    };
    const result = { received: sub.messages.map((m) => ({ payload: m.payload, ids: ids(m) })) };
    await close(sub, pub);
    report(result);
  },

  // $share/g/t with three members: 30 messages, each delivered once across them. Then a member that never
  // acknowledges drops its connection: what it held reaches the others.
  async shared() {
    const topic = unique('js/shared');
    const group = unique('g');
    const filter = `$share/${group}/${topic}`;
    const members = [];
    for (let i = 0; i < 3; i++) {
      const m = await open(unique(`js-member${i}`));
      await subscribe(m, filter, { qos: 1 });
      members.push(m);
    }
    const pub = await open(unique('js-pub'));
    for (let i = 0; i < 30; i++) await publish(pub, topic, `s-${i}`, { qos: 1 });
    const total = () => members.reduce((n, m) => n + m.messages.length, 0);
    await until(() => total() >= 30, 4000);
    await sleep(200);
    const all = members.flatMap(payloads);
    const counts = members.map((m) => m.messages.length);

    // Hand-over: a fourth member holds its acknowledgements, then vanishes.
    const heldBack = [];
    const silent = await open(unique('js-silent'), { customHandleAcks: (t, message) => heldBack.push(message.toString()) });
    await subscribe(silent, filter, { qos: 1 });
    for (const m of members) m.messages.length = 0;
    // At least 8, and on until the silent member holds one: through a cluster (each client on a random node) NATS
    // picks the node at random per message, so a member's share is a chance, not a turn (at most 64).
    let sent = 0;
    while (sent < 8 || (heldBack.length === 0 && sent < 64)) {
      await publish(pub, topic, `h-${sent++}`, { qos: 1 });
      if (sent >= 8) await until(() => heldBack.length + total() >= sent, 3000);
    }
    const held = [...heldBack];
    drop(silent);
    await until(() => total() >= sent, 4000);
    await sleep(200);
    const after = members.flatMap(payloads);

    const result = {
      received: all.length,
      unique: new Set(all).size,
      counts,
      held,
      handover_sent: sent,
      after_received: after.length,
      after_unique: new Set(after).size,
      held_redelivered: held.filter((p) => after.includes(p)).length,
    };
    await close(...members, pub);
    report(result);
  },

  // exclusive_subscriptions true: the second client asking for $exclusive/t gets 0x97.
  async exclusive() {
    const topic = unique('js/excl');
    const first = await open(unique('js-first'));
    const second = await open(unique('js-second'));
    const firstCodes = await subscribe(first, `$exclusive/${topic}`, { qos: 1 });
    const secondCodes = await subscribe(second, `$exclusive/${topic}`, { qos: 1 });
    const pub = await open(unique('js-pub'));
    await publish(pub, topic, 'to-the-holder', { qos: 1 });
    await until(() => first.messages.length >= 1, 2000);
    const result = { first: firstCodes, second: secondCodes, first_received: payloads(first), second_received: payloads(second) };
    await close(first, second, pub);
    report(result);
  },
};

run(() => scenarios[args[0]]());
