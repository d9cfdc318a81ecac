// Helpers shared by the MQTT.js peer scripts. Every client speaks MQTT 5 to 127.0.0.1:<port>, never
// reconnects by itself (so nothing hides what the broker did), and every wait is bounded.
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';

export const HOST = '127.0.0.1';
export const port = Number(process.argv[2]);
export const args = process.argv.slice(3);

export const unique = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until predicate() holds or timeoutMs passed; returns predicate(). */
export async function until(predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await sleep(10);
  }
  return predicate();
}

/**
 * Opens a client and waits for its CONNACK. Returns a peer: the client, the CONNACK (or the refusal), every
 * PUBLISH it received (as packets with the resolved topic), and the DISCONNECT the server sent, if any.
 * setup(client) runs before the CONNECT goes out (to install handlers such as handleAuth).
 */
export async function open(clientId, options = {}, onPort = port, setup = undefined) {
  const peer = { id: clientId, messages: [], publishes: [], disconnect: null, connack: null, error: null, closed: false };
  const client = mqtt.connect({
    host: HOST,
    port: onPort,
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    keepalive: 30,
    ...options,
  });
  peer.client = client;
  setup?.(client);
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'connack') peer.connack = packet;
    if (packet.cmd === 'publish') peer.publishes.push(packet);
    if (packet.cmd === 'disconnect') peer.disconnect = packet;
  });
  client.on('message', (topic, payload, packet) => peer.messages.push({
    topic,
    payload: payload.toString('utf8'),
    qos: packet.qos,
    retain: packet.retain,
    dup: packet.dup,
    properties: packet.properties ?? {},
  }));
  client.on('error', (err) => { peer.error = err; });
  client.on('close', () => { peer.closed = true; });
  await until(() => peer.connack !== null || peer.error !== null || peer.closed, 6000);
  return peer;
}

/** Subscribes and returns the SUBACK reason codes (granted QoS or failure codes). */
export async function subscribe(peer, filters, options = {}) {
  try {
    const granted = await peer.client.subscribeAsync(filters, options);
    return granted.map((g) => g.qos);
  } catch (err) {
    if (Array.isArray(err.packet?.granted)) return err.packet.granted;
    throw err;
  }
}

/** Publishes; returns the PUBACK reason code for QoS 1 (0 for QoS 0), or the error code a refusal carried. */
export async function publish(peer, topic, payload, options = {}) {
  try {
    const packet = await peer.client.publishAsync(topic, payload, options);
    return packet?.reasonCode ?? 0;
  } catch (err) {
    if (typeof err.code === 'number') return err.code;
    throw err;
  }
}

/** Closes the socket without DISCONNECT: an abnormal disconnection as the broker sees it. */
export function drop(peer) {
  peer.client.stream.destroy();
}

export async function close(...peers) {
  await Promise.all(peers.map((p) => (p.client.connected ? p.client.endAsync() : p.client.endAsync(true))));
}

export const payloads = (peer) => peer.messages.map((m) => m.payload);

/** Prints the result as the one JSON line the C# test reads, and exits. */
export function report(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

/** Runs main(), reporting an uncaught failure as a non-zero exit with the stack on stderr. */
export function run(main) {
  main().catch((err) => {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write('\n');
    process.exit(1);
  });
}
