// The inspector: a sessions list paged from the API, a transcript per
// session (newest page first, older pages on scroll, live tail over SSE),
// search through /v1/search, and the actions (create, send, answer,
// terminate).  URLs: /ui/, /ui/sessions/<id>, /ui/sessions/<id>/events/<seq>;
// the server answers index.html for each, so reloads and links keep the place.
import { ApiError, call, follow, q, sessionPath, setToken, setTokenPrompt, token } from './api.js';
import { ago, breakLongWords, clock, el, renderItem, renderSystem, when } from './transcript.js';
import { PAGE, newestPagePath, parseRoute } from './early.js';

const FIRST = 50;        // of a session's newest page, the events in its first frame (more than a screenful)
const LIST_PAGE = 100;   // sessions per list page
const $ = (id) => document.getElementById(id);

// ---- small helpers -------------------------------------------------------

function badge(status) {
  const s = status || 'unknown';
  return el('span', { class: `badge st-${s}`, title: `status: ${s}` }, s);
}

function toast(msg, isError) {
  const t = el('div', { class: `toast${isError ? ' error' : ''}`, role: isError ? 'alert' : 'status' }, msg);
  $('toasts').appendChild(t);
  setTimeout(() => t.remove(), isError ? 8000 : 3000);
}

function failed(what, e) {
  console.warn(what, e);
  toast(`${what}: ${e && e.message ? e.message : e}`, true);
}

function sessionUrl(id, seq) {
  const base = `/ui/sessions/${encodeURIComponent(id)}`;
  return seq ? `${base}/events/${seq}` : base;
}

function statusOf(info) {
  if (!info) return 'unknown';
  if (info.status) return info.status;
  return info.ended ? 'ended' : 'unknown'; // a server without the status field
}

// ---- token ---------------------------------------------------------------

setTokenPrompt(() => new Promise((resolve) => {
  const dlg = $('token-dialog');
  $('token-msg').textContent = token() ? 'The server refused the token. Enter it again.'
    : 'This server needs its access token (sandbox-journal server --token).';
  $('token-input').value = '';
  const done = (v) => {
    dlg.removeEventListener('close', onClose);
    $('token-form').removeEventListener('submit', onSubmit);
    if (dlg.open) dlg.close();
    updateTokenButton(v);
    resolve(v);
  };
  const onSubmit = (e) => { e.preventDefault(); done($('token-input').value.trim() || null); };
  const onClose = () => done(null);
  $('token-form').addEventListener('submit', onSubmit);
  dlg.addEventListener('close', onClose);
  dlg.showModal();
  $('token-input').focus();
}));

function updateTokenButton(t) { $('forget-token').hidden = !(t || token()); }

// ---- sessions list -------------------------------------------------------

// held: not loaded yet, while a session opened by its URL paints first.
const list = { rows: new Map(), cursor: null, done: false, loading: false, gen: 0, paged: true, held: true };

function filters() {
  return { status: $('filter-status').value, agent: $('filter-agent').value };
}

function rowContent(s) {
  const title = s.title || (s.eventCount ? '(no message)' : '(empty)');
  return [
    el('div', { class: 'row-top' }, el('span', { class: 'row-title' }, title), badge(statusOf(s))),
    el('div', { class: 'row-meta' },
      el('code', { class: 'row-id' }, s.sessionId),
      el('span', null, s.agent),
      el('span', { class: 'count' }, `${s.eventCount ?? 0} events`),
      el('time', { datetime: s.updatedAt || '', title: when(s.updatedAt) }, s.updatedAt ? ago(s.updatedAt) : '')),
  ];
}

function upsertRow(s) {
  let li = list.rows.get(s.sessionId);
  const a = el('a', { class: 'row', href: sessionUrl(s.sessionId), 'data-nav': true, 'data-id': s.sessionId }, ...rowContent(s));
  if (view && view.id === s.sessionId) a.setAttribute('aria-current', 'page');
  if (li) li.replaceChildren(a);
  else { li = el('li', null, a); list.rows.set(s.sessionId, li); }
  return li;
}

function matchesFilters(s) {
  const f = filters();
  return (!f.status || statusOf(s) === f.status) && (!f.agent || s.agent === f.agent);
}

