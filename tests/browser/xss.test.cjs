// Hostile agent output renders as inert text: the mock echoes each case of
// the XSS corpus (tests/ui/xss_corpus.json, plus the cases below), and no
// script runs (a window.__pwned trap, no dialog, no CSP violation), no
// element outside an allow-list appears in the transcript, no attribute
// handler, and every link is http(s) or the inspector's own.
'use strict';
const { test, before, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib.cjs');
const { assert } = L;

const BUILT_IN = [
  '<script>window.__pwned = 1</script>',
  '<img src=x onerror="window.__pwned=2">',
  '<svg onload="window.__pwned=3"><script>window.__pwned=3</script></svg>',
  '[click](javascript:window.__pwned=4)',
  '[click](JaVaScRiPt:window.__pwned=5)',
  '[click](&#106;avascript:window.__pwned=6)',
  '![x](javascript:window.__pwned=7)',
  '![x](http://127.0.0.1:1/never-fetched.png)',
  '<a href="javascript:window.__pwned=8">a</a>',
  '<iframe src="javascript:window.__pwned=9"></iframe>',
  '<style>body{display:none}</style><link rel=stylesheet href=http://127.0.0.1:1/x.css>',
  '"><script>window.__pwned=10</script>',
  '`<script>window.__pwned=11</script>`',
  '```\n<script>window.__pwned=12</script>\n```',
  '<details open ontoggle="window.__pwned=13">',
  '[a](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xNDwvc2NyaXB0Pg==)',
  'x'.repeat(20000),
  `${'y'.repeat(300)}\u{1F600}${'z'.repeat(300)}`,
  '\u202Eevil\u202C and \u2066isolate',
];

function corpus() {
  const file = path.join(__dirname, '..', 'ui', 'xss_corpus.json');
  if (!fs.existsSync(file)) return [];
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  const list = Array.isArray(data) ? data : data.cases || [];
  // An input is a string or {prefix, repeat, times, suffix}.
  const expand = (i) => (typeof i === 'string' ? i
    : i && typeof i === 'object' ? `${i.prefix || ''}${String(i.repeat || '').repeat(i.times || 0)}${i.suffix || ''}` : null);
  return list.map((c) => expand(typeof c === 'string' ? c : c.input)).filter((s) => typeof s === 'string' && s.trim());
}

let srv, browser;
// The API refuses a message with NUL (jansson), so a case's NULs go: the
// markdown module's own tests cover them.
const cases = [...BUILT_IN, ...corpus()].map((c) => c.replace(/\u0000/g, ''));

before(async () => {
  srv = await L.startServer();
  browser = await L.startBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test(`${cases.length} hostile outputs render inert`, async () => {
  await srv.create('xss');
  // The mock echoes a message it has no command for; "x " keeps a case
  // that starts with a command word ("error …") an echo.
  for (const c of cases) {
    const before2 = (await srv.events('xss')).length;
    await srv.send('xss', `x ${c}`);
    await srv.waitEvents('xss', (e) => e.length > before2 && e[e.length - 1].type === 'item.completed'
      && e[e.length - 1].data.item.role === 'assistant');
  }
  const evs = await srv.events('xss');
  const page = await L.newPage(browser);
  const external = [];
  page.on('request', (r) => { if (!r.url().startsWith(srv.url)) external.push(r.url()); });
  await page.evaluateOnNewDocument(() => {
    window.alert = window.confirm = window.prompt = () => { window.__pwned = 'dialog'; };
    window.__xss = () => { window.__pwned = 'corpus'; }; // what the corpus' payloads call
  });
  await L.open(page, srv, '/ui/sessions/xss');
  await L.waitSeq(page, evs[evs.length - 1].sequence, 60000).catch((e) => {
    throw new Error(`${e.message}; page errors: ${page.trouble.join('; ')}`);
  });
  // Loaded in full: scroll up until the first event.
  for (let i = 0; i < 20 && !(await page.$('#ev-1')); i++) {
    await page.$eval('#transcript', (t) => { t.scrollTop = 0; });
    await new Promise((r) => setTimeout(r, 150));
  }
  await new Promise((r) => setTimeout(r, 300));
  const report = await page.evaluate(() => {
    const allowed = new Set(['LI', 'DIV', 'SPAN', 'TIME', 'A', 'BUTTON', 'P', 'EM', 'STRONG', 'CODE', 'PRE', 'BR',
      'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'BLOCKQUOTE', 'DETAILS', 'SUMMARY', 'TABLE', 'THEAD', 'TBODY',
      'TR', 'TH', 'TD', 'HR', 'DEL', 'S', 'MARK', 'WBR']);
    const bad = [];
    for (const n of document.querySelectorAll('#events *')) {
      if (!allowed.has(n.tagName)) bad.push(`element ${n.tagName}`);
      for (const a of n.attributes) {
        if (/^on/i.test(a.name) || a.name === 'style' || a.name === 'src') bad.push(`attribute ${a.name} on ${n.tagName}`);
      }
      if (n.tagName === 'A') {
        const h = n.getAttribute('href') || '';
        if (!/^(https?:\/\/|\/ui\/)/i.test(h)) bad.push(`href ${h}`);
      }
    }
    return { pwned: window.__pwned, bad, csp: window.__csp };
  });
  assert.equal(report.pwned, undefined, 'a script ran');
  assert.deepEqual(report.bad, []);
  assert.deepEqual(page.dialogs, []);
  assert.deepEqual(external, [], 'nothing fetched from elsewhere');
  // The long unbroken string wraps instead of widening the page.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth));
  // The text is shown, as text.
  assert.match(await page.$eval('#events', (n) => n.textContent), /<script>window.__pwned = 1<\/script>/);
  await page.assertNoTrouble();
  await page.close();
});
