// The dashboard shell: login, navigation (hash routes), the live event connection, and
// mounting one view at a time. Each view is `render(el, params, ctx)` returning an
// optional cleanup function.

import { api, setCsrf, setUnauthorizedHandler, ApiError } from './api.js';
import * as events from './events.js';
import { clear, h, toast } from './util.js';
import { overview } from './views/overview.js';
import { agents, agentDetail } from './views/agents.js';
import { alerts, alertDetail } from './views/alerts.js';
import { incidents, incidentDetail } from './views/incidents.js';
import { network } from './views/network.js';
import { blocks, silences } from './views/response.js';
import { audit, keys } from './views/admin.js';

const ROUTES = [
  [/^\/overview$/, overview, 'Overview'],
  [/^\/agents$/, agents, 'Agents'],
  [/^\/agents\/([^/]+)$/, agentDetail, 'Agent'],
  [/^\/alerts$/, alerts, 'Alerts'],
  [/^\/alerts\/([0-9a-f-]+)$/, alertDetail, 'Alert'],
  [/^\/incidents$/, incidents, 'Incidents'],
  [/^\/incidents\/([0-9a-f-]+)$/, incidentDetail, 'Incident'],
  [/^\/network$/, network, 'Network'],
  [/^\/blocks$/, blocks, 'Blocks'],
  [/^\/silences$/, silences, 'Silences'],
  [/^\/audit$/, audit, 'Audit log'],
  [/^\/keys$/, keys, 'API keys'],
];

const ROLES = ['viewer', 'operator', 'admin'];
const ctx = {
  me: null,
  can(role) { return this.me && ROLES.indexOf(this.me.role) >= ROLES.indexOf(role); },
};

let cleanup = null;
const $ = (id) => document.getElementById(id);

function showLogin(message) {
  sessionStorage.removeItem('vigil.session');
  ctx.me = null;
  events.disconnect();
  if (cleanup) { cleanup(); cleanup = null; }
  clear($('view'));
  $('nav').hidden = true;
  $('who').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('login-key').focus();
  $('login-key').select();
  document.title = 'Sign in · vigil';
}

function signedIn(me) {
  ctx.me = me;
  setCsrf(me.csrf_token);
  sessionStorage.setItem('vigil.session', '1');
  $('login').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('whoami').textContent = `${me.name} (${me.role})`;
  for (const a of document.querySelectorAll('#nav [data-role]')) a.hidden = !ctx.can(a.dataset.role);
  events.connect((s) => {
    const el = $('live');
    el.textContent = s;
    el.className = `live live-${s}`;
  });
  route();
}

function route() {
  if (!ctx.me) return;
  const [path, query] = (location.hash || '#/overview').slice(1).split('?');
  ctx.query = new URLSearchParams(query || '');
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  const view = clear($('view'));
  for (const a of document.querySelectorAll('#nav a')) {
    const active = path === a.getAttribute('href').slice(1) || path.startsWith(`${a.getAttribute('href').slice(1)}/`);
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  for (const [re, render, title] of ROUTES) {
    const m = path.match(re);
    if (m) {
      document.title = `${title} · vigil`;
      const params = m.slice(1).map(decodeURIComponent);
      Promise.resolve(render(view, params, ctx))
        .then((c) => { cleanup = typeof c === 'function' ? c : null; })
        .catch((e) => {
          if (e instanceof ApiError && e.status === 401) return;
          view.appendChild(h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
        });
      return;
    }
  }
  location.hash = '#/overview';
}

async function login(ev) {
  ev.preventDefault();
  const input = $('login-key');
  const key = input.value.trim();
  const btn = ev.target.querySelector('button');
  btn.disabled = true;
  try {
    const me = await api('/auth/login', { method: 'POST', body: { key }, quiet401: true });
    input.value = '';
    signedIn(me);
  } catch (e) {
    showLogin(e.status === 401 ? 'That key was not accepted.' : e.message);
  } finally {
    btn.disabled = false;
  }
}

async function logout() {
  try { await api('/auth/logout', { method: 'POST' }); } catch (e) { /* the session may be gone already */ }
  setCsrf(null);
  showLogin();
  toast('Logged out');
}

async function start() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  setUnauthorizedHandler(() => showLogin('Your session has ended; sign in again.'));
  // Only ask the server when this tab signed in before: a fresh visitor sees the login
  // form without a failing request.
  if (sessionStorage.getItem('vigil.session')) {
    try {
      const me = await api('/auth/session', { quiet401: true });
      if (me.via === 'session') { signedIn(me); return; }
    } catch (e) { /* fall through to the login form */ }
  }
  showLogin();
}

start();
