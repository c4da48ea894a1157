// The v1 API as the inspector uses it: the token (asked once, kept for the
// tab in sessionStorage, sent as Authorization, never put in a URL), JSON
// calls that turn ProblemDetails into errors, and event streams read with
// fetch (EventSource cannot send a header) that resume after a disconnect
// or a server restart with Last-Event-ID.

const TOKEN_KEY = 'sandbox-journal.token';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
  }
}

let askToken = null; // async () => string | null, set by the app

export function setTokenPrompt(fn) { askToken = fn; }
export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const h = Object.assign({ Accept: 'application/json' }, extra || {});
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// One token prompt at a time, however many calls were refused together.
let asking = null;
async function reauthorize() {
  if (!askToken) return false;
  if (!asking) asking = askToken().finally(() => { asking = null; });
  const t = await asking;
  if (!t) return false;
  setToken(t);
  return true;
}

async function problemOf(resp) {
  try { return await resp.json(); } catch { return null; }
}

// GETs made before the app ran (early.js), by path: the first GET of the
// same path takes the response instead of asking again.  null: it failed,
// ask again.
const early = new Map();

export function prefetch(path) {
  early.set(path, fetch(path, { headers: headers() }).catch(() => null));
}

// fetch with the token; a 401 asks for a token and tries again.
async function authFetch(path, init) {
  const method = (init && init.method) || 'GET';
  const pre = method === 'GET' && !(init && init.headers && Object.keys(init.headers).length) ? early.get(path) : undefined;
  if (pre) early.delete(path);
  let first = pre ? await pre : null;
  for (;;) {
    const resp = first || await fetch(path, Object.assign({}, init, { headers: headers(init && init.headers) }));
    first = null;
    if (resp.status === 401 && await reauthorize()) continue;
    return resp;
  }
}

// GET or POST JSON.  Resolves to the parsed body (null for 204).
export async function call(path, { method = 'GET', body, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await authFetch(path, init);
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp));
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export const sessionPath = (id) => `/v1/sessions/${encodeURIComponent(id)}`;

// Follows a session's events from after `after` until stop() is called.
// onEvent(event) for each event in order; onState('live' | 'reconnecting' |
// 'stopped', detail).  Each reconnect sends Last-Event-ID: the sequence of
// the last event handed on, so nothing is lost or repeated.
export function follow(sessionId, after, onEvent, onState) {
  let last = after;
  let stopped = false;
  let ctrl = null;
  let delay = 250;

  async function once() {
    ctrl = new AbortController();
    const h = { Accept: 'text/event-stream' };
    if (last > 0) h['Last-Event-ID'] = String(last);
    const resp = await authFetch(`${sessionPath(sessionId)}/events/sse`, { headers: h, signal: ctrl.signal });
    if (resp.status === 404) throw Object.assign(new ApiError(404, await problemOf(resp)), { fatal: true });
    if (!resp.ok || !resp.body) throw new ApiError(resp.status, await problemOf(resp));
    onState('live');
    delay = 250;
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + (buf[cut] === '\r' ? 4 : 2));
        let data = '';
        for (const line of frame.split(/\r?\n/)) {
          if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] === ' ' ? 6 : 5);
        }
        if (!data) continue; // a heartbeat comment
        const ev = JSON.parse(data);
        if (typeof ev.sequence === 'number' && ev.sequence <= last) continue;
        last = ev.sequence;
        onEvent(ev);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (e) {
        if (stopped) break;
        if (e.fatal) { onState('stopped', e.message); return; }
      }
      if (stopped) break;
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  })();

  return {
    stop() { stopped = true; if (ctrl) ctrl.abort(); },
    last: () => last,
  };
}
