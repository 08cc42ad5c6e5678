import { api, qs } from '../api.js';
import { LineChart, legend } from '../chart.js';
import * as events from '../events.js';
import { ago, card, clear, empty, h, num, pct, rate, table, time } from '../util.js';
import { ALERT_HEADERS_COMPACT, alertRow } from './common.js';

function statusDot(s) {
  return h('span', { class: `dot dot-${s}`, title: s }, h('span', { class: 'sr' }, s));
}

export async function agents(el, _params, ctx) {
  const t = table(['', 'Agent', 'Host', 'Last seen', 'CPU', 'Memory', 'Disk', 'In', 'Out', 'Packets/s'], { class: 'agents', 'aria-label': 'Agents' });
  const summary = h('p', { class: 'muted' });
  el.append(h('h1', {}, 'Agents'), summary, card(null, t.table));
  const rows = new Map();

  function row(a) {
    const l = a.latest || {};
    const seen = h('td', { class: 'nowrap', dataset: { seen: a.last_seen } }, ago(a.last_seen));
    const tr = h('tr', { dataset: { id: a.id, status: a.status } },
      h('td', {}, statusDot(a.status)),
      h('td', {}, h('a', { href: `#/agents/${encodeURIComponent(a.id)}` }, a.id)),
      h('td', {}, a.info ? `${a.info.hostname} · ${a.info.os}` : '–'),
      seen,
      h('td', { dataset: { k: 'cpu' } }, pct(l.cpu_percent)),
      h('td', { dataset: { k: 'mem' } }, pct(l.memory_percent)),
      h('td', { dataset: { k: 'disk' } }, pct(l.disk_percent)),
      h('td', { dataset: { k: 'rx' } }, l.rx_bps === undefined ? '–' : rate(l.rx_bps)),
      h('td', { dataset: { k: 'tx' } }, l.tx_bps === undefined ? '–' : rate(l.tx_bps)),
      h('td', { dataset: { k: 'pps' } }, l.rx_pps === undefined ? '–' : num((l.rx_pps || 0) + (l.tx_pps || 0))),
    );
    return tr;
  }

  async function load() {
    const r = await api('/agents');
    clear(t.tbody);
    rows.clear();
    for (const a of r.agents) {
      const tr = row(a);
      rows.set(a.id, tr);
      t.tbody.appendChild(tr);
    }
    const online = r.agents.filter((a) => a.status === 'online').length;
    summary.textContent = `${r.agents.length} agents, ${online} online, ${r.agents.length - online} offline.`;
    if (!r.agents.length) t.tbody.appendChild(h('tr', {}, h('td', { colspan: 10 }, empty('No agent has reported yet. Issue one with `vigil certs agent`.'))));
  }
  await load();

  const set = (tr, k, v) => { const c = tr.querySelector(`[data-k="${k}"]`); if (c) c.textContent = v; };
  const offs = [
    events.on('metric', ({ agent, point }) => {
      const tr = rows.get(agent);
      if (!tr) { load().catch(() => {}); return; }
      set(tr, 'cpu', pct(point.cpu));
      set(tr, 'mem', pct(point.mem));
      set(tr, 'disk', pct(point.disk));
      set(tr, 'rx', rate(point.rx_bps));
      set(tr, 'tx', rate(point.tx_bps));
      set(tr, 'pps', num(point.rx_pps + point.tx_pps));
      tr.querySelector('[data-seen]').dataset.seen = new Date().toISOString();
    }),
    events.on('agent', () => load().catch(() => {})),
    events.on('reset', () => load().catch(() => {})),
  ];
  const tick = setInterval(() => {
    for (const c of el.querySelectorAll('[data-seen]')) c.textContent = ago(c.dataset.seen);
  }, 1000);
  return () => { offs.forEach((f) => f()); clearInterval(tick); };
}

const WINDOW_SEC = 15 * 60;