async function loadMoreSessions() {
  if (list.held || list.loading || list.done) return;
  list.loading = true;
  const gen = list.gen;
  $('list-status').textContent = 'Loading…';
  try {
    const r = await call(`/v1/sessions${q({ limit: LIST_PAGE, cursor: list.cursor, ...filters() })}`);
    if (gen !== list.gen) return;
    // A server without paging answers every session at once, with no
    // nextCursor: filter here what it could not.
    list.paged = 'nextCursor' in r;
    const ul = $('session-list');
    for (const s of r.sessions) if (list.paged || matchesFilters(s)) ul.appendChild(upsertRow(s));
    list.cursor = r.nextCursor || null;
    list.done = !list.cursor;
    $('list-status').textContent = list.rows.size ? (list.done ? `${list.rows.size} sessions` : '') : 'No sessions';
  } catch (e) {
    if (gen === list.gen) { $('list-status').textContent = 'Could not load sessions'; failed('Sessions', e); }
  } finally {
    if (gen === list.gen) list.loading = false;
  }
  // Keep filling while the sentinel is still in view.
  if (gen === list.gen && !list.done && sentinelVisible($('list-more'), $('list-scroll'))) loadMoreSessions();
}

function sentinelVisible(node, scroller) {
  const a = node.getBoundingClientRect(), b = scroller.getBoundingClientRect();
  return a.top < b.bottom + 200 && a.bottom > b.top - 200;
}

function resetList() {
  list.gen++;
  list.rows.clear();
  list.cursor = null;
  list.done = false;
  list.loading = false;
  $('session-list').replaceChildren();
  loadMoreSessions();
}

// The first page again, every few seconds: counts, statuses and new sessions
// stay current without a reload.
async function refreshList() {
  if (document.hidden || list.held || list.loading) return;
  const gen = list.gen;
  try {
    const r = await call(`/v1/sessions${q({ limit: LIST_PAGE, ...filters() })}`);
    if (gen !== list.gen) return;
    const ul = $('session-list');
    const rows = r.sessions.filter((s) => ('nextCursor' in r) || matchesFilters(s));
    const frag = document.createDocumentFragment();
    for (const s of rows.slice(0, LIST_PAGE)) frag.appendChild(upsertRow(s));
    ul.insertBefore(frag, ul.firstChild);
  } catch { /* the next refresh tries again; the live view shows the outage */ }
}

// ---- search ----------------------------------------------------------------

const search = { gen: 0, q: '', fts: '' };

function snippet(text) {
  // The API marks matches with literal <mark>…</mark> in plain text: split on
  // them and build text nodes, never HTML.
  const out = el('span', { class: 'snippet' });
  let rest = String(text || '');
  let marked = false;
  while (rest) {
    const tag = marked ? '</mark>' : '<mark>';
    const i = rest.indexOf(tag);
    const chunk = i < 0 ? rest : rest.slice(0, i);
    if (chunk) out.appendChild(marked ? el('mark', null, chunk) : document.createTextNode(chunk));
    if (i < 0) break;
    rest = rest.slice(i + tag.length);
    marked = !marked;
  }
  return out;
}

function hitRow(h) {
  return el('li', null, el('a', { class: 'hit', href: sessionUrl(h.sessionId, h.sequence), 'data-nav': true },
    el('div', { class: 'row-meta' }, el('code', null, h.sessionId), el('span', null, `#${h.sequence}`), el('span', { class: 'tag' }, h.type)),
    snippet(h.snippet)));
}

async function runSearch(text) {
  const gen = ++search.gen;
  const box = $('search-results');
  search.q = text.trim();
  search.fts = '';
  if (!search.q) { box.hidden = true; box.replaceChildren(); $('list-scroll').hidden = false; return; }
  box.hidden = false;
  $('list-scroll').hidden = true;
  const ul = el('ul', { class: 'hits', id: 'hits' });
  const status = el('div', { class: 'muted', id: 'search-status' }, 'Searching…');
  box.replaceChildren(status, ul);
  // Ids first: an exact id, then the loaded rows whose id contains the text.
  const ids = new Set();
  try {
    const s = await call(sessionPath(search.q));
    if (gen !== search.gen) return;
    if (s && s.sessionId) ids.add(s.sessionId);
  } catch { /* not an id */ }
  for (const id of list.rows.keys()) if (ids.size < 10 && id.includes(search.q)) ids.add(id);
  for (const id of ids)
    ul.appendChild(el('li', null, el('a', { class: 'hit id-hit', href: sessionUrl(id), 'data-nav': true },
      el('span', { class: 'tag' }, 'session'), ' ', el('code', null, id))));
  await moreHits(gen, ul, status, null);
}

