// MQTT.js over WebSocket: ws:// on path /mqtt (EMQX's habit), or wss:// trusting a test CA.
// argv: port scheme(ws|wss) [ca.pem]
// Subscribes to to-ws/#, prints "ready", publishes from-ws/hello at QoS 1 and a 200 kB QoS 1 message to itself, then
// waits for one message on to-ws/ (sent by a TCP client) and reports what arrived.
import { readFileSync } from 'node:fs';
import { args, close, open, publish, report, run, subscribe, unique, until } from './common.mjs';

run(async () => {
  const [scheme, ca] = args;
  const options = { protocol: scheme, path: '/mqtt' };
  if (scheme === 'wss') Object.assign(options, { ca: readFileSync(ca), rejectUnauthorized: true, servername: 'localhost' });
  const peer = await open(unique('js-ws'), options);
  if (peer.connack?.reasonCode !== 0) {
    report({ connack: peer.connack?.reasonCode ?? null, error: String(peer.error ?? 'closed') });
  }
  const granted = await subscribe(peer, ['to-ws/#', 'self/#'], { qos: 1 });
  process.stdout.write('ready\n');
  const large = 'x'.repeat(200 * 1024);
  const puback = await publish(peer, 'from-ws/hello', 'hello from websocket', { qos: 1 });
  const selfAck = await publish(peer, 'self/large', large, { qos: 1 });
  await until(() => peer.messages.some((m) => m.topic.startsWith('to-ws/')) && peer.messages.some((m) => m.topic === 'self/large'), 10000);
  const result = {
    connack: peer.connack.reasonCode,
    granted,
    puback,
    self_ack: selfAck,
    large_ok: peer.messages.some((m) => m.topic === 'self/large' && m.payload === large),
    from_tcp: peer.messages.filter((m) => m.topic.startsWith('to-ws/')).map((m) => `${m.topic} ${m.payload}`),
  };
  await close(peer);
  report(result);
});
