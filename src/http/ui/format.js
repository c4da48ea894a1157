// Formatting for the inspector: times, sizes, truncation and collapsing of
// long text.  Pure functions of their arguments (the current time is passed
// in), so they are tested without a browser and render the same everywhere.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// Milliseconds since the epoch from a Date, a number or an RFC 3339 string;
// NaN when it is none of these.
export function toMillis(t) {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return Number.isFinite(t) ? t : NaN;
  if (typeof t === 'string' && t !== '') return Date.parse(t);
  return NaN;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// "2026-12-07 05:45:11" in the viewer's time zone, or with { utc: true }
// "2026-12-07 05:45:11Z"; { ms: true } adds milliseconds.  "" for an
// invalid time, so a bad value never prints "NaN".
export function formatAbsoluteTime(t, opts = {}) {
  const ms = toMillis(t);
  if (Number.isNaN(ms)) return '';
  const d = new Date(ms);
  const u = !!opts.utc;
  const Y = u ? d.getUTCFullYear() : d.getFullYear();
  const M = (u ? d.getUTCMonth() : d.getMonth()) + 1;
  const D = u ? d.getUTCDate() : d.getDate();
  const h = u ? d.getUTCHours() : d.getHours();
  const m = u ? d.getUTCMinutes() : d.getMinutes();
  const s = u ? d.getUTCSeconds() : d.getSeconds();
  let out = `${pad(Y, 4)}-${pad(M)}-${pad(D)} ${pad(h)}:${pad(m)}:${pad(s)}`;
  if (opts.ms) out += '.' + pad(u ? d.getUTCMilliseconds() : d.getMilliseconds(), 3);
  return u ? out + 'Z' : out;
}

// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; the future
// reads "in 5 min" (a clock a little ahead of the server's).  Beyond 30 days
// the date itself says more: the absolute date.  "" for an invalid time.
export function formatRelativeTime(t, now, opts = {}) {
  const ms = toMillis(t);
  const nowMs = toMillis(now);
  if (Number.isNaN(ms) || Number.isNaN(nowMs)) return '';
  const diff = nowMs - ms;
  const a = Math.abs(diff);
  if (a < 5 * SECOND) return 'just now';
  let amount;
  if (a < MINUTE) amount = `${Math.floor(a / SECOND)} s`;
  else if (a < HOUR) amount = `${Math.floor(a / MINUTE)} min`;
  else if (a < DAY) amount = `${Math.floor(a / HOUR)} h`;
  else if (a < 30 * DAY) amount = `${Math.floor(a / DAY)} d`;
  else return formatAbsoluteTime(ms, opts).slice(0, 10);
  return diff >= 0 ? `${amount} ago` : `in ${amount}`;
}

// A duration in milliseconds: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
export function formatDuration(msIn) {
  if (typeof msIn !== 'number' || !Number.isFinite(msIn) || msIn < 0) return '';
  const ms = Math.round(msIn);
  if (ms < SECOND) return `${ms} ms`;
  if (ms < MINUTE) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  if (ms < HOUR) return `${Math.floor(ms / MINUTE)} min ${pad(Math.floor((ms % MINUTE) / SECOND))} s`;
  return `${Math.floor(ms / HOUR)} h ${pad(Math.floor((ms % HOUR) / MINUTE))} min`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

// Bytes in binary units: "0 B", "1023 B", "1.0 KiB", "1.5 MiB", "12 MiB"
// (one decimal below 10, none above).  "" for a negative or non-number.
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${Math.floor(n)} B`;
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  // Rounding may carry to the next unit: 1023.96 KiB is "1.0 MiB".
  let text = v < 10 ? (Math.floor(v * 10) / 10).toFixed(1) : String(Math.floor(v));
  if (text === '1024' && u < UNITS.length - 1) { text = '1.0'; u++; }
  return `${text} ${UNITS[u]}`;
}

// The number of code points in s (a surrogate pair counts once).
export function codePointLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

// UTF-16 index where the first `max` code points of s end.
function codePointIndex(s, max) {
  let i = 0;
  let n = 0;
  while (i < s.length && n < max) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      i += d >= 0xdc00 && d <= 0xdfff ? 2 : 1;
    } else i++;
    n++;
  }
  return i;
}

// s cut to at most `max` code points, the ellipsis included, never between
// the two halves of a surrogate pair.  Unchanged when it fits.
export function truncate(s, max, ellipsis = '\u2026') {
  const text = String(s ?? '');
  if (!(max >= 0)) return text;
  if (codePointIndex(text, max) >= text.length) return text;  // it fits
  const room = Math.max(0, max - codePointLength(ellipsis));
  if (room === 0) return ellipsis.slice(0, codePointIndex(ellipsis, max));
  return text.slice(0, codePointIndex(text, room)) + ellipsis;
}

// Long text for display with a "show more": the first `maxLines` lines (and
// at most `maxChars` code points of them), the rest kept for the expander.
// Returns { head, rest, collapsed, hiddenLines, hiddenChars }; head + rest
// is always the whole text.  Linear in the part looked at.
export function collapseText(s, opts = {}) {
  const text = String(s ?? '');
  const maxLines = opts.maxLines ?? 20;
  const maxChars = opts.maxChars ?? 4000;
  let end = 0;
  let lines = 0;
  while (lines < maxLines) {
    const nl = text.indexOf('\n', end);
    if (nl < 0) { end = text.length; break; }
    lines++;
    end = lines === maxLines ? nl : nl + 1;
  }
  if (lines < maxLines) end = text.length;
  const cut = codePointIndex(text, maxChars);
  if (cut < end) end = cut;
  // Nothing worth a "show more" (only a final newline) is not collapsed.
  if (end >= text.length || /^\s*$/.test(text.slice(end))) {
    return { head: text, rest: '', collapsed: false, hiddenLines: 0, hiddenChars: 0 };
  }
  const rest = text.slice(end);
  let hiddenLines = 0;
  for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n', i + 1)) hiddenLines++;
  if (rest[0] !== '\n') hiddenLines++;       // the cut is inside a line
  if (rest.endsWith('\n')) hiddenLines--;    // no line after the last newline
  return { head: text.slice(0, end), rest, collapsed: true, hiddenLines, hiddenChars: codePointLength(rest) };
}