// A query the index cannot parse (a stray quote, a trailing AND, a colon)
// is searched again as one phrase: people type text, not FTS5 syntax.
const phrase = (text) => `"${text.replace(/"/g, '""')}"`;

async function moreHits(gen, ul, status, cursor) {
  try {
    let r;
    try {
      r = await call(`/v1/search${q({ q: search.fts || search.q, limit: 50, cursor })}`);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 400 || search.fts || cursor) throw e;
      search.fts = phrase(search.q);
      r = await call(`/v1/search${q({ q: search.fts, limit: 50 })}`);
    }
    if (gen !== search.gen) return;
    for (const h of r.hits) ul.appendChild(hitRow(h));
    // The index follows the journal: say so when the newest events are not in it yet.
    const lag = r.indexLag ? ` (the ${r.indexLag} newest events are not indexed yet)` : '';
    status.textContent = (ul.children.length ? '' : 'No matches') + lag;
    if (r.nextCursor) {
      const more = el('button', { type: 'button', class: 'more' }, 'More results');
      more.addEventListener('click', () => { more.remove(); moreHits(gen, ul, status, r.nextCursor); });
      ul.after(more);
    }
  } catch (e) {
    if (gen !== search.gen) return;
    status.textContent = e instanceof ApiError && e.status === 400 ? `Search: ${e.message}`
      : e instanceof ApiError && e.status === 404 ? 'This server has no content search; ids only.'
        : `Search failed: ${e.message}`;
    if (!(e instanceof ApiError)) failed('Search', e);
  }
}

// ---- the session view --------------------------------------------------------

let view = null;

function newView(id) {
  return {
    id, info: null, first: 0, loadedTo: 0, hasOlder: false, hasNewer: false, loading: false,
    items: new Map(),   // item_id -> block
    asks: new Map(),    // 'p:'+permission_id / 'q:'+question_id -> block
    seqNode: new Map(), // sequence -> the block node that shows it
    follower: null, infoTimer: 0, closed: false, atBottom: true, pinned: false,
  };
}

function closeView() {
  if (!view) return;
  view.closed = true;
  if (view.follower) view.follower.stop();
  clearTimeout(view.infoTimer);
  view = null;
}

function setLive(state) {
  const live = $('live');
  live.dataset.state = state;
  live.textContent = state === 'live' ? '● live' : state === 'reconnecting' ? 'reconnecting…'
    : state === 'loading' ? 'loading…' : state === 'paused' ? 'history' : 'offline';
}

function blockNode(v, kind, firstSeq, time) {
  const node = el('li', { class: `ev ev-${kind}`, id: `ev-${firstSeq}`, 'data-seq': firstSeq });
  const meta = el('div', { class: 'ev-meta' },
    el('time', { datetime: time || '', title: when(time) }, clock(time)),
    el('a', { href: sessionUrl(v.id, firstSeq), 'data-nav': true, class: 'seq', title: 'Link to this event' }, `#${firstSeq}`),
    el('button', { type: 'button', class: 'raw-btn', title: 'Raw JSON', 'aria-label': `Raw JSON of event ${firstSeq}` }, '{ }'));
  node.appendChild(meta);
  node.appendChild(el('div', { class: 'ev-body' }));
  return node;
}

function setBody(b, content) {
  b.node.querySelector('.ev-body').replaceChildren(breakLongWords(content));
}

function spanSeq(b, seq) {
  b.first = Math.min(b.first, seq);
  b.last = Math.max(b.last, seq);
  b.node.dataset.last = b.last;
}

