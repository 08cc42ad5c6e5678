// Pieces several views share: the alert row and the alert actions.

import { api } from '../api.js';
import { endpoint, h, sevBadge, statusBadge, time, toast } from '../util.js';

export const SEV_COLORS = {
  info: '#7f8ea3',
  low: '#4fa3d1',
  medium: '#e5c04b',
  high: '#f08a3c',
  critical: '#ef4d5a',
};

export async function changeAlert(id, action) {
  const v = await api(`/alerts/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
  toast(`Alert ${action === 'ack' ? 'acknowledged' : 'resolved'}`);
  return v;
}

// One alert as a table row; `onChange(view)` after an action succeeds.
export function alertRow(a, ctx, onChange, { compact = false } = {}) {
  const actions = h('td', { class: 'actions' });
  if (ctx.can('operator') && a.status !== 'resolved') {
    if (a.status === 'open') {
      actions.appendChild(h('button', {
        type: 'button', class: 'small', dataset: { action: 'ack' }, 'aria-label': `Acknowledge alert ${a.summary}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try { onChange(await changeAlert(a.id, 'ack')); } catch (err) { toast(err.message, 'error'); e.target.disabled = false; }
        },
      }, 'Ack'));
    }
    actions.appendChild(h('button', {
      type: 'button', class: 'small ghost', dataset: { action: 'resolve' }, 'aria-label': `Resolve alert ${a.summary}`,
      onclick: async (e) => {
        e.target.disabled = true;
        try { onChange(await changeAlert(a.id, 'resolve')); } catch (err) { toast(err.message, 'error'); e.target.disabled = false; }
      },
    }, 'Resolve'));
  }
  const cells = [
    h('td', { class: 'nowrap' }, time(a.timestamp)),
    h('td', {}, sevBadge(a.severity)),
    h('td', {}, h('a', { href: `#/alerts/${a.id}` }, a.category)),
  ];
  if (!compact) {
    cells.push(h('td', {}, a.agent ? h('a', { href: `#/agents/${encodeURIComponent(a.agent)}` }, a.agent) : '–'));
    cells.push(h('td', { class: 'mono' }, endpoint(a.src_ip, a.src_port), a.dst_ip ? ` → ${endpoint(a.dst_ip, a.dst_port)}` : ''));
  }
  cells.push(h('td', { class: 'summary' }, a.summary));
  cells.push(h('td', { class: 'status-cell' }, statusBadge(a.status)));
  cells.push(actions);
  return h('tr', { dataset: { id: a.id, status: a.status }, class: `row-${a.severity}` }, cells);
}

export const ALERT_HEADERS = ['Time', 'Severity', 'Category', 'Agent', 'Source → destination', 'Summary', 'Status', ''];
export const ALERT_HEADERS_COMPACT = ['Time', 'Severity', 'Category', 'Summary', 'Status', ''];
