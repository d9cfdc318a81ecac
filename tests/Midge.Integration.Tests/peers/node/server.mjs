// What the server tells MQTT.js clients: redirection, Server Keep Alive, CONNACK capabilities, takeover and
// shutdown DISCONNECTs, and SCRAM-SHA-512 enhanced authentication. argv: port scenario [more]
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { args, close, open, report, run, unique, until } from './common.mjs';

const props = (peer) => peer.connack?.properties ?? {};

/** The client side of SCRAM (RFC 5802) over MQTT 5 AUTH packets, for SCRAM-SHA-512. */
function scram(user, password) {
  const nonce = randomBytes(18).toString('base64');
  const bare = `n=${user},r=${nonce}`;
  const state = { first: Buffer.from(`n,,${bare}`), serverVerified: false, expectedServerSignature: null };
  const hmac = (key, text) => createHmac('sha512', key).update(text).digest();
  state.handleAuth = (packet, callback) => {
    const serverFirst = packet.properties.authenticationData.toString();
    const fields = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    const salted = pbkdf2Sync(password, Buffer.from(fields.s, 'base64'), Number(fields.i), 64, 'sha512');
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha512').update(clientKey).digest();
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${fields.r}`;
    const authMessage = `${bare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
    state.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage).toString('base64');
    callback(null, {
      cmd: 'auth',
      reasonCode: 0x18,
      properties: { authenticationMethod: 'SCRAM-SHA-512', authenticationData: Buffer.from(`${withoutProof},p=${proof.toString('base64')}`) },
    });
  };
  return state;
}

const scenarios = {
  // A listener with server_reference answers CONNACK 0x9C carrying the Server Reference. argv: redirect-port
  async redirect() {
    const peer = await open(unique('js-redirected'), {}, Number(args[1]));
    report({ reason: peer.connack?.reasonCode ?? null, server_reference: props(peer).serverReference ?? null });
  },

  // max_keepalive 10: a client asking for 60 s is told 10 s in Server Keep Alive.
  async keepalive() {
    const peer = await open(unique('js-keepalive'), { keepalive: 60 });
    const result = { reason: peer.connack.reasonCode, server_keep_alive: props(peer).serverKeepAlive ?? null };
    await close(peer);
    report(result);
  },

  // The capabilities in CONNACK.
  async capabilities() {
    const peer = await open(unique('js-caps'));
    const p = props(peer);
    const result = {
      maximum_qos: p.maximumQoS ?? null,
      retain_available: p.retainAvailable ?? null,
      topic_alias_maximum: p.topicAliasMaximum ?? null,
      receive_maximum: p.receiveMaximum ?? null,
    };
    await close(peer);
    report(result);
  },

  // A second connection with the same client id: the first gets DISCONNECT 0x8E.
  async takeover() {
    const id = unique('js-twice');
    const first = await open(id);
    const second = await open(id);
    await until(() => first.disconnect !== null, 3000);
    const result = { first_disconnect: first.disconnect?.reasonCode ?? null, second_connected: second.connack?.reasonCode ?? null };
    await close(second);
    report(result);
  },

  // Prints "ready" once connected; the test then stops the broker (SIGTERM) and we report its DISCONNECT.
  async shutdown() {
    const peer = await open(unique('js-shutdown'));
    process.stdout.write('ready\n');
    await until(() => peer.disconnect !== null || peer.closed, 10000);
    report({ disconnect: peer.disconnect?.reasonCode ?? null });
  },

  // SCRAM-SHA-512 against the broker's password file. argv: user password
  async scram() {
    const [, user, password] = args;
    const exchange = scram(user, password);
    const peer = await open(unique('js-scram'), { properties: { authenticationMethod: 'SCRAM-SHA-512', authenticationData: exchange.first } },
      undefined, (client) => { client.handleAuth = exchange.handleAuth; });
    const p = props(peer);
    const serverFinal = p.authenticationData?.toString() ?? null;
    const result = {
      reason: peer.connack?.reasonCode ?? null,
      method: p.authenticationMethod ?? null,
      server_verified: serverFinal !== null && serverFinal === `v=${exchange.expectedServerSignature}`,
    };
    if (peer.client.connected) await close(peer);
    report(result);
  },
};

run(() => scenarios[args[0]]());
