// Safe markdown for the inspector: agent output is untrusted input.
//
// renderMarkdown(text, doc) parses a CommonMark-like subset and builds the
// result with doc.createDocumentFragment / createElement / createTextNode /
// setAttribute / appendChild only.  Nothing is ever parsed as HTML: raw HTML
// in the input stays text, element names come from a fixed list, attributes
// are href/title/rel/target/class (and a numeric `start` on <ol>), and an
// href is set only when the decoded destination is an absolute http(s) URL.
// Images become links: the inspector never loads anything from the internet.
//
// Hostile input must not make it slow or deep.  Every scan that could look
// ahead repeatedly (code span closers, link destinations and titles) reads
// tables computed once per paragraph, the emphasis search keeps CommonMark's
// "openers bottom" so no delimiter is walked twice, and nesting is capped
// (blocks at parse time, inlines when the DOM is built, without recursion).
// The work is therefore linear in the input; `stats.steps` counts it so the
// tests can bound it without a clock.

const MAX_BLOCK_DEPTH = 32;   // nested quotes/lists beyond this are text
const MAX_INLINE_DEPTH = 32;  // deeper emphasis is flattened to its text
const MAX_DELIM_RUN = 32;     // longer runs of * _ ~ are plain text
const MAX_TABLE_COLS = 64;

let work = 0;

// ---------------------------------------------------------------- helpers

const PUNCT_RE = /[\p{P}\p{S}]/u;
const WS_RE = /\s/u;
const ASCII_PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
// Bidirectional overrides and isolates can make text read differently from
// what it is ("Trojan source"); they are shown as visible markers instead.
const BIDI_RE = /[\u202A-\u202E\u2066-\u2069]/;

const ENTITIES = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0',
  copy: '\u00a9', reg: '\u00ae', trade: '\u2122', hellip: '\u2026',
  mdash: '\u2014', ndash: '\u2013', laquo: '\u00ab', raquo: '\u00bb',
  lsquo: '\u2018', rsquo: '\u2019', ldquo: '\u201c', rdquo: '\u201d',
  bull: '\u2022', middot: '\u00b7', times: '\u00d7', divide: '\u00f7',
  deg: '\u00b0', plusmn: '\u00b1', para: '\u00b6', sect: '\u00a7',
  larr: '\u2190', rarr: '\u2192', uarr: '\u2191', darr: '\u2193',
  harr: '\u2194', le: '\u2264', ge: '\u2265', ne: '\u2260', colon: ':',
  tab: '\t', newline: '\n', lpar: '(', rpar: ')', sol: '/', bsol: '\\',
  num: '#', excl: '!', quest: '?', semi: ';', comma: ',', period: '.',
  equals: '=', plus: '+', ast: '*', lowbar: '_', grave: '`', verbar: '|',
  lbrack: '[', rbrack: ']', lcub: '{', rcub: '}', hyphen: '-', dash: '-',
  Tab: '\t', NewLine: '\n', percnt: '%', commat: '@', dollar: '$',
};

// Trailing spaces and tabs removed.  By hand: /[ \t]+$/ retries from every
// position of a long run of spaces, quadratic on hostile input.
function trimEndSpace(s) {
  let e = s.length;
  while (e > 0 && (s[e - 1] === ' ' || s[e - 1] === '\t')) { work++; e--; }
  return e === s.length ? s : s.slice(0, e);
}
function isBlank(s) { return /^[ \t]*$/.test(s); }
function isWs(c) { return c === undefined || c === '' || WS_RE.test(c); }
function isPunct(c) { return c !== undefined && c !== '' && PUNCT_RE.test(c); }

// Decodes one entity reference at s[i] === '&'.  Returns [text, length] or
// null.  The scan is bounded by the longest name.
function entityAt(s, i) {
  let j = i + 1;
  if (s[j] === '#') {
    j++;
    let hex = false;
    if (s[j] === 'x' || s[j] === 'X') { hex = true; j++; }
    const start = j;
    const re = hex ? /[0-9a-fA-F]/ : /[0-9]/;
    while (j < s.length && j - start < (hex ? 6 : 7) && re.test(s[j])) j++;
    if (j === start || s[j] !== ';') return null;
    let cp = parseInt(s.slice(start, j), hex ? 16 : 10);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
    return [String.fromCodePoint(cp), j + 1 - i];
  }
  const start = j;
  while (j < s.length && j - start < 32 && /[A-Za-z0-9]/.test(s[j])) j++;
  if (j === start || s[j] !== ';') return null;
  const name = s.slice(start, j);
  if (!Object.prototype.hasOwnProperty.call(ENTITIES, name)) return null;
  return [ENTITIES[name], j + 1 - i];
}

// Backslash escapes and entities decoded, as in a link destination or title.
function unescapeString(s) {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    work++;
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && ASCII_PUNCT.includes(s[i + 1])) {
      out += s[++i];
    } else if (c === '&') {
      const e = entityAt(s, i);
      if (e) { out += e[0]; i += e[1] - 1; } else out += c;
    } else out += c;
  }
  return out;
}

