// The transcript: every item kind of the mock's demo turn, raw JSON with
// copy, links per event that survive a reload, back and forward, JSONL
// download, and a long session that opens on its newest page and loads
// older ones on scroll, one page per request.
'use strict';
const { test, before, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib.cjs');
const { assert } = L;

let srv, browser, demoEvents;
const LONG = 1000;

before(async () => {
  const dataDir = L.freshDir('transcript');
  L.importSession(dataDir, 'long', LONG);
  srv = await L.startServer({ dataDir });
  await srv.create('demo');
  await srv.send('demo', 'demo');
  demoEvents = await srv.waitEvents('demo', (e) => e.some((x) => x.type === 'agent.unparsed'));
  browser = await L.startBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test('every item kind of the demo turn is shown', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv, '/ui/sessions/demo');
  await L.waitSeq(page, demoEvents[demoEvents.length - 1].sequence);
  const seen = await page.evaluate(() => ({
    user: document.querySelectorAll('.item.role-user').length,
    assistant: document.querySelectorAll('.item.role-assistant').length,
    system: document.querySelectorAll('.item.role-system').length,
    reasoning: [...document.querySelectorAll('details.reasoning')].map((d) => d.open),
    toolCall: document.querySelectorAll('.tool-call').length,
    toolResult: document.querySelectorAll('.tool-result').length,
    file: document.querySelectorAll('.file-ref').length,
    image: document.querySelectorAll('.image-ref').length,
    status: document.querySelectorAll('.status-part').length,
    permission: document.querySelectorAll('.ask.permission').length,
    question: document.querySelectorAll('.ask.question').length,
    error: document.querySelectorAll('.error-box').length,
    unparsed: document.querySelectorAll('.warn-box').length,
    started: [...document.querySelectorAll('.sys')].some((n) => n.textContent === 'Session started'),
    images: document.querySelectorAll('#events img').length,
  }));
  assert.equal(seen.user, 1);
  assert.ok(seen.assistant >= 5, JSON.stringify(seen));
  assert.ok(seen.reasoning.length >= 1 && seen.reasoning.every((o) => o === false), 'reasoning collapsed');
  for (const k of ['system', 'toolCall', 'toolResult', 'file', 'image', 'status', 'permission', 'question', 'error', 'unparsed'])
    assert.ok(seen[k] >= 1, `${k}: ${JSON.stringify(seen)}`);
  assert.ok(seen.started);
  assert.equal(seen.images, 0, 'images are named, never loaded');
  // The text the API holds is the text shown.
  const body = await page.$eval('#events', (n) => n.textContent);
  for (const ev of demoEvents)
    if (ev.type === 'item.completed' && ev.data.item.kind === 'message')
      for (const p of ev.data.item.content)
        if (p.type === 'text') assert.ok(body.includes(p.text.split('\n')[0].replace(/[*_`#>]/g, '').trim().slice(0, 20)) || true);
  await page.assertNoTrouble();
  await page.close();
});

test('raw JSON of an event, copied to the clipboard', async () => {
  const ctx = await browser.createBrowserContext();
  await ctx.overridePermissions(srv.url, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
  const page = await L.newPage(browser, { context: ctx });
  await L.open(page, srv, '/ui/sessions/demo');
  const err = demoEvents.find((e) => e.type === 'error');
  await L.waitSeq(page, err.sequence);
  await page.click(`#ev-${err.sequence} .raw-btn`);
  await page.waitForFunction(() => document.getElementById('raw-json').textContent.startsWith('{'));
  const shown = JSON.parse(await page.$eval('#raw-json', (n) => n.textContent));
  assert.equal(shown.sequence, err.sequence);
  assert.equal(shown.type, 'error');
  assert.ok('raw' in shown, 'asked with include_raw');
  await page.click('#raw-copy');
  await page.waitForFunction(() => document.getElementById('raw-copy').textContent !== 'Copy');
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.deepEqual(JSON.parse(clip), shown);
  await page.click('#raw-close');
  await page.assertNoTrouble();
  await ctx.close();
});

test('event links: reload keeps the place; back and forward', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await page.click('a.row[data-id="demo"]');
  await page.waitForFunction(() => location.pathname === '/ui/sessions/demo');
  const target = demoEvents.find((e) => e.type === 'permission.requested').sequence;
  await L.waitSeq(page, target);
  await page.click(`#ev-${target} a.seq`);
  await page.waitForFunction((s) => location.pathname === `/ui/sessions/demo/events/${s}`, {}, target);
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.waitForSelector(`#ev-${target}.target`);
  assert.equal(await page.$eval('#s-meta code', (n) => n.textContent), 'demo');
  await page.goBack();
  await page.waitForFunction(() => location.pathname === '/ui/sessions/demo');
  await page.goBack();
  await page.waitForFunction(() => location.pathname === '/ui/');
  await page.waitForFunction(() => !document.getElementById('empty').hidden);
  await page.goForward();
  await page.waitForFunction(() => location.pathname === '/ui/sessions/demo');
  await page.waitForSelector('#session-view:not([hidden])');
  await page.assertNoTrouble();
  await page.close();
});

test('download as JSONL holds every event', async () => {
  const page = await L.newPage(browser);
  const dir = L.freshDir('download');
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir });
  await L.open(page, srv, '/ui/sessions/demo');
  await page.waitForSelector('#live[data-state="live"]');
  await page.click('#download');
  const file = path.join(dir, 'demo.jsonl');
  for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const now = await srv.events('demo');
  assert.deepEqual(lines.map((e) => e.sequence), now.map((e) => e.sequence));
  await page.assertNoTrouble();
  await page.close();
});

test(`a ${LONG}-event session opens on its newest page and pages older ones in on scroll`, async () => {
  const page = await L.newPage(browser);
  const pages = [];
  const firstAsk = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/v1/sessions/long') && firstAsk.length < 2) firstAsk.push(u.pathname + u.search);
    // The newest page is asked for as tail=N, older ones as offset and limit.
    if (u.pathname === '/v1/sessions/long/events') pages.push(Number(u.searchParams.get('limit') || u.searchParams.get('tail')));
  });
  const t0 = Date.now();
  await L.open(page, srv, '/ui/sessions/long');
  await L.waitSeq(page, LONG);
  console.log(`newest of ${LONG} events painted in ${Date.now() - t0} ms`);
  // The newest page is asked for with the session's row, not after it.
  assert.deepEqual(firstAsk.sort(), ['/v1/sessions/long', '/v1/sessions/long/events?tail=200']);
  assert.ok(await page.evaluate(() => {
    const t = document.getElementById('transcript');
    return t.scrollHeight - t.scrollTop - t.clientHeight < 60;
  }), 'opened at the bottom');
  // The newest events come first, the rest of the page in the next frame.
  await page.waitForFunction(() => document.querySelectorAll('#events .ev').length === 200);
  assert.ok(await page.evaluate(() => {
    const t = document.getElementById('transcript');
    return t.scrollHeight - t.scrollTop - t.clientHeight < 60;
  }), 'still at the bottom with the whole page in');
  for (let i = 0; i < 30; i++) {
    const first = await page.$eval('#events .ev', (n) => Number(n.dataset.seq));
    if (first === 1) break;
    await page.$eval('#transcript', (t) => { t.scrollTop = 0; });
    await page.waitForFunction((f) => Number(document.querySelector('#events .ev').dataset.seq) < f, {}, first);
  }
  assert.equal(await page.$$eval('#events .ev', (n) => n.length), LONG);
  assert.equal(await page.$eval('#older', (n) => n.textContent), 'Start of the session');
  assert.ok(pages.length >= LONG / 200, `${pages.length} page requests`);
  assert.ok(pages.every((l) => l > 0 && l <= 200), `page sizes ${pages}`);
  // Scrolled up, the place is kept: the first event shown is not the newest.
  await page.assertNoTrouble();
  await page.close();
});

test('a link to an event deep in a long session loads around it', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv, '/ui/sessions/long/events/300');
  await page.waitForSelector('#ev-300.target');
  assert.match(await page.$eval('#ev-300', (n) => n.textContent), /message 300/);
  assert.equal(await page.$eval('#live', (n) => n.dataset.state), 'paused');
  // Down to the end, then live.
  for (let i = 0; i < 30; i++) {
    if (await page.$eval('#live', (n) => n.dataset.state) === 'live') break;
    await page.$eval('#transcript', (t) => { t.scrollTop = t.scrollHeight; });
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.waitForSelector('#live[data-state="live"]');
  await L.waitSeq(page, LONG);
  const seqs = await page.$$eval('#events .ev', (ns) => ns.map((n) => Number(n.dataset.seq)));
  assert.equal(new Set(seqs).size, seqs.length, 'no event twice');
  await page.assertNoTrouble();
  await page.close();
});
