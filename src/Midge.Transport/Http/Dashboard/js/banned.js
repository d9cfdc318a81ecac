// Bans: the list the CONNECT check reads; add one (client id, username or address, optional end), lift one.
import { del, get, post, segment } from './api.js';
import { confirmButton, field, h, time } from './dom.js';
import { pagedTable } from './table.js';

export function mount(view, ctx) {
  const [asLabel, asInput] = field('Ban by', { type: 'select', name: 'as', options: [['clientid', 'client id'], ['username', 'username'], ['peerhost', 'IP address']] });
  const [whoLabel, whoInput] = field('Who', { name: 'who', required: true });
  const [reasonLabel, reasonInput] = field('Reason', { name: 'reason' });
  const [untilLabel, untilInput] = field('Until (empty: for ever)', { name: 'until', type: 'datetime-local' });

  const table = pagedTable({
    name: 'banned',
    empty: 'Nobody is banned.',
    columns: [
      { title: 'As', value: (b) => b.as },
      { title: 'Who', value: (b) => h('span.mono', null, b.who) },
      { title: 'By', value: (b) => b.by },
      { title: 'Reason', value: (b) => b.reason },
      { title: 'Since', value: (b) => time(b.at) },
      { title: 'Until', value: (b) => (b.until === 'infinity' ? 'for ever' : time(b.until)) },
      { title: '', value: (b) => confirmButton('Lift', async () => { await del(`/banned/${b.as}/${segment(b.who)}`); await table.refresh(); }, 'danger-link') },
    ],
    load: (page, limit) => get(`/banned?page=${page}&limit=${limit}`),
  });

  const form = h('form.toolbar', {
    onsubmit: async (e) => {
      e.preventDefault();
      const ban = { as: asInput.value, who: whoInput.value.trim(), reason: reasonInput.value };
      if (untilInput.value) ban.until = new Date(untilInput.value).toISOString();
      try {
        await post('/banned', ban);
        e.target.reset();
        await table.refresh();
      } catch (error) {
        ctx.error(error);
      }
    },
  }, asLabel, whoLabel, reasonLabel, untilLabel, h('button', { type: 'submit' }, 'Ban'));
  view.append(h('h1', null, 'Banned'), form, table.el);
  ctx.every(5000, () => table.refresh());
}
