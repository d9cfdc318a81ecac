// A browser MQTT client (MQTT.js over the broker's WebSocket listener): connect, subscribe, publish with QoS,
// retain and MQTT 5 properties, and a log of what went out and came in. The connection and the log live in this
// module, so they outlast a visit to another page; leaving the page only stops drawing them.
import mqtt from '../vendor/mqtt-5.16.0.esm.js';
import { get } from './api.js';
import { check, field, fill, h } from './dom.js';
import { payloadText } from './retained.js';

const maxLog = 500;
const state = { client: null, status: 'disconnected', detail: '', subscriptions: [], log: [], url: null, redraw: () => {} };

function note(entry) {
  state.log.unshift({ at: new Date(), ...entry });
  if (state.log.length > maxLog) state.log.length = maxLog;
  state.redraw();
}

function setStatus(status, detail = '') {
  state.status = status;
  state.detail = detail;
  state.redraw();
}

/** ws://host:port/mqtt of the broker's first WebSocket listener, on the host this page came from. */
async function defaultUrl() {
  const secure = location.protocol === 'https:';
  let port = secure ? 8084 : 8083;
  try {
    const listeners = await get('/listeners');
    const ws = listeners.find((l) => l.type === (secure ? 'wss' : 'ws')) ?? listeners.find((l) => l.type === 'ws' || l.type === 'wss');
    if (ws) port = Number(ws.bind.slice(ws.bind.lastIndexOf(':') + 1));
  } catch {
    // the guess stays
  }
  return `${secure ? 'wss' : 'ws'}://${location.hostname}:${port}/mqtt`;
}

/** "key=value" lines as MQTT 5 user properties. */
function userProperties(text) {
  const props = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (line.trim() === '') continue;
    const [k, v] = i < 0 ? [line.trim(), ''] : [line.slice(0, i).trim(), line.slice(i + 1).trim()];
    if (Object.hasOwn(props, k)) props[k] = [].concat(props[k], v);
    else props[k] = v;
  }
  return props;
}

function describe(properties) {
  if (!properties) return '';
  const parts = [];
  for (const [k, v] of Object.entries(properties)) {
    if (k === 'userProperties') for (const [uk, uv] of Object.entries(v)) parts.push(`${uk}=${uv}`);
    else if (v instanceof Uint8Array) {
      if (v.length > 0) parts.push(`${k}: ${payloadText(v)}`); // MQTT.js reports an empty one when there is none
    } else parts.push(`${k}: ${v}`);
  }
  return parts.join(', ');
}

function connect(options) {
  disconnect();
  const client = mqtt.connect(options.url, {
    clientId: options.clientId,
    username: options.username || undefined,
    password: options.password || undefined,
    protocolVersion: options.version,
    clean: options.clean,
    keepalive: options.keepalive,
    reconnectPeriod: 0,
    connectTimeout: 10000,
    timerVariant: 'native',
  });
  state.client = client;
  state.subscriptions = [];
  setStatus('connecting', options.url);
  client.on('connect', (connack) => {
    if (state.client !== client) return;
    setStatus('connected', `${options.url} as ${options.clientId}${connack.sessionPresent ? ' (session present)' : ''}`);
  });
  client.on('message', (topic, payload, packet) => {
    if (state.client !== client) return;
    note({ dir: 'in', topic, payload: payloadText(payload), qos: packet.qos, retain: packet.retain, props: describe(packet.properties) });
  });
  client.on('disconnect', (packet) => {
    if (state.client === client) setStatus('disconnected', `the broker disconnected (reason ${packet.reasonCode ?? '?'})`);
  });
  client.on('error', (error) => {
    if (state.client === client) setStatus('error', error.message);
  });
  client.on('close', () => {
    if (state.client === client && state.status !== 'error' && state.status !== 'disconnected') setStatus('disconnected', 'the connection closed');
  });
}

function disconnect() {
  const client = state.client;
  state.client = null;
  if (client) client.end(true);
  setStatus('disconnected');
}

