import { api, qs } from '../api.js';
import * as events from '../events.js';
import { SEVERITIES, card, clear, empty, endpoint, h, sevBadge, statusBadge, table, time, toast } from '../util.js';
import { ALERT_HEADERS, alertRow, changeAlert } from './common.js';

export const CATEGORIES = [
  'port_scan', 'syn_flood', 'icmp_flood', 'suspicious_port', 'arp_spoof', 'gateway_mac_change', 'dns_tunnel',
  'dns_spoof', 'data_exfiltration', 'brute_force', 'session_hijack', 'packet_anomaly', 'insecure_protocol',
  'unencrypted_http', 'plaintext_credentials', 'tls_certificate_change', 'weak_tls', 'threat_intel_match',
  'host_cpu_high', 'host_memory_high', 'host_disk_high', 'traffic_spike', 'metric_anomaly', 'dos_suspected',
  'agent_offline', 'integrity_failure', 'replay_attempt', 'honeypot_contact',
];

function select(name, label, options, value) {
  const id = `f-${name}`;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name }, h('option', { value: '' }, 'any'), options.map((o) => h('option', { value: o, selected: o === value }, o))));
}

function input(name, label, value, attrs = {}) {
  const id = `f-${name}`;
  return h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name, value: value || '', ...attrs }));
}

const SEV_RANK = Object.fromEntries(SEVERITIES.map((s, i) => [s, i]));

function matches(a, f) {
  if (f.severity && SEV_RANK[a.severity] < SEV_RANK[f.severity]) return false;
  if (f.category && !f.category.split(',').includes(a.category)) return false;
  if (f.status && a.status !== f.status) return false;
  if (f.agent && a.agent !== f.agent) return false;
  if (f.src_ip && a.src_ip !== f.src_ip) return false;
  return true;
}

export async function alerts(el, _params, ctx) {
  const f = Object.fromEntries(['severity', 'category', 'status', 'agent', 'src_ip'].map((k) => [k, ctx.query.get(k) || '']));
  const form = h('form', { class: 'filters', 'aria-label': 'Alert filters' },
    select('severity', 'Severity at least', SEVERITIES, f.severity),
    select('category', 'Category', CATEGORIES, f.category),
    select('status', 'Status', ['open', 'acknowledged', 'resolved'], f.status),
    input('agent', 'Agent', f.agent, { spellcheck: 'false' }),
    input('src_ip', 'Source address', f.src_ip, { spellcheck: 'false' }),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Apply'), h('button', { type: 'reset', class: 'ghost' }, 'Clear')),
  );
  const t = table(ALERT_HEADERS, { class: 'alerts', 'aria-label': 'Alerts', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Load more');
  const count = h('p', { class: 'muted' });
  el.append(h('h1', {}, 'Alerts'), card(null, form), count, card(null, t.table, more));
  let cursor = null;
  const byId = new Map();
  const showCount = () => { count.textContent = byId.size ? `${byId.size} shown${cursor ? ', more below' : ''}.` : ''; };

  const replace = (v) => {
    const old = byId.get(v.id);
    const tr = alertRow(v, ctx, replace);
    if (old) old.replaceWith(tr);
    byId.set(v.id, tr);
  };

  async function page(first) {
    const r = await api(`/alerts${qs({ ...f, limit: 50, cursor: first ? undefined : cursor })}`);
    if (first) { clear(t.tbody); byId.clear(); }
    for (const a of r.alerts) {
      if (byId.has(a.id)) continue;
      const tr = alertRow(a, ctx, replace);
      byId.set(a.id, tr);
      t.tbody.appendChild(tr);
    }
    cursor = r.next_cursor;
    more.hidden = !cursor;
    showCount();
    if (!byId.size) t.tbody.appendChild(h('tr', { class: 'none' }, h('td', { colspan: 8 }, empty('No alerts match.'))));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    for (const k of Object.keys(f)) f[k] = form.elements[k].value.trim();
    const q = qs(f);
    history.replaceState(null, '', `#/alerts${q}`);
    page(true).catch((err) => toast(err.message, 'error'));
  });
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
  more.addEventListener('click', () => page(false).catch((err) => toast(err.message, 'error')));
  await page(true);

  const offs = [
    events.on('alert', (a) => {
      if (!matches(a, f) || byId.has(a.id)) return;
      t.tbody.querySelector('tr.none')?.remove();
      const tr = alertRow(a, ctx, replace);
      tr.classList.add('fresh');
      byId.set(a.id, tr);
      t.tbody.insertBefore(tr, t.tbody.firstChild);
      showCount();
    }),
    events.on('alert_update', (v) => {
      if (!byId.has(v.id)) return;
      if (v.category) replace(v);
      else api(`/alerts/${v.id}`).then(replace).catch(() => {});
    }),
    events.on('reset', () => page(true).catch(() => {})),
  ];
  return () => offs.forEach((x) => x());
}

export async function alertDetail(el, [id], ctx) {
  const body = h('div');
  el.append(h('p', { class: 'crumbs' }, h('a', { href: '#/alerts' }, 'Alerts'), ' / '), body);

  function render(a) {
    const actions = h('div', { class: 'buttons' });
    if (ctx.can('operator') && a.status !== 'resolved') {
      if (a.status === 'open') actions.appendChild(h('button', { type: 'button', dataset: { action: 'ack' }, onclick: () => act('ack') }, 'Acknowledge'));
      actions.appendChild(h('button', { type: 'button', class: 'ghost', dataset: { action: 'resolve' }, onclick: () => act('resolve') }, 'Resolve'));
    }
    const rows = [
      ['Status', statusBadge(a.status)],
      ['Severity', sevBadge(a.severity)],
      ['Category', a.category],
      ['Observed', time(a.timestamp)],
      ['Received', time(a.received_at)],
      ['Agent', a.agent ? h('a', { href: `#/agents/${encodeURIComponent(a.agent)}` }, a.agent) : '–'],
      ['Source', h('span', { class: 'mono' }, endpoint(a.src_ip, a.src_port) || '–')],
      ['Destination', h('span', { class: 'mono' }, endpoint(a.dst_ip, a.dst_port) || '–')],
      ['Source MAC', h('span', { class: 'mono' }, a.src_mac || '–')],
      ['MITRE ATT&CK', a.mitre || '–'],
      ['Acknowledged', a.acked_at ? `${time(a.acked_at)} by ${a.acked_by}` : '–'],
      ['Resolved', a.resolved_at ? `${time(a.resolved_at)}${a.resolved_by ? ` by ${a.resolved_by}` : ' by its agent'}` : '–'],
      ['Peer', h('span', { class: 'mono' }, a.peer_addr || '–')],
      ['Id', h('span', { class: 'mono' }, a.id)],
    ];
    clear(body).append(
      h('h1', {}, a.summary),
      actions,
      card('Details', h('dl', { class: 'facts', dataset: { status: a.status } }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
      card('Evidence', h('pre', { class: 'json' }, JSON.stringify(a.evidence, null, 2))),
    );
  }

  async function act(action) {
    try { render(await changeAlert(id, action)); } catch (e) { toast(e.message, 'error'); }
  }

  render(await api(`/alerts/${encodeURIComponent(id)}`));
  const off = events.on('alert_update', (v) => { if (v.id === id) api(`/alerts/${id}`).then(render).catch(() => {}); });
  return off;
}
