import { api, qs } from '../api.js';
import { card, clear, empty, h, table, time, toast } from '../util.js';

export async function audit(el, _p, ctx) {
  if (!ctx.can('admin')) { el.append(h('h1', {}, 'Audit log'), empty('The audit log needs the admin role.')); return null; }
  const actor = h('input', { id: 'a-actor', spellcheck: 'false' });
  const t = table(['Time', 'Who', 'Role', 'Via', 'Client', 'Call', 'Status', 'What'], { 'aria-label': 'Audit log' });
  const more = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Load more');
  const form = h('form', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'a-actor' }, 'Key name'), actor), h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Filter')));
  el.append(h('h1', {}, 'Audit log'), h('p', { class: 'muted' }, 'Every call that changed something (or tried to): who, what, when, and how it ended.'), form, card(null, t.table, more));
  let cursor = null;
  async function page(first) {
    const r = await api(`/audit${qs({ actor: actor.value.trim(), cursor: first ? undefined : cursor, limit: 100 })}`);
    if (first) clear(t.tbody);
    for (const e of r.entries) {
      t.tbody.appendChild(h('tr', { class: e.status >= 400 ? 'failed' : '' },
        h('td', { class: 'nowrap' }, time(e.ts)), h('td', {}, e.actor_name || 'unknown'), h('td', {}, e.role || '–'),
        h('td', {}, e.via || '–'), h('td', { class: 'mono' }, e.client || '–'), h('td', { class: 'mono' }, `${e.method} ${e.path}`),
        h('td', {}, String(e.status)), h('td', {}, e.detail || '')));
    }
    cursor = r.next_cursor;
    more.hidden = cursor === null || cursor === undefined;
    if (first && !r.entries.length) t.tbody.appendChild(h('tr', {}, h('td', { colspan: 8 }, empty('Nothing yet.'))));
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); page(true).catch((err) => toast(err.message, 'error')); });
  more.addEventListener('click', () => page(false).catch((err) => toast(err.message, 'error')));
  await page(true);
  return null;
}

export async function keys(el, _p, ctx) {
  if (!ctx.can('admin')) { el.append(h('h1', {}, 'API keys'), empty('API keys need the admin role.')); return null; }
  const t = table(['Id', 'Name', 'Role', 'Created', 'Revoked', ''], { 'aria-label': 'API keys' });
  const shown = h('div', { class: 'newkey', role: 'status', hidden: true });
  const form = h('form', { class: 'filters', 'aria-label': 'New API key' },
    h('div', { class: 'field' }, h('label', { for: 'k-name' }, 'Name'), h('input', { id: 'k-name', name: 'name', required: true, maxlength: 500 })),
    h('div', { class: 'field' }, h('label', { for: 'k-role' }, 'Role'), h('select', { id: 'k-role', name: 'role' }, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)))),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Create key')));
  el.append(h('h1', {}, 'API keys'), card('New key', form, shown), card(null, t.table));
  async function load() {
    const r = await api('/keys');
    clear(t.tbody);
    for (const k of r.keys) {
      const act = h('td', { class: 'actions' });
      if (!k.revoked_at && k.id !== ctx.me.key_id) {
        act.appendChild(h('button', {
          type: 'button', class: 'small ghost', 'aria-label': `Revoke key ${k.name}`,
          onclick: async (e) => {
            if (!window.confirm(`Revoke key "${k.name}"? Its users are cut off at once.`)) return;
            e.target.disabled = true;
            try { await api(`/keys/${k.id}`, { method: 'DELETE' }); toast('Key revoked'); await load(); } catch (err) { toast(err.message, 'error'); e.target.disabled = false; }
          },
        }, 'Revoke'));
      }
      t.tbody.appendChild(h('tr', { class: k.revoked_at ? 'revoked' : '' }, h('td', { class: 'mono' }, k.id), h('td', {}, k.name), h('td', {}, k.role), h('td', {}, time(k.created_at)), h('td', {}, k.revoked_at ? time(k.revoked_at) : '–'), act));
    }
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const k = await api('/keys', { method: 'POST', body: { name: form.elements.name.value.trim(), role: form.elements.role.value } });
      clear(shown).append(h('p', {}, `Key for "${k.name}" (${k.role}). Copy it now: it is not shown again.`), h('code', { class: 'secret' }, k.key));
      shown.hidden = false;
      form.reset();
      await load();
    } catch (err) { toast(err.message, 'error'); }
  });
  await load();
  return null;
}