function subscribe(filter, qos, nl, rh) {
  const client = state.client;
  if (!client?.connected) throw new Error('not connected');
  const opts = { qos };
  if (client.options.protocolVersion === 5) Object.assign(opts, { nl, rh });
  client.subscribe(filter, opts, (error, granted) => {
    if (error) {
      setStatus(state.status, `subscribe failed: ${error.message}`);
      return;
    }
    const g = granted?.[0]?.qos ?? qos;
    if (g >= 128) {
      note({ dir: 'sys', topic: filter, payload: `subscription refused (reason 0x${g.toString(16)})`, qos: '', retain: false, props: '' });
      return;
    }
    state.subscriptions = state.subscriptions.filter((s) => s.filter !== filter).concat({ filter, qos: g });
    state.redraw();
  });
}

function unsubscribe(filter) {
  state.client?.unsubscribe(filter);
  state.subscriptions = state.subscriptions.filter((s) => s.filter !== filter);
  state.redraw();
}

function publish(p) {
  const client = state.client;
  if (!client?.connected) throw new Error('not connected');
  const opts = { qos: p.qos, retain: p.retain };
  if (client.options.protocolVersion === 5) {
    const props = {};
    if (p.contentType) props.contentType = p.contentType;
    if (p.responseTopic) props.responseTopic = p.responseTopic;
    if (p.correlationData) props.correlationData = p.correlationData;
    if (p.expiry) props.messageExpiryInterval = p.expiry;
    if (p.utf8) props.payloadFormatIndicator = true;
    const user = userProperties(p.user);
    if (Object.keys(user).length) props.userProperties = user;
    if (Object.keys(props).length) opts.properties = props;
  }
  client.publish(p.topic, p.payload, opts, (error) => {
    note({ dir: error ? 'sys' : 'out', topic: p.topic, payload: error ? `publish failed: ${error.message}` : p.payload, qos: p.qos, retain: p.retain, props: describe(opts.properties) });
  });
}