// Permission and question cards: their request, their decision and its
// time, and buttons while they are pending.
function renderAsk(v, b) {
  const d = b.data || {};
  const isPerm = b.kind === 'permission';
  const pendingList = v.info && (isPerm ? v.info.pendingPermissions : v.info.pendingQuestions);
  const open = !b.resolved && (d.status === 'requested' || !d.status) &&
    (!Array.isArray(pendingList) || pendingList.includes(b.askId)) && !(v.info && v.info.ended);
  // Unchanged cards are left alone: a rebuild under the pointer would eat a click.
  const sig = JSON.stringify([open, b.resolved, d]);
  if (b.sig === sig) return;
  b.sig = sig;
  const box = el('div', { class: `ask ${isPerm ? 'permission' : 'question'}${open ? ' pending' : ''}` });
  box.appendChild(el('div', { class: 'item-head' },
    el('span', { class: 'who' }, isPerm ? 'Permission' : 'Question'),
    el('span', { class: 'tag' }, b.resolved ? b.resolved.status : (open ? 'pending' : d.status || 'requested'))));
  if (isPerm) {
    box.appendChild(el('div', { class: 'ask-text' }, d.action || '(no action given)'));
    if (d.metadata) box.appendChild(el('details', null, el('summary', null, 'Details'), el('pre', { class: 'out' }, JSON.stringify(d.metadata, null, 2))));
  } else {
    box.appendChild(el('div', { class: 'ask-text' }, d.prompt || ''));
  }
  if (b.resolved) {
    const r = b.resolved;
    const what = isPerm ? r.status : (r.status === 'answered' ? `answered: ${r.response ?? ''}` : r.status);
    box.appendChild(el('div', { class: 'decision' }, `${what} at ${clock(r.time)}`));
  }
  if (open) {
    const buttons = el('div', { class: 'ask-actions' });
    const act = async (label, path, body) => {
      for (const btn of buttons.querySelectorAll('button')) btn.disabled = true;
      try {
        await call(`${sessionPath(v.id)}/${path}`, { method: 'POST', body });
        buttons.replaceChildren(el('span', { class: 'muted' }, `${label}: sent`));
      } catch (e) {
        for (const btn of buttons.querySelectorAll('button')) btn.disabled = false;
        failed(label, e);
      }
    };
    const pid = encodeURIComponent(b.askId);
    if (isPerm) {
      for (const [label, reply] of [['Allow once', 'once'], ['Always', 'always'], ['Reject', 'reject']])
        buttons.appendChild(el('button', { type: 'button', class: `reply-${reply}`, onclick: () => act(label, `permissions/${pid}/reply`, { reply }) }, label));
    } else {
      for (const opt of Array.isArray(d.options) ? d.options : [])
        buttons.appendChild(el('button', { type: 'button', class: 'answer', onclick: () => act(opt, `questions/${pid}/reply`, { answers: [[opt]] }) }, opt));
      buttons.appendChild(el('button', { type: 'button', class: 'reply-reject', onclick: () => act('Reject', `questions/${pid}/reject`) }, 'Reject'));
    }
    box.appendChild(buttons);
  }
  setBody(b, box);
}

let renderQueue = new Set();
function rerenderItemSoon(b) {
  if (!renderQueue.size) requestAnimationFrame(() => {
    const q2 = renderQueue; renderQueue = new Set();
    for (const blk of q2) setBody(blk, renderItem(blk.item, blk.streamed));
    if (view) stick(view);
  });
  renderQueue.add(b);
}

// Places one event: a new block (returned), or an update of the block it
// belongs to (null).  `older`: the event comes from a page before what is
// shown, so what is shown is newer and wins.
function place(v, ev, older) {
  const d = ev.data || {};
  const seq = ev.sequence;
  let b = null, fresh = false;
  switch (ev.type) {
    case 'item.started':
    case 'item.completed':
    case 'item.delta': {
      const itemId = ev.type === 'item.delta' ? d.item_id : d.item && d.item.item_id;
      b = v.items.get(itemId);
      if (!b) {
        fresh = true;
        b = { kind: 'item', node: blockNode(v, 'item', seq, ev.time), first: seq, last: seq, completed: false, streamed: '',
          item: ev.type === 'item.delta' ? { item_id: itemId, kind: 'message', role: 'assistant', content: [] } : d.item };
        v.items.set(itemId, b);
      }
      if (ev.type === 'item.delta') {
        if (!b.completed && !older) b.streamed += d.delta || '';
      } else if (ev.type === 'item.completed') {
        b.item = d.item; b.completed = true;
      } else if (!b.completed) {
        b.item = Object.assign({}, d.item, { content: d.item.content && d.item.content.length ? d.item.content : b.item.content });
      }
      if (fresh) setBody(b, renderItem(b.item, b.streamed)); else rerenderItemSoon(b);
      break;
    }
    case 'permission.requested':
    case 'permission.resolved':
    case 'question.requested':
    case 'question.resolved': {
      const isPerm = ev.type.startsWith('permission');
      const askId = isPerm ? d.permission_id : d.question_id;
      const key = `${isPerm ? 'p' : 'q'}:${askId}`;
      b = v.asks.get(key);
      if (!b) {
        fresh = true;
        b = { kind: isPerm ? 'permission' : 'question', askId, node: blockNode(v, 'ask', seq, ev.time), first: seq, last: seq, data: null, resolved: null };
        v.asks.set(key, b);
      }
      if (ev.type.endsWith('requested')) b.data = Object.assign({}, d, b.data ? { status: b.data.status } : {});
      else { b.resolved = { status: d.status, response: d.response, time: ev.time }; if (!b.data) b.data = d; }
      renderAsk(v, b);
      break;
    }
    default:
      fresh = true;
      b = { kind: 'sys', node: blockNode(v, `sys ${ev.type.replace('.', '-')}`, seq, ev.time), first: seq, last: seq };
      setBody(b, renderSystem(ev));
  }
  spanSeq(b, seq);
  b.node._block = b;
  v.seqNode.set(seq, b.node);
  return fresh ? b.node : null;
}