// The only gate for an href: the destination, decoded, with what a browser
// ignores removed (leading and trailing C0 controls and spaces, any tab or
// newline inside), must parse as an absolute http: or https: URL.  The
// attribute gets the parser's own serialization, so the browser reads the
// very URL that was checked.  Returns null otherwise.
export function safeHref(raw) {
  if (typeof raw !== 'string') return null;
  let a = 0;
  let b = raw.length;
  while (a < b && raw.charCodeAt(a) <= 0x20) a++;
  while (b > a && raw.charCodeAt(b - 1) <= 0x20) b--;
  const s = raw.slice(a, b).replace(/[\t\n\r]/g, '');
  if (!/^https?:\/\//i.test(s)) return null;
  let url;
  try { url = new URL(s); } catch { return null; }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (!url.hostname) return null;
  return url.href;
}

// ------------------------------------------------------------- block parse

// Expands tabs in the leading run of spaces, tabs and '>' (where they decide
// indentation) to the next multiple of 4; tabs further in stay as they are.
function expandLeadingTabs(line) {
  if (line.indexOf('\t') < 0) return line;
  let out = '';
  let col = 0;
  let i = 0;
  for (; i < line.length; i++) {
    work++;
    const c = line[i];
    if (c === '\t') { const n = 4 - (col % 4); out += ' '.repeat(n); col += n; }
    else if (c === ' ' || c === '>') { out += c; col++; }
    else break;
  }
  return out + line.slice(i);
}

// Spaces at s[from...], counted up to `cap` (callers only need to know
// "at least 4" or "at least an item's indent"), so a deep container stack
// over a long run of spaces costs O(1) per container.
function leadingSpaces(s, from, cap = 32) {
  let i = from;
  while (s[i] === ' ' && i - from < cap) { work++; i++; }
  return i - from;
}

const FENCE_RE = /^(`{3,}|~{3,})[ \t]*(.*)$/;
const ATX_RE = /^(#{1,6})(?:[ \t]+|$)(.*)$/;
const HR_RE = /^(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$/;
const BULLET_RE = /^([-+*])(?=[ \t]|$)/;
const ORDERED_RE = /^([0-9]{1,9})([.)])(?=[ \t]|$)/;
const SETEXT_RE = /^(?:=+|-+)[ \t]*$/;
// Tested on a line without trailing spaces, so no two [ \t]* compete.
const TABLE_DELIM_RE = /^\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?$/;

// A heading's text without its optional closing run of '#'.
function atxText(raw) {
  let t = trimEndSpace(raw);
  let e = t.length;
  while (e > 0 && t[e - 1] === '#') { work++; e--; }
  if (e < t.length && (e === 0 || t[e - 1] === ' ' || t[e - 1] === '\t')) t = t.slice(0, e);
  return trimEndSpace(t).trim();
}

function newBlock(type, parent) {
  const b = { type, parent, children: [], open: true, lines: null };
  if (parent) parent.children.push(b);
  return b;
}

// Splits a table row on unescaped pipes, dropping the outer ones.
function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    work++;
    if (s[i] === '\\' && s[i + 1] === '|') { cur += '|'; i++; continue; }
    if (s[i] === '|') { cells.push(cur.trim()); cur = ''; if (cells.length >= MAX_TABLE_COLS) return cells; continue; }
    cur += s[i];
  }
  cells.push(cur.trim());
  return cells;
}

function parseBlocks(text) {
  const root = newBlock('document', null);
  root.depth = 0;
  let tip = root;  // deepest open block
  const lines = text.split('\n');

  // Closes the deepest open block.  A list that ends on a blank line hands
  // the blank to the list around it: the next item there is loose.
  const closeTip = () => {
    work++;
    const t = tip;
    t.open = false;
    if (t.type === 'list' && t.sawBlank) {
      for (let p = t.parent; p; p = p.parent) { work++; if (p.type === 'list') { p.sawBlank = true; break; } }
    }
    tip = t.parent;
  };
  const innermostList = (b) => {
    for (let p = b; p; p = p.parent) { work++; if (p.type === 'list') return p; }
    return null;
  };
  // A new child closes what is open under parent first.  A child added
  // after a blank line inside a list makes that list loose.
  const add = (type, parent) => {
    while (tip !== parent) closeTip();
    const b = newBlock(type, parent);
    b.depth = parent.depth + 1;
    tip = b;
    const l = innermostList(parent);
    if (l && l.sawBlank && l.children.length > 1 - (type === 'item' ? 0 : 1)) l.loose = true;
    return b;
  };

  let prevInk = false;
  for (let ln = 0; ln < lines.length; ln++) {
    work++;
    const line = expandLeadingTabs(lines[ln]);
    // The line is blank from p on when its last non-blank character is
    // before p: one scan per line, not one per container.
    let lastInk = line.length - 1;
    while (lastInk >= 0 && (line[lastInk] === ' ' || line[lastInk] === '\t')) { work++; lastInk--; }
    const blankFrom = (p) => lastInk < p;
    // A blank line matters to the lists around it only until the next line
    // with content has been placed (and has made a list loose, or not).
    if (prevInk) {
      for (let p = tip; p; p = p.parent) { work++; if (p.type === 'list') p.sawBlank = false; }
    }
    prevInk = lastInk >= 0;
    let pos = 0;
    let container = root;
    let allMatched = true;

    // 1. Continue the open containers the line still belongs to.  Leaves
    // that take lines (paragraph, table) are not entered: a block start can
    // still interrupt them.
    while (container.children.length) {
      work++;
      const last = container.children[container.children.length - 1];
      if (!last.open || last.type === 'para' || last.type === 'table') break;
      let ok = false;
      if (last.type === 'quote') {
        const ind = leadingSpaces(line, pos);
        if (ind <= 3 && line[pos + ind] === '>') {
          pos += ind + 1;
          if (line[pos] === ' ') pos++;
          ok = true;
        }
      } else if (last.type === 'list') {
        ok = true;  // its items decide
      } else if (last.type === 'item') {
        if (blankFrom(pos)) {
          ok = last.children.length > 0;
          if (ok) pos += Math.min(last.indent, leadingSpaces(line, pos));
        } else if (leadingSpaces(line, pos) >= last.indent) {
          pos += last.indent;
          ok = true;
        }
      } else if (last.type === 'code' && last.fence) {
        ok = true;
      } else if (last.type === 'code') {
        if (leadingSpaces(line, pos) >= 4) { pos += 4; ok = true; }
        else if (blankFrom(pos)) { ok = true; pos = line.length; }
      }
      if (!ok) { allMatched = false; break; }
      container = last;
    }
    if (container.type === 'list') { container = container.parent; allMatched = false; }

    const blank = blankFrom(pos);

    // Code blocks take the line as it is (a fenced one up to its fence).
    if (allMatched && container.type === 'code' && container.fence) {
      const ind = leadingSpaces(line, pos);
      const m = ind <= 3 ? /^(`{3,}|~{3,})[ \t]*$/.exec(line.slice(pos + ind)) : null;
      if (m && m[1][0] === container.fence[0] && m[1].length >= container.fence.length) {
        closeTip();
      } else {
        let k = 0;
        while (k < container.fenceIndent && line[pos + k] === ' ') k++;
        container.lines.push(line.slice(pos + k));
      }
      continue;
    }
    if (allMatched && container.type === 'code') {
      container.lines.push(line.slice(pos));
      continue;
    }

    if (blank) {
      const l = innermostList(container);
      if (l) l.sawBlank = true;
    }

    // The paragraph (or table) left open by the previous line: continued
    // at its own level, or lazily from a line that missed a container.
    let para = tip.type === 'para' && !blank ? tip : null;
    let paraCont = !!para && para.parent === container && allMatched;
    let lazy = !!para && !paraCont;
    const table = tip.type === 'table' && tip.parent === container && allMatched && !blank ? tip : null;

    // 2. New containers (quotes, list items), then at most one leaf.
    let started = false;
    let leafDone = false;  // the line was consumed by a one-line leaf
    for (;;) {
      work++;
      const ind = leadingSpaces(line, pos);
      const s = line.slice(pos + ind);
      if (ind >= 4) {
        if (blank || para) break;
        const b = add('code', container);
        b.lines = [line.slice(pos + 4)];
        container = b;
        started = true;
        leafDone = true;
        break;
      }
      if (s[0] === '>' && container.depth < MAX_BLOCK_DEPTH) {
        pos += ind + 1;
        if (line[pos] === ' ') pos++;
        container = add('quote', container);
        started = true;
        para = null; paraCont = false; lazy = false;
        continue;
      }
      let m;
      if ((m = FENCE_RE.exec(s)) && !(m[1][0] === '`' && m[2].includes('`'))) {
        const b = add('code', container);
        b.fence = m[1];
        b.fenceIndent = ind;
        b.info = unescapeString(m[2].trim().split(/\s+/)[0] || '');
        b.lines = [];
        started = true;
        leafDone = true;
        break;
      }
      if ((m = ATX_RE.exec(s))) {
        const b = add('heading', container);
        b.level = m[1].length;
        b.text = atxText(m[2]);
        closeTip();
        started = true;
        leafDone = true;
        break;
      }
      if (paraCont && SETEXT_RE.test(s)) {
        para.type = 'heading';
        para.level = s[0] === '=' ? 1 : 2;
        para.text = para.lines.join('\n').trim();
        closeTip();
        started = true;
        leafDone = true;
        break;
      }
      // A break ends in its marker: checking that first keeps a line of
      // nested "- - - ... x" items from rescanning itself once per item.
      if ('*-_'.includes(line[lastInk]) && HR_RE.test(s)) {
        add('hr', container);
        closeTip();
        started = true;
        leafDone = true;
        break;
      }
      if (paraCont && s.includes('-') && TABLE_DELIM_RE.test(trimEndSpace(s))) {
        const header = splitRow(para.lines[para.lines.length - 1]);
        const delims = splitRow(s);
        if (header.length === delims.length && (s.includes('|') || header.length > 1)) {
          para.lines.pop();
          if (para.lines.length === 0) { container.children.pop(); tip = container; }
          const b = add('table', container);
          b.align = delims.map((d) => (d.startsWith(':') && d.endsWith(':') ? 'center'
            : d.endsWith(':') ? 'right' : d.startsWith(':') ? 'left' : ''));
          b.header = header;
          b.rows = [];
          started = true;
          leafDone = true;
          break;
        }
      }
      // List items.  An ordered one interrupts a paragraph only from 1, and
      // an empty item never does.
      if (container.depth < MAX_BLOCK_DEPTH - 1) {
        const bm = BULLET_RE.exec(s);
        const om = bm ? null : ORDERED_RE.exec(s);
        const mk = bm || om;
        if (mk) {
          const after = s.slice(mk[0].length);
          const emptyItem = isBlank(after);
          if (!(paraCont && (emptyItem || (om && om[1] !== '1')))) {
            let pad = leadingSpaces(after, 0);
            if (pad > 4 || pad === 0 || emptyItem) pad = 1;
            const kind = bm ? bm[1] : om[2];
            const lastChild = container.children[container.children.length - 1];
            let list = lastChild && lastChild.type === 'list' && lastChild.open && lastChild.kind === kind
              ? lastChild : null;
            if (!list) {
              list = add('list', container);
              list.kind = kind;
              list.ordered = !!om;
              list.start = om ? parseInt(om[1], 10) : 1;
            }
            const item = add('item', list);
            item.indent = ind + mk[0].length + pad;
            pos = Math.min(line.length, pos + ind + mk[0].length + (emptyItem ? after.length : pad));
            container = item;
            started = true;
            para = null; paraCont = false; lazy = false;
            continue;
          }
        }
      }
      break;
    }

    if (leafDone) continue;
    const rest = line.slice(pos);
    const nowBlank = blankFrom(pos);

    // 3. The rest of the line: more of the paragraph or table, or a new one.
    if (!started && (paraCont || lazy)) { para.lines.push(rest); continue; }
    if (!started && table) { table.rows.push(splitRow(rest)); continue; }
    while (tip !== container) closeTip();
    if (nowBlank) continue;
    const p = add('para', container);
    p.lines = [rest];
  }
  return root;
}

