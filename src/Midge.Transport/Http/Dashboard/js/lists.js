// The plain listings: subscriptions, topics (the routes) and listeners.
import { get, query } from './api.js';
import { field, h } from './dom.js';
import { pagedTable } from './table.js';

/** A page with a title, a filter form over some fields and a table that reloads every few seconds. */
function listPage(view, ctx, title, fields, options) {
  const inputs = fields.map(([label, attrs]) => field(label, attrs));
  const table = pagedTable({
    ...options,
    load: (page, limit) => options.load(page, limit, Object.fromEntries(inputs.map(([, input]) => [input.name, input.value.trim()]))),
  });
  const form = inputs.length === 0 ? null : h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); table.refresh(true).catch(ctx.error); } },
    inputs.map(([label]) => label), h('button', { type: 'submit' }, 'Search'));
  view.append(h('h1', null, title), form, table.el);
  ctx.every(5000, () => table.refresh());
  return table;
}

export function mountSubscriptions(view, ctx) {
  listPage(view, ctx, 'Subscriptions', [
    ['Client id', { name: 'clientid' }],
    ['Matching topic', { name: 'match_topic', placeholder: 'sensors/1/temp' }],
  ], {
    name: 'subscriptions',
    empty: 'No subscriptions.',
    columns: [
      { title: 'Client id', value: (s) => h('span.mono', null, s.clientid) },
      { title: 'Filter', value: (s) => h('span.mono', null, s.topic) },
      { title: 'QoS', value: (s) => s.qos },
      { title: 'No Local', value: (s) => s.nl ?? '' },
      { title: 'Retain As Published', value: (s) => s.rap ?? '' },
      { title: 'Retain Handling', value: (s) => s.rh ?? '' },
    ],
    load: (page, limit, f) => get(`/subscriptions${query({ ...f, page, limit })}`),
  });
}

export function mountTopics(view, ctx) {
  listPage(view, ctx, 'Topics', [['Filter', { name: 'topic' }]], {
    name: 'topics',
    empty: 'No topic is subscribed to.',
    columns: [
      { title: 'Topic filter', value: (t) => h('span.mono', null, t.topic) },
      { title: 'Node', value: (t) => t.node },
    ],
    load: (page, limit, f) => get(`/topics${query({ ...f, page, limit })}`),
  });
}

export function mountListeners(view, ctx) {
  listPage(view, ctx, 'Listeners', [], {
    name: 'listeners',
    columns: [
      { title: 'Id', value: (l) => h('span.mono', null, l.id) },
      { title: 'Type', value: (l) => l.type },
      { title: 'Bind', value: (l) => l.bind },
      { title: 'Connections', value: (l) => l.current_connections },
      { title: 'Maximum', value: (l) => l.max_connections },
      { title: 'Mount point', value: (l) => l.mountpoint ?? '' },
    ],
    load: () => get('/listeners'),
  });
}