export async function agentDetail(el, [id], ctx) {
  const a = await api(`/agents/${encodeURIComponent(id)}`);
  const interval = Math.max(1, Math.round((a.info?.interval_ms || 5000) / 1000));
  const info = h('dl', { class: 'facts' },
    h('dt', {}, 'Status'), h('dd', { dataset: { k: 'status' } }, a.status),
    h('dt', {}, 'Host'), h('dd', {}, a.info ? a.info.hostname : '–'),
    h('dt', {}, 'OS'), h('dd', {}, a.info ? a.info.os : '–'),
    h('dt', {}, 'Version'), h('dd', {}, a.info ? a.info.version : '–'),
    h('dt', {}, 'Address'), h('dd', { class: 'mono' }, a.last_addr || '–'),
    h('dt', {}, 'Last seen'), h('dd', { dataset: { seen: a.last_seen } }, ago(a.last_seen)),
    h('dt', {}, 'First seen'), h('dd', {}, time(a.first_seen)),
    h('dt', {}, 'Spool'), h('dd', {}, `${a.stats.spool_batches} batches, ${num(a.stats.spool_bytes)} bytes`),
  );
  const defs = [
    { key: 'cpu', title: 'CPU and memory', yMax: 100, format: (v) => `${v.toFixed(0)}%`, series: [{ key: 'cpu', label: 'CPU', color: '#4fd1c5' }, { key: 'mem', label: 'Memory', color: '#b794f4' }] },
    { key: 'disk', title: 'Disk (fullest)', yMax: 100, format: (v) => `${v.toFixed(0)}%`, series: [{ key: 'disk', label: 'Disk used', color: '#f6ad55' }] },
    { key: 'net', title: 'Network', format: (v) => rate(v), series: [{ key: 'rx_bps', label: 'In', color: '#63b3ed' }, { key: 'tx_bps', label: 'Out', color: '#f687b3' }] },
    { key: 'pps', title: 'Packets per second', format: (v) => num(v), series: [{ key: 'rx_pps', label: 'In', color: '#68d391' }, { key: 'tx_pps', label: 'Out', color: '#fc8181' }] },
  ];
  const charts = [];
  const chartCards = defs.map((d) => {
    const canvas = h('canvas', { class: 'chart', dataset: { chart: d.key } });
    charts.push(new LineChart(canvas, { series: d.series, windowSec: WINDOW_SEC, yMax: d.yMax ?? null, format: d.format }));
    return card(d.title, legend(d.series), canvas);
  });
  const alertsT = table(ALERT_HEADERS_COMPACT, { class: 'alerts compact', 'aria-label': 'Alerts of this agent' });
  el.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/agents' }, 'Agents'), ' / '),
    h('h1', {}, id),
    h('div', { class: 'grid' }, card('Agent', info), ...chartCards),
    card('Latest alerts', alertsT.table),
  );

  async function loadSeries() {
    const since = new Date(Date.now() - WINDOW_SEC * 1000).toISOString();
    const r = await api(`/agents/${encodeURIComponent(id)}/metrics${qs({ step: `${interval}s`, since })}`);
    for (const c of charts) c.set(r.points);
  }
  async function loadAlerts() {
    const r = await api(`/alerts${qs({ agent: id, limit: 10 })}`);
    clear(alertsT.tbody);
    for (const al of r.alerts) alertsT.tbody.appendChild(alertRow(al, ctx, () => loadAlerts(), { compact: true }));
    if (!r.alerts.length) alertsT.tbody.appendChild(h('tr', {}, h('td', { colspan: 6 }, empty('No alerts from this agent.'))));
  }
  await Promise.all([loadSeries(), loadAlerts()]);

  const offs = [
    events.on('metric', ({ agent, point }) => {
      if (agent !== id) return;
      for (const c of charts) c.push(point);
      const seen = el.querySelector('[data-seen]');
      seen.dataset.seen = new Date().toISOString();
    }),
    events.on('agent', (ev) => { if (ev.id === id) el.querySelector('[data-k="status"]').textContent = ev.status; }),
    events.on('alert', (al) => { if (al.agent === id) loadAlerts().catch(() => {}); }),
    events.on('reset', () => { loadSeries().catch(() => {}); loadAlerts().catch(() => {}); }),
  ];
  // Slide the time window every second, data or not.
  const tick = setInterval(() => {
    for (const c of charts) { c.trim(); c.draw(); }
    const seen = el.querySelector('[data-seen]');
    seen.textContent = ago(seen.dataset.seen);
  }, 1000);
  return () => { offs.forEach((f) => f()); clearInterval(tick); charts.forEach((c) => c.destroy()); };
}