function ingest(v, events, older) {
  const frag = document.createDocumentFragment();
  for (const ev of events) {
    const node = place(v, ev, older);
    if (node) frag.appendChild(node);
  }
  const list2 = $('events');
  const scroller = $('transcript');
  if (older) {
    const before = scroller.scrollHeight;
    list2.insertBefore(frag, list2.firstChild);
    scroller.scrollTop += scroller.scrollHeight - before;
  } else {
    list2.appendChild(frag);
    stick(v);
  }
}

// Follows the newest events while the reader is at the bottom (v.atBottom,
// kept by the scroll listener), and not while a linked event is shown.
function stick(v) {
  if (!v.atBottom || v.pinned) return;
  const scroller = $('transcript');
  scroller.scrollTop = scroller.scrollHeight;
}

async function loadInfo(v) {
  let info;
  try {
    info = await call(sessionPath(v.id));
  } catch (e) {
    // A server without GET /v1/sessions/{id} (405): its list has the row.
    if (!(e instanceof ApiError) || e.status !== 405) throw e;
    const r = await call('/v1/sessions');
    info = r.sessions.find((s) => s.sessionId === v.id);
    if (!info) throw new ApiError(404, { detail: `no session ${v.id}` });
  }
  if (v.closed) return;
  v.info = info;
  showInfo(v);
}

function showInfo(v) {
  const s = v.info;
  $('s-title').textContent = s.title || s.sessionId;
  $('s-status').replaceChildren(badge(statusOf(s)));
  $('s-meta').replaceChildren(
    el('code', null, s.sessionId), ` · ${s.agent}`,
    s.agentMode ? ` · ${s.agentMode}` : '', s.permissionMode ? ` · ${s.permissionMode}` : '',
    s.model ? ` · ${s.model}` : '', ` · ${s.eventCount} events`,
    s.createdAt ? ` · created ${when(s.createdAt).slice(0, 19)}` : '');
  const ended = s.ended || s.status === 'ended';
  $('terminate').disabled = ended;
  $('message').disabled = ended;
  $('send').disabled = ended;
  $('message').placeholder = ended ? 'This session has ended.' : 'Message the agent (Ctrl+Enter sends)';
  for (const b of v.asks.values()) renderAsk(v, b);
  if (list.rows.has(s.sessionId)) upsertRow(s);
}

function infoSoon(v) {
  clearTimeout(v.infoTimer);
  v.infoTimer = setTimeout(() => { if (!v.closed) loadInfo(v).catch(() => {}); }, 300);
}

function startFollow(v) {
  if (v.follower || v.closed) return;
  v.follower = follow(v.id, v.loadedTo, (ev) => {
    if (v.closed) return;
    ingest(v, [ev], false);
    v.loadedTo = ev.sequence;
    infoSoon(v);
  }, (state, detail) => {
    if (v.closed) return;
    setLive(state);
    if (state === 'live') infoSoon(v); // after a restart: the status may have changed
    if (state === 'stopped') toast(`Live tail stopped: ${detail}`, true);
  });
}

