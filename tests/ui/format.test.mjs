// src/http/ui/format.js under node --test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatAbsoluteTime, formatRelativeTime, formatDuration, formatBytes, codePointLength, truncate, collapseText, toMillis,
} from '../../src/http/ui/format.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');

test('absolute time, UTC and local', () => {
  assert.equal(formatAbsoluteTime('2026-12-07T05:04:03.021Z', { utc: true }), '2026-12-07 05:04:03Z');
  assert.equal(formatAbsoluteTime(Date.UTC(1999, 0, 2, 3, 4, 5, 6), { utc: true, ms: true }), '1999-01-02 03:04:05.006Z');
  const local = new Date(2026, 11, 7, 5, 4, 3);
  assert.equal(formatAbsoluteTime(local), '2026-12-07 05:04:03');
  for (const bad of ['not a date', '', null, undefined, NaN, Infinity, {}]) assert.equal(formatAbsoluteTime(bad), '');
});

test('relative time', () => {
  const ago = (ms) => formatRelativeTime(NOW - ms, NOW);
  assert.equal(ago(0), 'just now');
  assert.equal(ago(4999), 'just now');
  assert.equal(ago(5000), '5 s ago');
  assert.equal(ago(59999), '59 s ago');
  assert.equal(ago(60000), '1 min ago');
  assert.equal(ago(3599999), '59 min ago');
  assert.equal(ago(3600000), '1 h ago');
  assert.equal(ago(86399999), '23 h ago');
  assert.equal(ago(86400000), '1 d ago');
  assert.equal(ago(29 * 86400000), '29 d ago');
  assert.equal(formatRelativeTime('2026-10-01T00:00:00Z', NOW, { utc: true }), '2026-10-01');
  assert.equal(ago(-120000), 'in 2 min');
  assert.equal(formatRelativeTime('2026-12-07T11:00:00Z', '2026-12-07T12:00:00Z'), '1 h ago');
  assert.equal(formatRelativeTime('garbage', NOW), '');
  assert.equal(formatRelativeTime(NOW, 'garbage'), '');
});

test('durations', () => {
  assert.equal(formatDuration(0), '0 ms');
  assert.equal(formatDuration(999.4), '999 ms');
  assert.equal(formatDuration(12345), '12.3 s');
  assert.equal(formatDuration(245000), '4 min 05 s');
  assert.equal(formatDuration(2 * 3600000 + 3 * 60000), '2 h 03 min');
  assert.equal(formatDuration(-1), '');
  assert.equal(formatDuration('5'), '');
});

test('byte sizes in binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1.0 KiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(10 * 1024), '10 KiB');
  assert.equal(formatBytes(1024 * 1024 - 1), '1023 KiB');
  assert.equal(formatBytes(5.25 * 1024 * 1024 * 1024), '5.2 GiB');
  assert.equal(formatBytes(2 ** 60), '1024 PiB');  // past the last unit the number grows
  for (const bad of [-1, NaN, Infinity, '12', null]) assert.equal(formatBytes(bad), '');
});

test('truncation counts code points and never splits a surrogate pair', () => {
  const s = 'ab\u{1F600}cd';  // 5 code points, 6 UTF-16 units
  assert.equal(codePointLength(s), 5);
  assert.equal(truncate(s, 5), s);
  assert.equal(truncate(s, 10), s);
  assert.equal(truncate(s, 4), 'ab\u{1F600}\u2026');
  assert.equal(truncate(s, 3), 'ab\u2026');
  assert.equal(truncate('\u{1F600}\u{1F600}\u{1F600}', 2), '\u{1F600}\u2026');
  assert.equal(truncate('abc', 1), '\u2026');
  assert.equal(truncate('abc', 0), '');
  assert.equal(truncate('abcdef', 4, '...'), 'a...');
  assert.equal(truncate(null, 3), '');
  // A lone surrogate counts as one code point and survives as it is.
  assert.equal(truncate('a\ud800bcd', 3), 'a\ud800\u2026');
  for (let n = 0; n < 12; n++) {
    const t = truncate('x\u{1F600}'.repeat(5), n);
    assert.ok(!/[\ud800-\udbff]$/.test(t.replace(/\u2026$/, '')), `cut inside a pair at ${n}`);
    assert.ok(codePointLength(t) <= n, `longer than ${n}`);
  }
});

test('collapsing long text keeps all of it, split in two', () => {
  const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n');
  const c = collapseText(lines, { maxLines: 20 });
  assert.equal(c.collapsed, true);
  assert.equal(c.head.split('\n').length, 20);
  assert.equal(c.head + c.rest, lines);
  assert.equal(c.hiddenLines, 10);
  assert.equal(c.hiddenChars, codePointLength(c.rest));

  const short = collapseText('a\nb\n', { maxLines: 2 });
  assert.deepEqual(short, { head: 'a\nb\n', rest: '', collapsed: false, hiddenLines: 0, hiddenChars: 0 });

  const trailing = collapseText('a\nb\nc\n', { maxLines: 2 });
  assert.equal(trailing.head, 'a\nb');
  assert.equal(trailing.hiddenLines, 1);

  // One enormous line is cut by characters, at a code point boundary.
  const wide = 'x'.repeat(9) + '\u{1F600}'.repeat(3);
  const w = collapseText(wide, { maxLines: 5, maxChars: 10 });
  assert.equal(w.head, 'x'.repeat(9) + '\u{1F600}');
  assert.equal(w.rest, '\u{1F600}\u{1F600}');
  assert.equal(w.hiddenLines, 1);
  assert.equal(w.hiddenChars, 2);

  assert.equal(collapseText(null).collapsed, false);
});

test('toMillis', () => {
  assert.equal(toMillis(new Date(5)), 5);
  assert.equal(toMillis('1970-01-01T00:00:01Z'), 1000);
  assert.ok(Number.isNaN(toMillis(undefined)));
});
