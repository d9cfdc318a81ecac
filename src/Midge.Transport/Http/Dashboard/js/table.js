// A table of rows from the API, paged as EMQX pages ({data, meta: {page, limit, count, hasnext}}) or a plain array.
import { h, fill } from './dom.js';

/**
 * columns: [{title, value(row) → text or node}]; load(page, limit) → the API's answer; onRow(row, tr): a click on a
 * row. Returns {el, refresh(firstPage)}.
 */
export function pagedTable({ columns, load, onRow, empty = 'Nothing here.', limit = 50, name }) {
  let page = 1;
  let shown = null; // the answer on screen: a reload that brings the same leaves the rows (and a half-pressed button) be
  const body = h('tbody');
  const info = h('span.muted');
  const prev = h('button.secondary', { type: 'button', onclick: () => go(page - 1) }, 'Previous');
  const next = h('button.secondary', { type: 'button', onclick: () => go(page + 1) }, 'Next');
  const table = h('table', { dataset: { table: name ?? '' } },
    h('thead', null, h('tr', null, columns.map((c) => h('th', null, c.title)))), body);
  const el = h('div', null, table, h('.pager', null, prev, next, info));

  async function go(to) {
    const answer = await load(to, limit);
    const key = JSON.stringify(answer);
    if (key === shown) return;
    shown = key;
    const rows = Array.isArray(answer) ? answer : answer.data;
    const meta = Array.isArray(answer) ? { page: 1, count: rows.length, hasnext: false } : answer.meta;
    page = meta.page ?? to;
    fill(body, rows.length === 0
      ? h('tr', null, h('td.muted', { colSpan: columns.length }, empty))
      : rows.map((row) => {
        const tr = h(onRow ? 'tr.clickable' : 'tr', null, columns.map((c) => h('td', null, c.value(row))));
        if (onRow) tr.addEventListener('click', () => onRow(row, tr));
        return tr;
      }));
    prev.disabled = page <= 1;
    next.disabled = !meta.hasnext;
    info.textContent = meta.count !== undefined ? `${meta.count} in all, page ${page}` : `page ${page}`;
  }

  return { el, refresh: (first) => go(first ? 1 : page) };
}
