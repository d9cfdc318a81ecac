// Retained messages: browse by topic filter, open one (payload and properties), delete one or every match.
import { del, get, query, segment } from './api.js';
import { check, confirmButton, field, fill, h, time } from './dom.js';
import { pagedTable } from './table.js';

/** The payload as text when it is UTF-8, else as hex (the first 4 KiB). */
export function payloadText(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const hex = Array.from(bytes.slice(0, 4096), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return `(binary, ${bytes.length} bytes) ${hex}${bytes.length > 4096 ? ' ...' : ''}`;
  }
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function mount(view, ctx) {
  const [filterLabel, filterInput] = field('Topic filter', { name: 'topic', placeholder: 'sensors/#' });
  const [sysLabel, sysInput] = check('$SYS too', { name: 'sys' });
  // No filter: every topic but $SYS/ ('#' does not match '$' topics), unless asked for.
  const filter = () => filterInput.value.trim() || (sysInput.checked ? '' : '#');
  const details = h('.details');

  const remove = (topic) => async () => {
    await del(`/mqtt/retainer/message/${segment(topic)}`);
    fill(details, h('p.muted', { dataset: { deleted: topic } }, `The retained message on ${topic} was deleted.`));
    await table.refresh();
  };

  const table = pagedTable({
    name: 'retained',
    empty: 'No retained messages.',
    columns: [
      { title: 'Topic', value: (m) => h('span.mono', null, m.topic) },
      { title: 'QoS', value: (m) => m.qos },
      { title: 'From', value: (m) => m.from_clientid ?? '(broker)' },
      { title: 'Size', value: (m) => `${m.payload_size} B` },
      { title: 'Expires', value: (m) => time(m.expires_at) },
      { title: '', value: (m) => confirmButton('Delete', remove(m.topic), 'danger-link') },
    ],
    load: (page, limit) => get(`/mqtt/retainer/messages${query({ topic: filter(), page, limit })}`),
    onRow: (m) => show(m.topic).catch(ctx.error),
  });

  async function show(topic) {
    const m = await get(`/mqtt/retainer/message/${segment(topic)}`);
    const props = Object.entries(m.properties ?? {}).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
    fill(details,
      h('h2', null, 'Retained on ', h('span.mono', null, m.topic)),
      h('dl', null,
        h('dt', null, 'QoS'), h('dd', null, m.qos),
        h('dt', null, 'From'), h('dd', null, m.from_clientid ?? '(broker)'),
        props.length ? [h('dt', null, 'Properties'), h('dd.mono', null, props.join('\n'))] : null,
        h('dt', null, 'Payload'), h('dd', null, h('pre.mono', { dataset: { payload: m.topic } }, payloadText(fromBase64(m.payload))))),
      confirmButton('Delete', remove(m.topic)));
  }

  const clear = confirmButton('Delete all matching', async () => {
    await del(`/mqtt/retainer/messages${query({ topic: filter() || '#' })}`);
    await table.refresh(true);
  });
  const form = h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); table.refresh(true).catch(ctx.error); } },
    filterLabel, sysLabel, h('button', { type: 'submit' }, 'Search'), clear);
  sysInput.addEventListener('change', () => table.refresh(true).catch(ctx.error));
  view.append(h('h1', null, 'Retained messages'), form, table.el, details);
  ctx.every(5000, () => table.refresh());
}