async function loadOlder(v) {
  if (v.loading || !v.hasOlder || v.closed) return;
  v.loading = true;
  try {
    const start = Math.max(0, v.first - 1 - PAGE);
    const r = await call(`${sessionPath(v.id)}/events${q({ offset: start, limit: v.first - 1 - start })}`);
    if (v.closed) return;
    ingest(v, r.events, true);
    v.first = start + 1;
    v.hasOlder = start > 0;
    $('older').textContent = v.hasOlder ? 'Older events load as you scroll up' : 'Start of the session';
  } catch (e) { failed('Older events', e); } finally { v.loading = false; }
}

async function loadNewer(v) {
  if (v.loading || !v.hasNewer || v.closed) return;
  v.loading = true;
  try {
    const r = await call(`${sessionPath(v.id)}/events${q({ offset: v.loadedTo, limit: PAGE })}`);
    if (v.closed) return;
    ingest(v, r.events, false);
    if (r.events.length) v.loadedTo = r.events[r.events.length - 1].sequence;
    v.hasNewer = r.hasMore;
    $('newer').textContent = v.hasNewer ? 'Newer events load as you scroll down' : '';
    if (!v.hasNewer) { v.pinned = false; startFollow(v); }
  } catch (e) { failed('Newer events', e); } finally { v.loading = false; }
}

function highlight(v, seq) {
  for (const n of document.querySelectorAll('.ev.target')) n.classList.remove('target');
  let node = v.seqNode.get(seq);
  if (!node) return false;
  node.classList.add('target');
  node.scrollIntoView({ block: 'center' });
  return true;
}

async function openSession(id, seq) {
  document.body.classList.add('in-session');
  for (const a of document.querySelectorAll('#session-list a[aria-current]')) a.removeAttribute('aria-current');
  const row = list.rows.get(id);
  if (row) row.firstChild.setAttribute('aria-current', 'page');
  if (view && view.id === id) {
    if (seq && !highlight(view, seq)) { closeView(); return openSession(id, seq); }
    if (!seq) for (const n of document.querySelectorAll('.ev.target')) n.classList.remove('target');
    return;
  }
  closeView();
  const v = view = newView(id);
  $('empty').hidden = true;
  $('session-view').hidden = false;
  $('events').replaceChildren();
  $('older').textContent = '';
  $('newer').textContent = '';
  $('s-title').textContent = id;
  $('s-status').replaceChildren();
  $('s-meta').replaceChildren();
  setLive('loading');
  try {
    let start, r;
    if (seq) {
      // A linked event: its page is placed by the session's length.
      await loadInfo(v);
      if (v.closed) return;
      const last = v.info.lastSequence ?? v.info.eventCount ?? 0;
      start = Math.max(0, Math.min(seq - 1 - PAGE / 2, last - PAGE));
      r = await call(`${sessionPath(id)}/events${q({ offset: start, limit: PAGE })}`);
    } else {
      // The newest page (tail) and the session row at once: one round trip
      // to the first paint, not two.
      const info = loadInfo(v);
      info.catch(() => {}); // awaited below; its error is reported from there
      r = await call(newestPagePath(id));
      await info;
      start = r.events.length ? r.events[0].sequence - 1 : 0;
    }
    if (v.closed) return;
    v.first = start + 1;
    v.loadedTo = r.events.length ? r.events[r.events.length - 1].sequence : start;
    v.hasOlder = start > 0;
    v.hasNewer = r.hasMore;
    v.pinned = !!seq;
    // Opened at its end, the first frame lays out the newest FIRST events,
    // not the whole page (style and layout are most of the first paint);
    // the rest goes above them after that frame, as an older page would.
    const split = seq ? 0 : Math.max(0, r.events.length - FIRST);
    ingest(v, r.events.slice(split), false);
    if (split) {
      v.loading = true; // loadOlder waits for the rest
      afterFrame(() => {
        if (!v.closed) ingest(v, r.events.slice(0, split), true);
        v.loading = false;
      });
    }
    $('older').textContent = v.hasOlder ? 'Older events load as you scroll up' : 'Start of the session';
    $('newer').textContent = v.hasNewer ? 'Newer events load as you scroll down' : '';
    if (seq) highlight(v, seq);
    else { v.atBottom = true; stick(v); requestAnimationFrame(() => stick(v)); }
    if (!v.hasNewer) startFollow(v); else setLive('paused');
    document.title = `${v.info.title || id} · sandbox-journal`;
  } catch (e) {
    if (v.closed) return;
    setLive('offline');
    $('s-title').textContent = e instanceof ApiError && e.status === 404 ? `No session ${id}` : id;
    failed('Session', e);
  }
}

