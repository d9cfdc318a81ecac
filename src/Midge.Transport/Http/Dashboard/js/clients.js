// Clients: search by client id or username, filter by state; a click shows one client with its subscriptions and
// a button that kicks it (DELETE /clients/{id}: the connection closes and the session is discarded).
import { del, get, query, segment } from './api.js';
import { confirmButton, field, fill, h, time } from './dom.js';
import { pagedTable } from './table.js';

export function mount(view, ctx) {
  const [idLabel, idInput] = field('Client id contains', { name: 'clientid', placeholder: 'sensor' });
  const [userLabel, userInput] = field('Username contains', { name: 'username' });
  const [stateLabel, stateInput] = field('State', { type: 'select', name: 'state', options: [['', 'any'], ['connected', 'connected'], ['disconnected', 'disconnected']] });
  const details = h('.details');
  let selected = null;

  const table = pagedTable({
    name: 'clients',
    empty: 'No clients.',
    columns: [
      { title: 'Client id', value: (c) => h('span.mono', null, c.clientid) },
      { title: 'Username', value: (c) => c.username ?? '' },
      { title: 'State', value: (c) => h(c.connected ? 'span.pill.on' : 'span.pill', null, c.connected ? 'connected' : 'away') },
      { title: 'Address', value: (c) => (c.ip_address ? `${c.ip_address}:${c.port}` : '') },
      { title: 'Listener', value: (c) => c.listener ?? '' },
      { title: 'MQTT', value: (c) => ({ 3: '3.1', 4: '3.1.1', 5: '5' })[c.proto_ver] ?? c.proto_ver },
      { title: 'Subscriptions', value: (c) => c.subscriptions_cnt },
      { title: 'Queued', value: (c) => c.mqueue_len },
      { title: 'Connected at', value: (c) => time(c.connected_at) },
    ],
    load: (page, limit) => get(`/clients${query({
      like_clientid: idInput.value.trim(), like_username: userInput.value.trim(), conn_state: stateInput.value, page, limit,
    })}`),
    onRow: (c, tr) => {
      for (const row of tr.parentElement.children) row.classList.toggle('selected', row === tr);
      show(c.clientid).catch(ctx.error);
    },
  });

  async function show(clientId) {
    selected = clientId;
    const [c, subs] = await Promise.all([get(`/clients/${segment(clientId)}`), get(`/clients/${segment(clientId)}/subscriptions`)]);
    if (selected !== clientId) return;
    const facts = [
      ['Client id', c.clientid], ['Username', c.username ?? ''], ['Connected', c.connected ? 'yes' : 'no'],
      ['Address', c.ip_address ? `${c.ip_address}:${c.port}` : ''], ['Listener', c.listener ?? ''],
      ['Protocol', `${c.proto_name ?? 'MQTT'} ${c.proto_ver}`], ['Keep alive', `${c.keepalive} s`],
      ['Session expiry', c.expiry_interval === 'infinity' ? 'never' : `${c.expiry_interval} s`],
      ['Connected at', time(c.connected_at)], ['Disconnected at', time(c.disconnected_at)],
      ['Queued', `${c.mqueue_len} of ${c.mqueue_max}`], ['In flight', `${c.inflight_cnt} of ${c.inflight_max}`],
      ['Bridge', c.is_bridge ? 'yes' : 'no'], ['Mount point', c.mountpoint ?? ''],
    ];
    fill(details,
      h('h2', null, 'Client ', h('span.mono', null, c.clientid)),
      h('dl', null, facts.filter(([, v]) => v !== '' && v !== undefined).map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      h('.toolbar', null,
        confirmButton('Kick', async () => {
          await del(`/clients/${segment(clientId)}`);
          fill(details, h('p.muted', { dataset: { kicked: clientId } }, `${clientId} was kicked.`));
          selected = null;
          await table.refresh();
        })),
      h('h2', null, 'Subscriptions'),
      subs.length === 0 ? h('p.muted', null, 'None.') : h('table', null,
        h('thead', null, h('tr', null, ['Filter', 'QoS', 'No Local', 'Retain As Published', 'Retain Handling'].map((t) => h('th', null, t)))),
        h('tbody', null, subs.map((s) => h('tr', null, h('td.mono', null, s.topic), h('td', null, s.qos), h('td', null, s.nl), h('td', null, s.rap), h('td', null, s.rh))))));
  }

  const search = h('button', { type: 'submit' }, 'Search');
  const form = h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); table.refresh(true).catch(ctx.error); } },
    idLabel, userLabel, stateLabel, search);
  view.append(h('h1', null, 'Clients'), form, table.el, details);
  ctx.every(5000, () => table.refresh());
}
