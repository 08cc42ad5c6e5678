// Calls to /api/v1 with the session cookie; changes carry the session's CSRF token.

let csrf = null;
let onUnauthorized = () => {};

export function setCsrf(token) { csrf = token; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = 'GET', body, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let r;
  // Reads are retried when the connection drops (a network change, a server restart);
  // changes are not, so nothing is done twice.
  const tries = method === 'GET' ? 3 : 1;
  for (let i = 0; ; i++) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 15000);
    try {
      r = await fetch(`/api/v1${path}`, {
        method,
        headers,
        credentials: 'same-origin',
        signal: ctl.signal,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      break;
    } catch (e) {
      if (i + 1 >= tries) throw new ApiError(0, 'network', 'the server cannot be reached');
      await new Promise((res) => { setTimeout(res, 300 * (i + 1)); });
    } finally {
      clearTimeout(timer);
    }
  }
  if (r.status === 204) return null;
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, j?.error?.code ?? 'error', j?.error?.message ?? r.statusText);
    if (r.status === 401 && !quiet401) onUnauthorized(err);
    throw err;
  }
  return j;
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, v);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}