// ------------------------------------------------------------ inline parse

// Inline nodes form a doubly linked list while parsing; emphasis and links
// wrap a run of them into one container node (children array).
function textNode(v) { return { t: 'text', v, prev: null, next: null }; }

function computeTables(s) {
  // Per-paragraph tables that make every link look-ahead O(1).
  const n = s.length;
  const esc = new Uint8Array(n + 1);
  for (let i = 0; i < n; i++) {
    work++;
    if (s[i] === '\\' && !esc[i] && i + 1 < n && ASCII_PUNCT.includes(s[i + 1])) esc[i + 1] = 1;
  }
  const nextWs = new Int32Array(n + 1);   // first whitespace/control at or after i
  const nextNonWs = new Int32Array(n + 1); // first non-whitespace at or after i
  const nextQ = new Int32Array(n + 1);   // next unescaped "
  const nextA = new Int32Array(n + 1);   // next unescaped '
  const nextP = new Int32Array(n + 1);   // next unescaped )
  nextWs[n] = n; nextNonWs[n] = n; nextQ[n] = -1; nextA[n] = -1; nextP[n] = -1;
  for (let i = n - 1; i >= 0; i--) {
    work++;
    const c = s.charCodeAt(i);
    const ws = c <= 0x20 || c === 0x7f;
    nextWs[i] = ws ? i : nextWs[i + 1];
    nextNonWs[i] = ws ? nextNonWs[i + 1] : i;
    nextQ[i] = c === 0x22 && !esc[i] ? i : nextQ[i + 1];
    nextA[i] = c === 0x27 && !esc[i] ? i : nextA[i + 1];
    nextP[i] = c === 0x29 && !esc[i] ? i : nextP[i + 1];
  }
  // depth[i]: unescaped '(' minus ')' in s[0, i).  close[i]: the first ')'
  // after i that a scan starting at depth 0 at i would end on.
  const depth = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    work++;
    const c = s[i];
    depth[i + 1] = depth[i] + (esc[i] ? 0 : c === '(' ? 1 : c === ')' ? -1 : 0);
  }
  const close = new Int32Array(n + 1).fill(-1);
  const lastAt = new Map();
  for (let i = n - 1; i >= 0; i--) {
    work++;
    if (s[i] === ')' && !esc[i]) lastAt.set(depth[i], i);
    const v = lastAt.get(depth[i]);
    close[i] = v === undefined ? -1 : v;
  }
  return { esc, nextWs, nextNonWs, nextQ, nextA, nextP, depth, close };
}

