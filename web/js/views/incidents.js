import { api, qs } from '../api.js';
import * as events from '../events.js';
import { card, clear, empty, h, sevBadge, statusBadge, table, time, toast } from '../util.js';
import { ALERT_HEADERS, alertRow } from './common.js';

export async function incidents(el, _params, ctx) {
  const status = h('select', { id: 'inc-status' }, ['open', 'acknowledged', 'resolved', ''].map((s) => h('option', { value: s }, s || 'any')));
  const t = table(['Updated', 'Opened', 'Severity', 'Status', 'Incident', 'Category', 'Target', 'Alerts'], { 'aria-label': 'Incidents' });
  const more = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Load more');
  el.append(
    h('h1', {}, 'Incidents'),
    h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'inc-status' }, 'Status'), status)),
    card(null, t.table, more),
  );
  let cursor = null;
  async function page(first) {
    const r = await api(`/incidents${qs({ status: status.value, cursor: first ? undefined : cursor, limit: 50 })}`);
    if (first) clear(t.tbody);
    for (const i of r.incidents) {
      t.tbody.appendChild(h('tr', { dataset: { id: i.id } },
        h('td', { class: 'nowrap' }, time(i.updated_at)),
        h('td', { class: 'nowrap' }, time(i.opened_at)),
        h('td', {}, sevBadge(i.severity)),
        h('td', {}, statusBadge(i.status)),
        h('td', {}, h('a', { href: `#/incidents/${i.id}` }, i.title)),
        h('td', {}, i.category),
        h('td', { class: 'mono' }, i.target || '–'),
        h('td', {}, String(i.alert_ids.length)),
      ));
    }
    cursor = r.next_cursor;
    more.hidden = !cursor;
    if (first && !r.incidents.length) t.tbody.appendChild(h('tr', {}, h('td', { colspan: 8 }, empty('No incidents.'))));
  }
  status.addEventListener('change', () => page(true).catch((e) => toast(e.message, 'error')));
  more.addEventListener('click', () => page(false).catch((e) => toast(e.message, 'error')));
  await page(true);
  const offs = [
    events.on('incident', () => page(true).catch(() => {})),
    events.on('reset', () => page(true).catch(() => {})),
  ];
  return () => offs.forEach((f) => f());
}

export async function incidentDetail(el, [id], ctx) {
  const body = h('div');
  el.append(h('p', { class: 'crumbs' }, h('a', { href: '#/incidents' }, 'Incidents'), ' / '), body);
  async function load() {
    const r = await api(`/incidents/${encodeURIComponent(id)}`);
    const i = r.incident;
    const t = table(ALERT_HEADERS, { class: 'alerts', 'aria-label': 'Alerts of this incident' });
    for (const a of r.alerts) t.tbody.appendChild(alertRow(a, ctx, () => load()));
    clear(body).append(
      h('h1', {}, i.title),
      card('Incident', h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, statusBadge(i.status)),
        h('dt', {}, 'Severity'), h('dd', {}, sevBadge(i.severity)),
        h('dt', {}, 'Category'), h('dd', {}, i.category),
        h('dt', {}, 'Target'), h('dd', { class: 'mono' }, i.target || '–'),
        h('dt', {}, 'Opened'), h('dd', {}, time(i.opened_at)),
        h('dt', {}, 'Updated'), h('dd', {}, time(i.updated_at)),
      )),
      card(`Alerts (${r.alerts.length})`, r.alerts.length ? t.table : empty('Its alerts are no longer stored.')),
      card('Evidence', h('pre', { class: 'json' }, JSON.stringify(i.evidence, null, 2))),
    );
  }
  await load();
  return events.on('incident', (i) => { if (i.id === id) load().catch(() => {}); });
}