// fn once the next frame is on screen (the second animation frame's
// callbacks run after it), so it adds nothing to that frame.
function afterFrame(fn) {
  requestAnimationFrame(() => requestAnimationFrame(fn));
}

function showHome() {
  closeView();
  document.body.classList.remove('in-session');
  $('empty').hidden = false;
  $('session-view').hidden = true;
  document.title = 'sandbox-journal inspector';
  for (const a of document.querySelectorAll('#session-list a[aria-current]')) a.removeAttribute('aria-current');
}

// ---- raw JSON and download ------------------------------------------------------

async function showRaw(v, b) {
  const dlg = $('raw-dialog');
  const n = Math.min(b.last - b.first + 1, 50);
  $('raw-title').textContent = n > 1 ? `Events #${b.first}–#${b.first + n - 1}` : `Event #${b.first}`;
  $('raw-json').textContent = 'Loading…';
  dlg.showModal();
  try {
    const r = await call(`${sessionPath(v.id)}/events${q({ offset: b.first - 1, limit: n, include_raw: true })}`);
    $('raw-json').textContent = JSON.stringify(n > 1 ? r.events : r.events[0], null, 2);
    breakLongWords($('raw-json'));
  } catch (e) {
    $('raw-json').textContent = `Could not load: ${e.message}`;
  }
}

async function copyRaw() {
  const text = $('raw-json').textContent;
  try {
    await navigator.clipboard.writeText(text);
    $('raw-copy').textContent = 'Copied';
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('raw-json'));
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
    $('raw-copy').textContent = 'Selected: press Ctrl+C';
  }
  setTimeout(() => { $('raw-copy').textContent = 'Copy'; }, 2000);
}