// Parses "(dest 'title')" with s[p-1] === '('.  Returns {href, title, end}
// or null; end is the index after ')'.
function linkTail(s, p, T) {
  const n = s.length;
  let q = T.nextNonWs[p];
  if (q >= n) return null;
  if (s[q] === ')') return { dest: '', title: null, end: q + 1 };
  const d = q;
  if (s[d] === '<') return null;  // <pointy> destinations: not supported, text
  let e = T.nextWs[d];
  const c = T.close[d];
  if (c >= 0 && c < e) e = c;
  if (T.depth[e] !== T.depth[d]) return null;  // unbalanced parentheses
  const dest = s.slice(d, e);
  q = T.nextNonWs[e];
  if (s[q] === ')') return { dest, title: null, end: q + 1 };
  if (q === e || q >= n) return null;
  const oc = s[q];
  const t = oc === '"' ? T.nextQ[q + 1] : oc === "'" ? T.nextA[q + 1] : oc === '(' ? T.nextP[q + 1] : -1;
  if (t < 0) return null;
  const title = s.slice(q + 1, t);
  const r = T.nextNonWs[t + 1];
  if (s[r] !== ')') return null;
  return { dest, title, end: r + 1 };
}

function isAutolinkBoundary(c) {
  return c === undefined || c === '' || isWs(c) || c === '(' || c === '*' || c === '_' || c === '~' || c === '"' || c === "'";
}

