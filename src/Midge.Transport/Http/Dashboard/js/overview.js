// The overview: the broker's figures now, and charts of the last minutes (connections; messages in, out and dropped
// per second; memory), from /stats, /metrics and /nodes polled every second. Rates are the counters' differences.
import uPlot from '../vendor/uPlot-1.6.32.esm.js';
import { get } from './api.js';
import { bytes, duration, h } from './dom.js';

const keep = 300; // points: five minutes at one a second

function chart(title, series, format) {
  const now = h('.now', { dataset: { now: title } });
  const box = h('.chart', { dataset: { chart: title } }, h('h2', null, title), now);
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot({
    width: 420,
    height: 200,
    series: [{}, ...series.map(([label, stroke]) => ({
      label, stroke, width: 2, points: { show: false }, value: (u, v) => (v == null ? '-' : format(v)),
    }))],
    axes: [{}, { values: (u, ticks) => ticks.map(format), size: 70 }],
    scales: { y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
    legend: { live: false },
  }, data, box);
  return {
    box,
    add(t, values) {
      data[0].push(t);
      values.forEach((v, i) => data[i + 1].push(v));
      if (data[0].length > keep) for (const column of data) column.shift();
      plot.setData(data);
      now.textContent = series.map(([label], i) => `${label}: ${values[i] == null ? '-' : format(values[i])}`).join('   ');
      box.dataset.points = String(data[0].length);
      box.dataset.last = values.join(' ');
    },
    resize(width) {
      plot.setSize({ width, height: 200 });
    },
    destroy: () => plot.destroy(),
  };
}

const count = (v) => (Math.abs(v) >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString());

export function mount(view, ctx) {
  const tiles = h('.tiles');
  const connections = chart('Connections', [['connected', '#2f6f9f']], count);
  const messages = chart('Messages per second', [['in', '#1e7b34'], ['out', '#2f6f9f'], ['dropped', '#b3261e']], count);
  const memory = chart('Memory', [['working set', '#7a4fa3'], ['managed heap', '#c77c11'], ['held payloads', '#2f6f9f']], bytes);
  const charts = [connections, messages, memory];
  view.append(h('h1', null, 'Overview'), tiles, h('.charts', null, charts.map((c) => c.box)));

  const fit = () => {
    for (const c of charts) c.resize(Math.max(260, c.box.clientWidth - 22));
  };
  const observer = new ResizeObserver(fit);
  observer.observe(view);
  ctx.onLeave(() => {
    observer.disconnect();
    for (const c of charts) c.destroy();
  });

  let last = null;
  ctx.every(1000, async () => {
    const [stats, metrics, nodes] = await Promise.all([
      get('/stats?aggregate=true'), get('/metrics?aggregate=true'), get('/nodes')]);
    const node = nodes[0];
    const t = Date.now() / 1000;
    const counters = [metrics['messages.received'], metrics['messages.sent'], metrics['messages.dropped']];
    const rates = last ? counters.map((c, i) => Math.max(0, (c - last.counters[i]) / (t - last.t))) : [null, null, null];
    last = { t, counters };
    connections.add(t, [stats['connections.count']]);
    messages.add(t, rates);
    memory.add(t, [node.memory_used, node.heap_size, stats['held.bytes']]);
    const tile = (label, value, name) => h('.tile', { dataset: { tile: name } }, h('.value', null, value), h('.label', null, label));
    tiles.replaceChildren(
      tile('connections', stats['connections.count'], 'connections'),
      tile('sessions', stats['sessions.count'], 'sessions'),
      tile('subscriptions', stats['subscriptions.count'], 'subscriptions'),
      tile('retained messages', stats['retained.count'], 'retained'),
      tile('bans', stats['banned.count'], 'banned'),
      tile('messages in', metrics['messages.received'], 'received'),
      tile('messages out', metrics['messages.sent'], 'sent'),
      tile('dropped', metrics['messages.dropped'], 'dropped'),
      tile('memory', bytes(node.memory_used), 'memory'),
      tile(`up, ${node.node} ${node.version}`, duration(node.uptime), 'uptime'));
  });
}