async function download(v) {
  const btn = $('download');
  btn.disabled = true;
  const lines = [];
  try {
    let offset = 0;
    for (;;) {
      const r = await call(`${sessionPath(v.id)}/events${q({ offset, limit: 10000 })}`);
      for (const ev of r.events) lines.push(JSON.stringify(ev));
      btn.textContent = `Downloading… ${lines.length}`;
      if (!r.hasMore || !r.events.length) break;
      offset = r.events[r.events.length - 1].sequence;
    }
    const url = URL.createObjectURL(new Blob([lines.join('\n') + (lines.length ? '\n' : '')], { type: 'application/x-ndjson' }));
    const a = el('a', { href: url, download: `${v.id}.jsonl` });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { failed('Download', e); } finally { btn.disabled = false; btn.textContent = 'Download JSONL'; }
}

// ---- actions ---------------------------------------------------------------------

let agents = [];

async function loadAgents() {
  try {
    const r = await call('/v1/agents');
    agents = r.agents || [];
  } catch (e) { failed('Agents', e); return; }
  const sel = $('filter-agent');
  const keep = sel.value;
  sel.replaceChildren(el('option', { value: '' }, 'All agents'), ...agents.map((a) => el('option', { value: a.id }, a.id)));
  sel.value = keep;
  $('new-agent').replaceChildren(...agents.map((a) => el('option', { value: a.id }, `${a.id}${a.installed ? '' : ' (not installed)'}`)));
  const mock = agents.find((a) => a.id === 'mock');
  if (mock) $('new-agent').value = 'mock';
}

async function loadModes() {
  const agent = $('new-agent').value;
  const sel = $('new-mode');
  sel.replaceChildren(el('option', { value: '' }, 'default'));
  if (!agent) return;
  try {
    const r = await call(`/v1/agents/${encodeURIComponent(agent)}/modes`);
    for (const m of r.modes || []) sel.appendChild(el('option', { value: m.id, title: m.description }, m.name || m.id));
  } catch { /* modes are optional */ }
}

function randomId() {
  const b = new Uint8Array(6);
  crypto.getRandomValues(b);
  return `ui-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

async function openCreate() {
  $('new-id').value = randomId();
  $('create-error').textContent = '';
  if (!agents.length) await loadAgents();
  await loadModes();
  $('create-dialog').showModal();
  $('new-agent').focus();
}

async function createSession(e) {
  e.preventDefault();
  const id = $('new-id').value.trim();
  const body = { agent: $('new-agent').value };
  if ($('new-mode').value) body.agentMode = $('new-mode').value;
  if ($('new-permission').value) body.permissionMode = $('new-permission').value;
  if ($('new-model').value.trim()) body.model = $('new-model').value.trim();
  $('create-error').textContent = '';
  try {
    await call(sessionPath(id), { method: 'POST', body });
    $('create-dialog').close();
    navigate(sessionUrl(id));
    refreshList();
  } catch (err) {
    $('create-error').textContent = err.message;
  }
}

async function send(e) {
  e.preventDefault();
  const v = view;
  const text = $('message').value;
  if (!v || !text.trim()) return;
  $('send').disabled = true;
  try {
    await call(`${sessionPath(v.id)}/messages`, { method: 'POST', body: { message: text } });
    $('message').value = '';
    v.pinned = false;
    v.atBottom = true;
    stick(v);
  } catch (err) { failed('Send', err); } finally { $('send').disabled = !!(v.info && v.info.ended); }
}

async function terminate() {
  const v = view;
  if (!v || !confirm(`Terminate session ${v.id}?`)) return;
  try {
    await call(`${sessionPath(v.id)}/terminate`, { method: 'POST' });
    infoSoon(v);
  } catch (err) { failed('Terminate', err); }
}

// ---- routing -------------------------------------------------------------------

// Resolves when the page shows what the URL names.
function route() {
  const r = parseRoute();
  if (r.id) return openSession(r.id, r.seq);
  showHome();
  return Promise.resolve();
}

function navigate(url) {
  if (url === location.pathname + location.search) return route();
  history.pushState(null, '', url);
  route();
}

// ---- start -------------------------------------------------------------------

function wire() {
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[data-nav]');
    if (a && e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey) {
      e.preventDefault();
      navigate(a.getAttribute('href'));
      return;
    }
    const raw = e.target.closest && e.target.closest('.raw-btn');
    if (raw && view) {
      const node = raw.closest('.ev');
      if (node && node._block) showRaw(view, node._block);
    }
  });
  window.addEventListener('popstate', route);
  $('transcript').addEventListener('scroll', () => {
    const t = $('transcript');
    if (!view) return;
    view.atBottom = t.scrollHeight - t.scrollTop - t.clientHeight < 60;
    if (view.atBottom && !view.hasNewer) view.pinned = false;
  }, { passive: true });
  document.addEventListener('keydown', (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
    if (e.key === '/' && !typing) { e.preventDefault(); $('search').focus(); }
    if (e.key === 'Escape' && document.activeElement === $('search')) { $('search').value = ''; runSearch(''); }
  });

  let timer = 0;
  $('search').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => runSearch($('search').value), 300); });
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(timer); runSearch($('search').value); });
  $('filter-status').addEventListener('change', resetList);
  $('filter-agent').addEventListener('change', resetList);

  new IntersectionObserver((entries) => { if (entries.some((x) => x.isIntersecting)) loadMoreSessions(); },
    { root: $('list-scroll'), rootMargin: '200px' }).observe($('list-more'));
  new IntersectionObserver((entries) => { if (view && entries.some((x) => x.isIntersecting)) loadOlder(view); },
    { root: $('transcript'), rootMargin: '300px' }).observe($('older'));
  new IntersectionObserver((entries) => { if (view && entries.some((x) => x.isIntersecting)) loadNewer(view); },
    { root: $('transcript'), rootMargin: '300px' }).observe($('newer'));

  $('new-session').addEventListener('click', openCreate);
  $('new-agent').addEventListener('change', loadModes);
  $('create-form').addEventListener('submit', createSession);
  $('create-cancel').addEventListener('click', () => $('create-dialog').close());
  $('composer').addEventListener('submit', send);
  $('message').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e); });
  $('terminate').addEventListener('click', terminate);
  $('download').addEventListener('click', () => view && download(view));
  $('back').addEventListener('click', () => navigate('/ui/'));
  $('raw-copy').addEventListener('click', copyRaw);
  $('raw-close').addEventListener('click', () => $('raw-dialog').close());
  $('forget-token').addEventListener('click', () => { setToken(''); updateTokenButton(''); location.reload(); });
  updateTokenButton();
  setInterval(refreshList, 5000);
}

// The sessions list and the agents menu after the first view: opening a
// session by its URL, their requests and rows would otherwise share the
// main thread with the transcript's first paint.
function startSidebar() {
  list.held = false;
  loadMoreSessions();
  loadAgents();
}

wire();
route().finally(() => afterFrame(startSidebar));
window.__sjInspectorReady = true;