const URL_STOP = new Set([0x3c, 0x3e, 0x22, 0x60, 0x7f]);
function nextUrlStop(s, i) {
  let j = i;
  while (j < s.length) {
    work++;
    const c = s.charCodeAt(j);
    if (c <= 0x20 || URL_STOP.has(c)) break;
    j++;
  }
  return j;
}

// Extent of a bare URL at s[i] ("http://", "https://" or "www."), or 0.
function bareUrlLength(s, i) {
  const head = s.slice(i, i + 8).toLowerCase();
  let skip;
  if (head.startsWith('https://')) skip = 8;
  else if (head.startsWith('http://')) skip = 7;
  else if (head.startsWith('www.')) skip = 4;
  else return 0;
  // Quotes, angle brackets and backticks end it: they delimit URLs in
  // prose and code far more often than they belong to one.
  let j = nextUrlStop(s, i + skip);
  // Trailing punctuation is the sentence's, not the URL's; a ')' only when
  // it has no '(' to close inside the URL.
  let opens = 0;
  let closes = 0;
  for (let k = i; k < j; k++) { work++; if (s[k] === '(') opens++; else if (s[k] === ')') closes++; }
  while (j > i + skip) {
    work++;
    const c = s[j - 1];
    if ('?!.,:*_~\'";'.includes(c)) { j--; continue; }
    if (c === ')' && closes > opens) { closes--; j--; continue; }
    break;
  }
  if (j <= i + skip) return 0;
  return j - i;
}

