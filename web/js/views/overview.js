import { api } from '../api.js';
import { BarChart, legend } from '../chart.js';
import * as events from '../events.js';
import { SEVERITIES, card, clear, empty, h, num, sevBadge, stat, table, time } from '../util.js';
import { ALERT_HEADERS_COMPACT, SEV_COLORS, alertRow } from './common.js';

const SERIES = SEVERITIES.map((s) => ({ key: s, label: s, color: SEV_COLORS[s] }));

export async function overview(el, _params, ctx) {
  const stats = h('div', { class: 'stats' });
  const canvas = h('canvas', { class: 'chart', dataset: { chart: 'alerts-by-hour' } });
  const sources = h('div');
  const categories = h('div');
  const incidents = h('div');
  const recent = table(ALERT_HEADERS_COMPACT, { class: 'alerts compact', 'aria-label': 'Latest alerts' });
  el.append(
    h('h1', {}, 'Overview'),
    stats,
    h('div', { class: 'grid' },
      card('Alerts by severity, last 24 hours', legend(SERIES), canvas),
      card('Top attackers (alert sources, 24 h)', sources),
      card('Open incidents', incidents),
      card('Top categories (24 h)', categories),
    ),
    card('Latest alerts', recent.table),
  );
  const chart = new BarChart(canvas, { series: SERIES });

  async function load() {
    const o = await api('/overview');
    clear(stats).append(
      stat('agents online', o.agents.online, { dataset: { stat: 'online' } }),
      stat('agents offline', o.agents.offline, { class: o.agents.offline ? 'stat warn' : 'stat' }),
      stat('alerts, 24 h', num(o.alerts_total), { dataset: { stat: 'alerts' } }),
      stat('open incidents', o.open_incidents, { class: o.open_incidents ? 'stat bad' : 'stat' }),
    );
    const now = new Date();
    now.setMinutes(0, 0, 0);
    const buckets = [];
    for (let i = o.hours - 1; i >= 0; i--) {
      const t = new Date(now.getTime() - i * 3600000);
      buckets.push({ t: t.getTime(), label: `${String(t.getHours()).padStart(2, '0')}h`, values: {} });
    }
    for (const c of o.alerts_by_hour) {
      const b = buckets.find((x) => x.t === new Date(c.hour).getTime());
      if (b) b.values[c.severity] = (b.values[c.severity] || 0) + c.count;
    }
    chart.set(buckets);
    const src = table(['Source', 'Alerts'], { 'aria-label': 'Top attackers' });
    for (const s of o.top_sources) {
      src.tbody.appendChild(h('tr', {}, h('td', { class: 'mono' }, h('a', { href: `#/alerts?src_ip=${encodeURIComponent(s.src_ip)}` }, s.src_ip)), h('td', {}, num(s.count))));
    }
    clear(sources).append(o.top_sources.length ? src.table : empty('No alert sources in this window.'));
    const cat = table(['Category', 'Alerts']);
    for (const c of o.top_categories) {
      cat.tbody.appendChild(h('tr', {}, h('td', {}, h('a', { href: `#/alerts?category=${c.category}` }, c.category)), h('td', {}, num(c.count))));
    }
    clear(categories).append(o.top_categories.length ? cat.table : empty('No alerts in this window.'));
    const inc = table(['Opened', 'Severity', 'Incident']);
    for (const i of o.incidents) {
      inc.tbody.appendChild(h('tr', {}, h('td', {}, time(i.opened_at)), h('td', {}, sevBadge(i.severity)), h('td', {}, h('a', { href: `#/incidents/${i.id}` }, i.title))));
    }
    clear(incidents).append(o.incidents.length ? inc.table : empty('No open incidents.'));
  }

  async function loadRecent() {
    const r = await api('/alerts?limit=8');
    clear(recent.tbody);
    for (const a of r.alerts) recent.tbody.appendChild(alertRow(a, ctx, () => loadRecent(), { compact: true }));
  }

  await Promise.all([load(), loadRecent()]);
  let pending = null;
  const later = () => { if (!pending) pending = setTimeout(() => { pending = null; load().catch(() => {}); }, 2000); };
  const offs = [
    events.on('alert', (a) => {
      recent.tbody.insertBefore(alertRow(a, ctx, () => loadRecent(), { compact: true }), recent.tbody.firstChild);
      while (recent.tbody.children.length > 8) recent.tbody.lastChild.remove();
      later();
    }),
    events.on('alert_update', () => loadRecent().catch(() => {})),
    events.on('incident', later),
    events.on('agent', later),
    events.on('reset', () => { load().catch(() => {}); loadRecent().catch(() => {}); }),
  ];
  const timer = setInterval(() => load().catch(() => {}), 30000);
  return () => { offs.forEach((f) => f()); clearInterval(timer); clearTimeout(pending); chart.destroy(); };
}
