import { api, qs } from '../api.js';
import * as events from '../events.js';
import { card, clear, empty, h, table, time, toast } from '../util.js';
import { CATEGORIES } from './alerts.js';

const TTLS = ['15m', '1h', '6h', '24h', '7d', '30d'];

function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

function ttlSelect(id) {
  return h('select', { id, name: 'ttl' }, TTLS.map((t) => h('option', { value: t, selected: t === '1h' }, t)));
}

function state(x) {
  if (x.removed_at) return `removed ${time(x.removed_at)} by ${x.removed_by}`;
  if (new Date(x.expires_at) <= new Date()) return 'lapsed';
  return 'active';
}

async function listView(el, ctx, { kind, title, intro, formFields, toBody, columns, cells }) {
  const all = h('input', { type: 'checkbox', id: `${kind}-all` });
  const t = table([...columns, 'Created', 'Expires', 'State', ''], { 'aria-label': title });
  const children = [h('h1', {}, title), h('p', { class: 'muted' }, intro)];
  let form = null;
  if (ctx.can('operator')) {
    form = h('form', { class: 'filters', 'aria-label': `Add to ${title.toLowerCase()}` }, ...formFields(),
      h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Add')));
    children.push(card(`Add`, form));
  }
  children.push(h('div', { class: 'filters' }, h('label', { class: 'check', for: `${kind}-all` }, all, ' show lapsed and removed')));
  children.push(card(null, t.table));
  el.append(...children);

  async function load() {
    const r = await api(`/${kind}${qs({ all: all.checked ? 'true' : '' })}`);
    clear(t.tbody);
    for (const x of r[kind]) {
      const act = h('td', { class: 'actions' });
      if (ctx.can('operator') && !x.removed_at && new Date(x.expires_at) > new Date()) {
        act.appendChild(h('button', {
          type: 'button', class: 'small ghost', dataset: { action: 'remove' }, 'aria-label': `Remove ${kind.slice(0, -1)} ${x.id}`,
          onclick: async (e) => {
            e.target.disabled = true;
            try { await api(`/${kind}/${x.id}`, { method: 'DELETE' }); toast('Removed'); await load(); } catch (err) { toast(err.message, 'error'); e.target.disabled = false; }
          },
        }, 'Remove'));
      }
      t.tbody.appendChild(h('tr', { dataset: { id: x.id } }, cells(x).map((c) => h('td', {}, c)),
        h('td', { class: 'nowrap' }, `${time(x.created_at)} by ${x.created_by}`),
        h('td', { class: 'nowrap' }, time(x.expires_at)),
        h('td', {}, state(x)), act));
    }
    if (!r[kind].length) t.tbody.appendChild(h('tr', {}, h('td', { colspan: columns.length + 4 }, empty('None.'))));
  }
  all.addEventListener('change', () => load().catch((e) => toast(e.message, 'error')));
  form?.addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      await api(`/${kind}`, { method: 'POST', body: toBody(form.elements) });
      form.reset();
      toast('Added');
      await load();
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      btn.disabled = false;
    }
  });
  await load();
  const offs = [events.on(kind.slice(0, -1), () => load().catch(() => {})), events.on('reset', () => load().catch(() => {}))];
  return () => offs.forEach((f) => f());
}

export function blocks(el, _p, ctx) {
  return listView(el, ctx, {
    kind: 'blocks',
    title: 'Blocks',
    intro: 'Addresses and networks to block for a while. Recorded and shown here; agents enforce them in a later version.',
    formFields: () => [
      field('b-target', 'Address or CIDR network', h('input', { id: 'b-target', name: 'target', required: true, spellcheck: 'false', placeholder: '203.0.113.7 or 198.51.100.0/24' })),
      field('b-ttl', 'For', ttlSelect('b-ttl')),
      field('b-reason', 'Reason', h('input', { id: 'b-reason', name: 'reason', required: true, maxlength: 500 })),
    ],
    toBody: (f) => ({ target: f.target.value.trim(), ttl: f.ttl.value, reason: f.reason.value.trim() }),
    columns: ['Target', 'Reason'],
    cells: (b) => [h('span', { class: 'mono' }, b.target), b.reason],
  });
}

export function silences(el, _p, ctx) {
  return listView(el, ctx, {
    kind: 'silences',
    title: 'Silences',
    intro: 'Mute alerts that match every given field for a while (they are still stored).',
    formFields: () => [
      field('s-category', 'Category', h('select', { id: 's-category', name: 'category' }, h('option', { value: '' }, 'any'), CATEGORIES.map((c) => h('option', { value: c }, c)))),
      field('s-agent', 'Agent', h('input', { id: 's-agent', name: 'agent', spellcheck: 'false' })),
      field('s-source', 'Source address or network', h('input', { id: 's-source', name: 'source', spellcheck: 'false' })),
      field('s-ttl', 'For', ttlSelect('s-ttl')),
      field('s-comment', 'Comment', h('input', { id: 's-comment', name: 'comment', required: true, maxlength: 500 })),
    ],
    toBody: (f) => ({
      category: f.category.value || null,
      agent: f.agent.value.trim() || null,
      source: f.source.value.trim() || null,
      comment: f.comment.value.trim(),
      ttl: f.ttl.value,
    }),
    columns: ['Matches', 'Comment'],
    cells: (s) => [
      [s.category && `category ${s.category}`, s.agent && `agent ${s.agent}`, s.source && `source ${s.source}`].filter(Boolean).join(', '),
      s.comment,
    ],
  });
}