function parseInline(src) {
  const s = src;
  const n = s.length;
  let T = null;
  const tables = () => (T || (T = computeTables(s)));

  const head = { t: 'head', prev: null, next: null };
  let tail = head;
  const push = (node) => { node.prev = tail; node.next = null; tail.next = node; tail = node; return node; };
  let buf = '';
  const flush = () => { if (buf) { push(textNode(buf)); buf = ''; } };

  // Code span closers: backtick runs grouped by length, each with a cursor
  // that only moves forward, so finding the closer costs O(1) amortized.
  const runsByLen = new Map();
  for (let i = 0; i < n;) {
    work++;
    if (s[i] === '`') {
      let j = i;
      while (s[j] === '`') j++;
      const L = j - i;
      if (!runsByLen.has(L)) runsByLen.set(L, { at: [], k: 0 });
      runsByLen.get(L).at.push(i);
      i = j;
    } else i++;
  }

  let delimTop = null;  // delimiter list (doubly linked through dprev/dnext)
  const brackets = [];
  let bracketSeq = 0;
  let linkFloor = 0;  // '[' openers with seq below this cannot make links
  let urlScanned = 0;  // no bare URL starts before this

  let i = 0;
  while (i < n) {
    work++;
    const c = s[i];
    if (c === '\\') {
      const d = s[i + 1];
      if (d === '\n') { flush(); push({ t: 'br' }); i += 2; continue; }
      if (d !== undefined && ASCII_PUNCT.includes(d)) { buf += d; i += 2; continue; }
      buf += c; i++; continue;
    }
    if (c === '`') {
      let j = i;
      while (s[j] === '`') j++;
      const L = j - i;
      const r = runsByLen.get(L);
      while (r.k < r.at.length && r.at[r.k] <= i) { work++; r.k++; }
      if (r.k < r.at.length) {
        const end = r.at[r.k];
        let code = s.slice(j, end).replace(/\n/g, ' ');
        if (code.length > 2 && code[0] === ' ' && code[code.length - 1] === ' ' && !/^ *$/.test(code)) code = code.slice(1, -1);
        flush();
        push({ t: 'code', v: code });
        i = end + L;
      } else { buf += s.slice(i, j); i = j; }
      continue;
    }
    if (c === '*' || c === '_' || c === '~') {
      let j = i;
      while (s[j] === c) j++;
      const L = j - i;
      const before = i > 0 ? s[i - 1] : '';
      const after = j < n ? s[j] : '';
      const lf = !isWs(after) && (!isPunct(after) || isWs(before) || isPunct(before));
      const rf = !isWs(before) && (!isPunct(before) || isWs(after) || isPunct(after));
      let canOpen = lf;
      let canClose = rf;
      if (c === '_') {
        canOpen = lf && (!rf || isPunct(before));
        canClose = rf && (!lf || isPunct(after));
      }
      if (L > MAX_DELIM_RUN || (c === '~' && L > 2)) { canOpen = false; canClose = false; }
      flush();
      const node = push(textNode(s.slice(i, j)));
      if (canOpen || canClose) {
        const d = { ch: c, len: L, orig: L, node, canOpen, canClose, dprev: delimTop, dnext: null };
        if (delimTop) delimTop.dnext = d;
        delimTop = d;
      }
      i = j;
      continue;
    }
    if (c === '[' || (c === '!' && s[i + 1] === '[')) {
      flush();
      const image = c === '!';
      const node = push(textNode(image ? '![' : '['));
      brackets.push({ node, image, seq: bracketSeq++, delim: delimTop });
      i += image ? 2 : 1;
      continue;
    }
    if (c === ']') {
      flush();
      const op = brackets.length ? brackets[brackets.length - 1] : null;
      if (!op) { buf += ']'; i++; continue; }
      brackets.pop();
      const usable = op.image || op.seq >= linkFloor;
      const tailInfo = usable && s[i + 1] === '(' ? linkTail(s, i + 2, tables()) : null;
      if (!tailInfo) { buf += ']'; i++; continue; }
      processEmphasis(op.delim);
      // Emphasis above the bracket is resolved; its delimiters are gone.
      delimTop = op.delim;
      if (delimTop) delimTop.dnext = null;
      const link = {
        t: op.image ? 'image' : 'link',
        href: safeHref(unescapeString(tailInfo.dest)),
        title: tailInfo.title === null ? null : unescapeString(tailInfo.title),
        raw: s.slice(i, tailInfo.end),  // "](dest)", shown when not followable
        children: [],
      };
      for (let x = op.node.next; x; x = x.next) { work++; link.children.push(x); }
      // Replace "[" ... with the link node.
      const prev = op.node.prev;
      prev.next = link; link.prev = prev; link.next = null; tail = link;
      if (!op.image) linkFloor = bracketSeq;
      i = tailInfo.end;
      continue;
    }
    if (c === '<') {
      // Autolink <scheme:...>: the scan stops at the next '<', space or '>'.
      let j = i + 1;
      while (j < n && j - i < 4096) {
        work++;
        const cc = s.charCodeAt(j);
        if (cc <= 0x20 || cc === 0x3c || cc === 0x3e) break;
        j++;
      }
      const inner = s.slice(i + 1, j);
      if (s[j] === '>' && /^[A-Za-z][A-Za-z0-9+.-]{1,31}:/.test(inner)) {
        flush();
        const href = safeHref(inner);
        if (href) push({ t: 'link', href, title: null, children: [textNode(inner)] });
        else push(textNode('<' + inner + '>'));
        i = j + 1;
        continue;
      }
      buf += '<'; i++; continue;
    }
    if (c === '&') {
      const e = entityAt(s, i);
      if (e) { buf += e[0]; i += e[1]; continue; }
      buf += c; i++; continue;
    }
    if (c === '\n') {
      const trimmed = trimEndSpace(buf);
      const hard = buf.length - trimmed.length >= 2;
      buf = trimmed;
      flush();
      push(hard ? { t: 'br' } : textNode('\n'));
      i++;
      // Leading spaces of the next line are not content.
      while (s[i] === ' ') i++;
      continue;
    }
    if ((c === 'h' || c === 'H' || c === 'w' || c === 'W') && i >= urlScanned &&
        isAutolinkBoundary(i > 0 ? s[i - 1] : '')) {
      const L = bareUrlLength(s, i);
      // A failed scan is not repeated from inside the span it covered.
      if (!L) urlScanned = nextUrlStop(s, i);
      if (L) {
        const url = s.slice(i, i + L);
        const href = safeHref(/^www\./i.test(url) ? 'http://' + url : url);
        if (href) {
          flush();
          push({ t: 'link', href, title: null, children: [textNode(url)] });
          i += L;
          continue;
        }
      }
    }
    buf += c;
    i++;
  }
  flush();
  processEmphasis(null);

  const out = [];
  for (let x = head.next; x; x = x.next) { work++; out.push(x); }
  return out;

  // CommonMark's emphasis resolution over the delimiters above `bottom`.
  function processEmphasis(bottom) {
    const openersBottom = new Map();
    let closer = bottom ? bottom.dnext : firstDelim();
    while (closer) {
      work++;
      if (!closer.canClose) { closer = closer.dnext; continue; }
      const key = closer.ch + (closer.canOpen ? '1' : '0') + (closer.orig % 3);
      const floor = openersBottom.has(key) ? openersBottom.get(key) : bottom;
      let opener = closer.dprev;
      let found = null;
      while (opener && opener !== bottom && opener !== floor) {
        work++;
        if (opener.ch === closer.ch && opener.canOpen) {
          let ok = true;
          if (closer.ch === '~') ok = opener.len === closer.len;
          else if ((opener.canClose || closer.canOpen) && (opener.orig + closer.orig) % 3 === 0 &&
                   !(opener.orig % 3 === 0 && closer.orig % 3 === 0)) ok = false;
          if (ok) { found = opener; break; }
        }
        opener = opener.dprev;
      }
      if (!found) {
        openersBottom.set(key, closer.dprev);
        const next = closer.dnext;
        if (!closer.canOpen) unlinkDelim(closer);
        closer = next;
        continue;
      }
      const use = closer.ch === '~' ? closer.len : (closer.len >= 2 && found.len >= 2 ? 2 : 1);
      found.len -= use;
      closer.len -= use;
      found.node.v = found.node.v.slice(use);
      closer.node.v = closer.node.v.slice(use);
      const wrap = { t: closer.ch === '~' ? 'del' : use === 2 ? 'strong' : 'em', children: [], prev: null, next: null };
      for (let x = found.node.next; x !== closer.node; x = x.next) { work++; wrap.children.push(x); }
      found.node.next = wrap; wrap.prev = found.node;
      wrap.next = closer.node; closer.node.prev = wrap;
      // Delimiters between opener and closer can no longer match anything.
      found.dnext = closer; closer.dprev = found;
      if (found.len === 0) { removeNode(found.node); unlinkDelim(found); }
      if (closer.len === 0) {
        removeNode(closer.node);
        const next = closer.dnext;
        unlinkDelim(closer);
        closer = next;
      }
    }
    // Whatever stays above bottom is plain text now.
    while (delimTop && delimTop !== bottom) { work++; unlinkDelim(delimTop); }
  }
  function firstDelim() {
    // Walks down once per paragraph end; the top-level call is the last one.
    let d = delimTop;
    while (d && d.dprev) { work++; d = d.dprev; }
    return d;
  }
  function unlinkDelim(d) {
    if (d.dprev) d.dprev.dnext = d.dnext;
    if (d.dnext) d.dnext.dprev = d.dprev;
    if (d === delimTop) delimTop = d.dprev;
    d.dprev = d.dnext = null;
  }
  function removeNode(x) {
    x.prev.next = x.next;
    if (x.next) x.next.prev = x.prev;
    if (x === tail) tail = x.prev;
  }
}

