// Building the page: elements from data, always as text (client ids, topics and payloads are what clients sent).

/**
 * h('tag.class', {attr: value, onclick: fn}, ...children): an element. Children are nodes or text; null and false
 * are left out; arrays are flattened.
 */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of el. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A labelled input; returns [label, input]. type 'select' (with options: [[value, text], ...]) and 'textarea' make
 * those elements; any other type is an input's.
 */
export function field(label, attrs = {}) {
  const { type, options, ...rest } = attrs;
  let input;
  if (type === 'select') input = h('select', rest, (options ?? []).map(([value, text]) => h('option', { value }, text)));
  else if (type === 'textarea') input = h('textarea', rest);
  else input = h('input', { type, ...rest });
  return [h('label', null, label, input), input];
}

/** A checkbox with its label after it; returns [label, input]. */
export function check(label, attrs = {}) {
  const input = h('input', { ...attrs, type: 'checkbox' });
  return [h('label.check', null, input, label), input];
}

export function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function duration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  s -= mm * 60;
  return d > 0 ? `${d}d ${hh}h ${mm}m` : hh > 0 ? `${hh}h ${mm}m ${s}s` : `${mm}m ${s}s`;
}

export function time(iso) {
  if (!iso || iso === 'infinity') return iso ?? '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A button that asks "Sure?" once before it acts: no browser dialog. */
export function confirmButton(text, action, cls = 'danger') {
  const button = h(`button.${cls}`, { type: 'button' }, text);
  let armed = false;
  let timer;
  button.addEventListener('click', async (e) => {
    e.stopPropagation();
    if (!armed) {
      armed = true;
      button.textContent = `Confirm: ${text.toLowerCase()}`;
      timer = setTimeout(() => {
        armed = false;
        button.textContent = text;
      }, 4000);
      return;
    }
    clearTimeout(timer);
    armed = false;
    button.textContent = text;
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
