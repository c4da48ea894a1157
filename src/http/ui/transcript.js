// Turns a session's events into transcript blocks.  Agent output is
// untrusted: everything is built with DOM calls and text nodes, message text
// goes through renderMarkdown (which never creates script, handlers or
// non-http links), and nothing is ever assigned as HTML.
import { collapseText, formatAbsoluteTime, formatRelativeTime } from './format.js';
import { renderMarkdown } from './markdown.js';

const LONG_LINES = 12;
const LONG_CHARS = 1500;

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

// Chromium lays a line out in time quadratic in the length of its longest
// unbroken word (10,000 characters: 1.3 s; 40,000: 15 s; agent output has
// such words: minified code, base64, a hostile 100 kB line), whatever the
// overflow-wrap.  A <wbr> every 80 characters of a long run makes it linear
// (100,000 characters: 0.3 s) and adds no text: copying and textContent
// are unchanged.
const RUN = 80;
export function breakLongWords(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const long = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode())
    if (n.data.length > RUN && /\S{81}/.test(n.data)) long.push(n);
  for (const n of long) {
    const s = n.data;
    const frag = document.createDocumentFragment();
    let run = 0;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) { run = 0; continue; }
      // Never between the halves of a surrogate pair.
      if (++run >= RUN && !(c >= 0xd800 && c <= 0xdbff)) {
        frag.appendChild(document.createTextNode(s.slice(start, i + 1)));
        frag.appendChild(document.createElement('wbr'));
        start = i + 1;
        run = 0;
      }
    }
    frag.appendChild(document.createTextNode(s.slice(start)));
    n.replaceWith(frag);
  }
  return root;
}

// The time of day of an event ("14:03:27"), in the viewer's zone.
export const clock = (iso) => formatAbsoluteTime(iso).slice(11);
export const when = (iso) => formatAbsoluteTime(iso, { ms: true });
export const ago = (iso) => formatRelativeTime(iso, Date.now());

function pretty(s) {
  if (typeof s !== 'string') return JSON.stringify(s, null, 2);
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return s; }
}

// Long text shows its first lines and a button for the rest.
function longText(label, text, cls) {
  const s = String(text ?? '');
  const c = collapseText(s, { maxLines: LONG_LINES, maxChars: LONG_CHARS });
  const pre = el('pre', { class: cls || 'out' }, c.head);
  const block = el('div', { class: 'part-block' }, el('div', { class: 'part-label' }, label), pre);
  if (c.collapsed) {
    const more = el('button', { type: 'button', class: 'quiet more-text' },
      `Show the rest (${c.hiddenLines} more lines, ${c.hiddenChars} characters)`);
    more.addEventListener('click', () => { pre.textContent = s; breakLongWords(pre); more.remove(); });
    block.appendChild(more);
  }
  return block;
}

function part(p) {
  switch (p && p.type) {
    case 'text':
      return el('div', { class: 'md' }, renderMarkdown(p.text ?? '', document));
    case 'reasoning':
      return el('details', { class: 'reasoning' }, el('summary', null, 'Reasoning'),
        el('div', { class: 'md' }, renderMarkdown(p.text ?? '', document)));
    case 'tool_call':
      return el('div', { class: 'tool-call' },
        el('div', { class: 'tool-name' }, el('span', { class: 'tag' }, 'tool'), ` ${p.name}`,
          el('span', { class: 'muted' }, ` ${p.call_id || ''}`)),
        longText('Input', pretty(p.arguments), 'out'));
    case 'tool_result':
      return el('div', { class: 'tool-result' }, longText(`Result ${p.call_id || ''}`, p.output, 'out'));
    case 'file_ref':
      return el('div', { class: 'file-ref' },
        el('span', { class: 'tag' }, p.action || 'file'), ' ', el('code', null, p.path || ''),
        p.diff ? longText('Diff', p.diff, 'out diff') : null);
    case 'image':
      // Never loaded: the path is on the agent's machine, and the page
      // fetches nothing but the API.
      return el('div', { class: 'image-ref' }, el('span', { class: 'tag' }, 'image'), ' ',
        el('code', null, p.path || ''), p.mime ? el('span', { class: 'muted' }, ` ${p.mime}`) : null);
    case 'status':
      return el('div', { class: 'status-part' }, el('span', { class: 'tag' }, 'status'), ` ${p.label || ''}`,
        p.detail ? el('span', { class: 'muted' }, ` ${p.detail}`) : null);
    case 'json':
      return longText('JSON', pretty(p.json), 'out');
    default:
      return longText(p && p.type ? p.type : 'part', pretty(p), 'out');
  }
}

// The block of one item, built from its latest state.  `text` holds the
// deltas streamed so far while the item has no completed content.
export function renderItem(item, streamed) {
  const role = item.role || item.kind;
  const box = el('div', { class: `item kind-${item.kind} role-${role}` });
  const head = el('div', { class: 'item-head' },
    el('span', { class: 'who' }, role === 'assistant' ? 'Assistant' : role === 'user' ? 'User' : role),
    item.status && item.status !== 'completed' ? el('span', { class: 'tag' }, item.status) : null);
  box.appendChild(head);
  const parts = Array.isArray(item.content) ? item.content : [];
  if (parts.length) for (const p of parts) box.appendChild(part(p));
  else if (streamed) box.appendChild(el('div', { class: 'md' }, renderMarkdown(streamed, document)));
  return box;
}

export function renderSystem(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case 'session.started':
      return el('div', { class: 'sys' }, 'Session started');
    case 'session.ended': {
      const why = [d.reason, d.terminated_by ? `by ${d.terminated_by}` : '',
        d.exit_code !== undefined && d.exit_code !== null ? `exit ${d.exit_code}` : ''].filter(Boolean).join(', ');
      return el('div', { class: 'sys ended' }, `Session ended (${why})`,
        d.message ? el('div', { class: 'err-msg' }, d.message) : null,
        d.stderr ? longText('stderr', typeof d.stderr === 'string' ? d.stderr : pretty(d.stderr), 'out') : null);
    }
    case 'error':
      return el('div', { class: 'error-box', role: 'alert' },
        el('strong', null, 'Error '), d.code ? el('span', { class: 'tag' }, d.code) : null, ' ', d.message || '',
        d.details ? longText('Details', pretty(d.details), 'out') : null);
    case 'agent.unparsed':
      return el('div', { class: 'warn-box' }, el('strong', null, 'Unparsed agent output'), ` at ${d.location || '?'}: ${d.error || ''}`);
    default:
      return el('div', { class: 'sys' }, `${ev.type}`, longText('data', pretty(d), 'out'));
  }
}