// -------------------------------------------------------------- DOM output

function bidiSafeAppend(doc, parent, text) {
  // Text goes in as text nodes; bidi controls become visible markers.
  if (!BIDI_RE.test(text)) { parent.appendChild(doc.createTextNode(text)); return; }
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    work++;
    if (BIDI_RE.test(text[i])) {
      if (i > start) parent.appendChild(doc.createTextNode(text.slice(start, i)));
      const mark = doc.createElement('span');
      mark.setAttribute('class', 'md-bidi');
      const code = 'U+' + text.charCodeAt(i).toString(16).toUpperCase();
      mark.setAttribute('title', code);
      mark.appendChild(doc.createTextNode('[' + code + ']'));
      parent.appendChild(mark);
      start = i + 1;
    }
  }
  if (start < text.length) parent.appendChild(doc.createTextNode(text.slice(start)));
}

function linkElement(doc, href, title, cls) {
  const a = doc.createElement('a');
  a.setAttribute('href', href);
  a.setAttribute('rel', 'noopener noreferrer nofollow');
  a.setAttribute('target', '_blank');
  if (cls) a.setAttribute('class', cls);
  if (title) a.setAttribute('title', title);
  return a;
}

// Builds inline nodes under parent without recursion; containers deeper
// than MAX_INLINE_DEPTH, and links inside links, give only their content.
function appendInlines(doc, parent, nodes) {
  const stack = [{ el: parent, nodes, k: 0, depth: 0, inLink: false }];
  while (stack.length) {
    work++;
    const f = stack[stack.length - 1];
    if (f.k >= f.nodes.length) { stack.pop(); continue; }
    const x = f.nodes[f.k++];
    if (x.t === 'text') {
      // Adjacent text (brackets that made no link, unused delimiters) is
      // one DOM node, not thousands.
      let v = x.v;
      while (f.k < f.nodes.length && f.nodes[f.k].t === 'text') { work++; v += f.nodes[f.k++].v; }
      if (v) bidiSafeAppend(doc, f.el, v);
      continue;
    }
    if (x.t === 'br') { f.el.appendChild(doc.createElement('br')); continue; }
    if (x.t === 'code') {
      const el = doc.createElement('code');
      bidiSafeAppend(doc, el, x.v);
      f.el.appendChild(el);
      continue;
    }
    let el = null;
    const children = x.children;
    let inLink = f.inLink;
    if (x.t === 'link' || x.t === 'image') {
      if (!x.href || f.inLink) {
        // Not followable (or inside another link): what was written, as text.
        const raw = x.raw === undefined ? [] : [textNode(x.raw)];
        const open = x.raw === undefined ? [] : [textNode(x.t === 'image' ? '![' : '[')];
        stack.push({ el: f.el, nodes: [...open, ...children, ...raw], k: 0, depth: f.depth, inLink });
        continue;
      }
      el = linkElement(doc, x.href, x.title, x.t === 'image' ? 'md-image' : null);
      inLink = true;
      if (x.t === 'image') {
        // The image is never loaded: a link that names it.
        const label = doc.createElement('span');
        label.setAttribute('class', 'md-image-label');
        label.appendChild(doc.createTextNode('image'));
        el.appendChild(label);
        el.appendChild(doc.createTextNode(' '));
      }
    } else if (f.depth < MAX_INLINE_DEPTH) {
      el = doc.createElement(x.t);
    }
    if (el) {
      f.el.appendChild(el);
      stack.push({ el, nodes: children, k: 0, depth: f.depth + 1, inLink });
    } else {
      stack.push({ el: f.el, nodes: children, k: 0, depth: f.depth, inLink });
    }
  }
}

