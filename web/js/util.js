// Small DOM and formatting helpers. Elements are built with h(), never from HTML text,
// so data from the server (alert summaries, host names) cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

export function sevBadge(s) {
  return h('span', { class: `sev sev-${s}` }, s);
}

export function statusBadge(s) {
  return h('span', { class: `status status-${s}` }, s);
}

export function pct(v) {
  return v === undefined || v === null ? '–' : `${Number(v).toFixed(1)} %`;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];
export function bytes(v) {
  let n = Number(v) || 0;
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${UNITS[i]}`;
}

export function rate(v) {
  return `${bytes(v)}/s`;
}

export function num(v, digits = 0) {
  const n = Number(v) || 0;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(digits);
}

export function time(t) {
  if (!t) return '–';
  const d = new Date(t);
  return d.toLocaleString(undefined, { hour12: false });
}

export function ago(t) {
  if (!t) return 'never';
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function endpoint(ip, port) {
  if (!ip) return '';
  const a = ip.includes(':') ? `[${ip}]` : ip;
  return port ? `${a}:${port}` : ip;
}

let toastTimer = null;
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = `toast toast-${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// A table with a header row; rows are appended by the caller.
export function table(headers, attrs = {}) {
  const tbody = h('tbody');
  const t = h('table', attrs, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), tbody);
  return { table: h('div', { class: 'table-wrap' }, t), tbody };
}

export function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...body);
}

export function stat(label, value, attrs = {}) {
  return h('div', { class: 'stat', ...attrs }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}
