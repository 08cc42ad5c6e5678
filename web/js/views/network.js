import { api } from '../api.js';
import * as events from '../events.js';
import { bytes, card, clear, empty, h, num, rate, stat, table } from '../util.js';

export async function network(el) {
  const stats = h('div', { class: 'stats' });
  const perAgent = h('div');
  const talkers = h('div');
  const protocols = h('div');
  const sources = h('div');
  el.append(
    h('h1', {}, 'Network'),
    stats,
    h('div', { class: 'grid' },
      card('Top talkers (latest capture interval of each agent)', talkers),
      card('Protocols', protocols),
      card('Top alert sources (24 h)', sources),
    ),
    card('Per agent', perAgent),
  );

  async function load() {
    const n = await api('/network');
    clear(stats).append(
      stat('in', rate(n.totals.rx_bps)),
      stat('out', rate(n.totals.tx_bps)),
      stat('packets/s in', num(n.totals.rx_pps)),
      stat('packets/s out', num(n.totals.tx_pps)),
      stat('agents reporting', n.totals.agents_reporting),
    );
    const a = table(['Agent', 'Status', 'Source', 'In', 'Out', 'Packets/s in', 'Packets/s out', 'Capture drops'], { 'aria-label': 'Traffic per agent' });
    for (const x of n.agents) {
      const drops = x.capture ? (x.capture.kernel_drops || 0) + (x.capture.queue_drops || 0) : null;
      a.tbody.appendChild(h('tr', { dataset: { id: x.id } },
        h('td', {}, h('a', { href: `#/agents/${encodeURIComponent(x.id)}` }, x.id)),
        h('td', {}, x.status),
        h('td', {}, x.source),
        h('td', {}, rate(x.rx_bps)), h('td', {}, rate(x.tx_bps)),
        h('td', {}, num(x.rx_pps)), h('td', {}, num(x.tx_pps)),
        h('td', {}, drops === null ? '–' : num(drops)),
      ));
    }
    clear(perAgent).append(n.agents.length ? a.table : empty('No agent has reported yet.'));
    const t = table(['Address', 'Bytes', 'Packets', 'Seen by'], { 'aria-label': 'Top talkers' });
    for (const x of n.top_talkers) {
      t.tbody.appendChild(h('tr', {}, h('td', { class: 'mono' }, x.ip), h('td', {}, bytes(x.bytes)), h('td', {}, num(x.packets)), h('td', {}, `${x.agents} agent(s)`)));
    }
    clear(talkers).append(n.top_talkers.length ? t.table : empty('No packet capture statistics in the last two minutes.'));
    const total = n.protocols.reduce((s, p) => s + p.packets, 0) || 1;
    const p = h('div', { class: 'bars', role: 'list', 'aria-label': 'Protocols by packets' });
    for (const x of n.protocols) {
      const share = (100 * x.packets) / total;
      const bar = h('i', { class: 'bar' });
      bar.style.width = `${share.toFixed(1)}%`;
      p.appendChild(h('div', { class: 'bar-row', role: 'listitem' }, h('span', { class: 'bar-label' }, x.protocol), h('span', { class: 'bar-track' }, bar), h('span', { class: 'bar-value' }, `${share.toFixed(1)} % · ${bytes(x.bytes)}`)));
    }
    clear(protocols).append(n.protocols.length ? p : empty('No packet capture statistics in the last two minutes.'));
    const s = table(['Source', 'Alerts']);
    for (const x of n.top_sources) s.tbody.appendChild(h('tr', {}, h('td', { class: 'mono' }, h('a', { href: `#/alerts?src_ip=${encodeURIComponent(x.src_ip)}` }, x.src_ip)), h('td', {}, num(x.count))));
    clear(sources).append(n.top_sources.length ? s.table : empty('No alert sources in this window.'));
  }
  await load();
  let pending = null;
  const later = () => { if (!pending) pending = setTimeout(() => { pending = null; load().catch(() => {}); }, 1000); };
  const offs = [events.on('netstats', later), events.on('metric', later), events.on('reset', later)];
  return () => { offs.forEach((f) => f()); clearTimeout(pending); };
}