function renderBlocks(doc, parent, blocks, tight) {
  for (const b of blocks) {
    work++;
    switch (b.type) {
      case 'para': {
        const text = trimEndSpace(b.lines.join('\n'));
        if (tight) { appendInlines(doc, parent, parseInline(text)); break; }
        const p = doc.createElement('p');
        appendInlines(doc, p, parseInline(text));
        parent.appendChild(p);
        break;
      }
      case 'heading': {
        const h = doc.createElement('h' + b.level);
        appendInlines(doc, h, parseInline(b.text));
        parent.appendChild(h);
        break;
      }
      case 'hr':
        parent.appendChild(doc.createElement('hr'));
        break;
      case 'code': {
        const pre = doc.createElement('pre');
        const code = doc.createElement('code');
        const lang = (b.info || '').replace(/[^A-Za-z0-9_+-]/g, '').slice(0, 32);
        if (lang) code.setAttribute('class', 'language-' + lang);
        const lines = b.lines.slice();
        if (!b.fence) { while (lines.length && isBlank(lines[lines.length - 1])) lines.pop(); }
        bidiSafeAppend(doc, code, lines.length ? lines.join('\n') + '\n' : '');
        pre.appendChild(code);
        parent.appendChild(pre);
        break;
      }
      case 'quote': {
        const q = doc.createElement('blockquote');
        renderBlocks(doc, q, b.children, false);
        parent.appendChild(q);
        break;
      }
      case 'list': {
        const l = doc.createElement(b.ordered ? 'ol' : 'ul');
        if (b.ordered && b.start !== 1) l.setAttribute('start', String(b.start));
        for (const item of b.children) {
          const li = doc.createElement('li');
          renderBlocks(doc, li, item.children, !b.loose);
          l.appendChild(li);
        }
        parent.appendChild(l);
        break;
      }
      case 'table': {
        const t = doc.createElement('table');
        const cols = b.header.length;
        const row = (cells, tag) => {
          const tr = doc.createElement('tr');
          for (let k = 0; k < cols; k++) {
            const cell = doc.createElement(tag);
            if (b.align[k]) cell.setAttribute('class', 'md-align-' + b.align[k]);
            appendInlines(doc, cell, parseInline(cells[k] || ''));
            tr.appendChild(cell);
          }
          return tr;
        };
        const thead = doc.createElement('thead');
        thead.appendChild(row(b.header, 'th'));
        t.appendChild(thead);
        if (b.rows.length) {
          const tbody = doc.createElement('tbody');
          for (const r of b.rows) tbody.appendChild(row(r, 'td'));
          t.appendChild(tbody);
        }
        parent.appendChild(t);
        break;
      }
      default:
        break;
    }
  }
}

// Renders `text` (untrusted markdown) into a new DocumentFragment of `doc`.
// `stats`, if given, receives { steps } (work done, for the tests' bounds).
export function renderMarkdown(text, doc, stats) {
  work = 0;
  const src = String(text ?? '').replace(/\r\n?/g, '\n').replace(/\u0000/g, '\ufffd');
  const frag = doc.createDocumentFragment();
  renderBlocks(doc, frag, parseBlocks(src).children, false);
  if (stats) stats.steps = work;
  return frag;
}