export async function mount(view, ctx) {
  state.url ??= await defaultUrl();
  const random = `midge-dashboard-${Math.random().toString(16).slice(2, 10)}`;

  // Connection.
  const [urlLabel, url] = field('WebSocket URL', { name: 'url', value: state.url });
  const [idLabel, clientId] = field('Client id', { name: 'clientid', value: state.client?.options.clientId ?? random });
  const [userLabel, username] = field('Username', { name: 'username', autocomplete: 'off' });
  const [passLabel, password] = field('Password', { name: 'password', type: 'password', autocomplete: 'off' });
  const [versionLabel, version] = field('MQTT', { type: 'select', name: 'version', options: [['5', '5'], ['4', '3.1.1']] });
  const [keepLabel, keepalive] = field('Keep alive (s)', { name: 'keepalive', type: 'number', min: 0, max: 65535, value: 60 });
  const [cleanLabel, clean] = check('Clean start', { name: 'clean', checked: true });
  const status = h('span.status', { dataset: { status: '' } });
  const detail = h('span.muted');
  const connectButton = h('button', { type: 'submit' }, 'Connect');
  const disconnectButton = h('button.secondary', { type: 'button', onclick: () => disconnect() }, 'Disconnect');
  const connectForm = h('form.card', {
    name: 'connect',
    onsubmit: (e) => {
      e.preventDefault();
      state.url = url.value.trim();
      connect({
        url: state.url, clientId: clientId.value.trim(), username: username.value, password: password.value,
        version: Number(version.value), keepalive: Number(keepalive.value), clean: clean.checked,
      });
    },
  }, h('h2', null, 'Connection'), urlLabel, h('.row', null, idLabel, versionLabel), h('.row', null, userLabel, passLabel),
  h('.row', null, keepLabel, cleanLabel), h('.row', null, connectButton, disconnectButton), h('div', null, status, ' ', detail));

  // Subscriptions.
  const [filterLabel, filter] = field('Topic filter', { name: 'filter', value: '#', required: true });
  const [subQosLabel, subQos] = field('QoS', { type: 'select', name: 'qos', options: [['0', '0'], ['1', '1'], ['2', '2']] });
  const [nlLabel, nl] = check('No Local', { name: 'nl' });
  const [rhLabel, rh] = field('Retain handling', { type: 'select', name: 'rh', options: [['0', 'send'], ['1', 'if new'], ['2', 'never']] });
  const subList = h('ul.mono');
  const subscribeForm = h('form.card', {
    name: 'subscribe',
    onsubmit: (e) => {
      e.preventDefault();
      try {
        subscribe(filter.value.trim(), Number(subQos.value), nl.checked, Number(rh.value));
      } catch (error) {
        ctx.error(error);
      }
    },
  }, h('h2', null, 'Subscribe'), h('.row', null, filterLabel, subQosLabel), h('.row', null, rhLabel, nlLabel),
  h('.row', null, h('button', { type: 'submit' }, 'Subscribe')), subList);

  // Publish.
  const [topicLabel, topic] = field('Topic', { name: 'topic', required: true, value: 'dashboard/test' });
  const [payloadLabel, payload] = field('Payload', { type: 'textarea', name: 'payload' });
  const [pubQosLabel, pubQos] = field('QoS', { type: 'select', name: 'qos', options: [['0', '0'], ['1', '1'], ['2', '2']] });
  const [retainLabel, retain] = check('Retain', { name: 'retain' });
  const [ctLabel, contentType] = field('Content type', { name: 'content_type', placeholder: 'text/plain' });
  const [rtLabel, responseTopic] = field('Response topic', { name: 'response_topic' });
  const [cdLabel, correlation] = field('Correlation data', { name: 'correlation_data' });
  const [expLabel, expiry] = field('Message expiry (s)', { name: 'expiry', type: 'number', min: 0 });
  const [pfiLabel, utf8] = check('Payload is UTF-8', { name: 'utf8' });
  const [userPropsLabel, userProps] = field('User properties (key=value a line)', { type: 'textarea', name: 'user_properties' });
  const v5 = h('fieldset.v5', null, h('legend', null, 'MQTT 5 properties'), h('.row', null, ctLabel, expLabel),
    h('.row', null, rtLabel, cdLabel), pfiLabel, userPropsLabel);
  const publishForm = h('form.card', {
    name: 'publish',
    onsubmit: (e) => {
      e.preventDefault();
      try {
        publish({
          topic: topic.value.trim(), payload: payload.value, qos: Number(pubQos.value), retain: retain.checked,
          contentType: contentType.value.trim(), responseTopic: responseTopic.value.trim(), correlationData: correlation.value,
          expiry: Number(expiry.value) || 0, utf8: utf8.checked, user: userProps.value,
        });
      } catch (error) {
        ctx.error(error);
      }
    },
  }, h('h2', null, 'Publish'), topicLabel, payloadLabel, h('.row', null, pubQosLabel, retainLabel), v5,
  h('.row', null, h('button', { type: 'submit' }, 'Publish')));

  // The log.
  const logBody = h('tbody');
  const clearLog = h('button.secondary', { type: 'button', onclick: () => { state.log = []; state.redraw(); } }, 'Clear');
  const log = h('.card', null, h('.row', null, h('h2.grow', null, 'Messages'), clearLog),
    h('table.log', { dataset: { table: 'log' } }, h('thead', null, h('tr', null, ['Time', '', 'Topic', 'QoS', 'Retain', 'Payload', 'Properties'].map((t) => h('th', null, t)))), logBody));

  view.append(h('h1', null, 'MQTT client'), h('.mqtt', null, h('div', null, connectForm, subscribeForm, publishForm), log));

  const redraw = () => {
    status.textContent = state.status;
    status.className = `status ${state.status}`;
    status.dataset.status = state.status;
    detail.textContent = state.detail;
    connectButton.disabled = state.status === 'connecting' || state.status === 'connected';
    disconnectButton.disabled = !state.client;
    v5.disabled = version.value !== '5';
    fill(subList, state.subscriptions.map((s) => h('li', { dataset: { filter: s.filter } }, `${s.filter} (QoS ${s.qos}) `,
      h('button.link', { type: 'button', onclick: () => unsubscribe(s.filter) }, 'unsubscribe'))));
    fill(logBody, state.log.map((m) => h('tr', { dataset: { dir: m.dir, topic: m.topic } },
      h('td', null, m.at.toLocaleTimeString()),
      h(`td.dir-${m.dir}`, null, { in: 'in', out: 'out', sys: '!' }[m.dir]),
      h('td.mono', null, m.topic), h('td', null, m.qos), h('td', null, m.retain ? 'yes' : ''),
      h('td.payload', null, m.payload), h('td.props', null, m.props))));
  };
  version.addEventListener('change', redraw);
  state.redraw = redraw;
  ctx.onLeave(() => {
    if (state.redraw === redraw) state.redraw = () => {};
  });
  redraw();
}
