// The live event stream (Server-Sent Events). The browser reconnects by itself and sends
// Last-Event-ID, so nothing is missed; a `reset` event means the server no longer had
// what we missed, and views reload their data.

const handlers = new Map();
let source = null;
let statusCb = () => {};

export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type)?.delete(fn);
}

function dispatch(type, data, id) {
  for (const fn of handlers.get(type) || []) {
    try { fn(data, id); } catch (e) { console.warn('event handler failed', e); }
  }
}

const TYPES = ['alert', 'alert_update', 'incident', 'agent', 'metric', 'netstats', 'block', 'silence'];

// The last connection changes, with times: shown to people as the live indicator, kept
// here for troubleshooting (and the browser tests).
const history = [];
window.vigilLive = history;
function note(state) {
  history.push({ at: Date.now(), state });
  if (history.length > 20) history.shift();
  statusCb(state);
}

export function connect(onStatus) {
  statusCb = onStatus || statusCb;
  disconnect();
  source = new EventSource('/api/v1/events', { withCredentials: true });
  source.addEventListener('open', () => note('live'));
  source.addEventListener('error', () => note(source && source.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting'));
  source.addEventListener('ready', () => note('live'));
  source.addEventListener('reset', (e) => dispatch('reset', {}, e.lastEventId));
  for (const t of TYPES) {
    source.addEventListener(t, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      dispatch(t, data, e.lastEventId);
    });
  }
}

export function disconnect() {
  if (source) source.close();
  source = null;
  note('offline');
}
