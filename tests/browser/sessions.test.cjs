// The sessions list with 500 sessions: paged on scroll with no row twice,
// each row's fields, the status and agent filters, keyboard navigation, and
// the narrow layout.
'use strict';
const { test, before, after } = require('node:test');
const L = require('./lib.cjs');
const { assert } = L;

let srv, browser;
const N = 500;

before(async () => {
  srv = await L.startServer();
  const ids = Array.from({ length: N }, (_, i) => `s-${String(i).padStart(3, '0')}`);
  await L.pool(ids, 16, (id) => srv.create(id));
  await srv.send('s-007', 'echo first words of seven');
  await srv.waitEvents('s-007', (e) => e.some((x) => x.type === 'item.completed' && x.data.item.role === 'assistant'));
  for (const id of ['s-001', 's-002', 's-003'])
    await srv.api('POST', `/v1/sessions/${id}/terminate`);
  browser = await L.startBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test('500 sessions page in on scroll, each once, newest activity first', async () => {
  const page = await L.newPage(browser);
  const requests = [];
  page.on('request', (r) => { if (r.url().includes('/v1/sessions?') || r.url().endsWith('/v1/sessions')) requests.push(r.url()); });
  const t0 = Date.now();
  await L.open(page, srv);
  await page.waitForSelector('#session-list a.row');
  const firstPaint = Date.now() - t0;
  for (let i = 0; i < 40; i++) {
    const n = (await L.rowIds(page)).length;
    if (n >= N) break;
    await page.$eval('#list-scroll', (s) => { s.scrollTop = s.scrollHeight; });
    await page.waitForFunction((k) => document.querySelectorAll('#session-list a.row').length > k
      || document.getElementById('list-status').textContent.includes('sessions'), {}, n);
  }
  const ids = await L.rowIds(page);
  assert.equal(ids.length, N);
  assert.equal(new Set(ids).size, N, 'no session listed twice');
  // Paged: every request asks for one page, never everything.
  assert.ok(requests.length >= N / 100, `${requests.length} list requests`);
  for (const u of requests) assert.match(u, /limit=100/);
  // The most recent activity first: the session with a message, or a
  // terminated one (their newest event is newer than any creation).
  assert.ok(['s-007', 's-001', 's-002', 's-003'].includes(ids[0]), `first row ${ids[0]}`);
  const row = await page.$eval('a.row[data-id="s-007"]', (a) => ({
    title: a.querySelector('.row-title').textContent,
    badge: a.querySelector('.badge').textContent,
    text: a.textContent,
  }));
  assert.equal(row.title, 'echo first words of seven');
  assert.equal(row.badge, 'idle');
  assert.match(row.text, /mock/);
  assert.match(row.text, /\d+ events/);
  console.log(`first rows painted in ${firstPaint} ms`);
  await page.assertNoTrouble();
  await page.close();
});

test('status and agent filters', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await page.waitForSelector('#session-list a.row');
  await page.select('#filter-status', 'ended');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#session-list a.row')];
    return rows.length === 3 && rows.every((a) => a.querySelector('.badge').textContent === 'ended');
  });
  assert.deepEqual((await L.rowIds(page)).sort(), ['s-001', 's-002', 's-003']);
  await page.select('#filter-status', '');
  await page.waitForSelector('#filter-agent option[value="mock"]');
  await page.select('#filter-agent', 'claude');
  await page.waitForFunction(() => document.getElementById('list-status').textContent === 'No sessions');
  await page.select('#filter-agent', 'mock');
  await page.waitForFunction(() => document.querySelectorAll('#session-list a.row').length >= 100);
  await page.assertNoTrouble();
  await page.close();
});

test('keyboard: / focuses search, Tab reaches the rows, Enter opens one', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await page.waitForSelector('#session-list a.row');
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement.classList.contains('row'))) break;
  }
  const id = await page.evaluate(() => document.activeElement.dataset.id);
  assert.ok(id, 'a row took the focus');
  await page.keyboard.press('Enter');
  await page.waitForFunction((i) => location.pathname === `/ui/sessions/${i}`, {}, id);
  await page.waitForSelector('#live[data-state="live"]');
  await page.assertNoTrouble();
  await page.close();
});

test('narrow window: list or session, a way back, nothing wider than the screen', async () => {
  const page = await L.newPage(browser, { width: 390, height: 800 });
  await L.open(page, srv, '/ui/sessions/s-007');
  await page.waitForSelector('#live[data-state="live"]');
  assert.equal(await page.$eval('#sidebar', (n) => getComputedStyle(n).display), 'none');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth));
  await page.click('#back');
  await page.waitForFunction(() => location.pathname === '/ui/');
  await page.waitForSelector('#session-list a.row', { visible: true });
  assert.equal(await page.$eval('#main', (n) => getComputedStyle(n).display), 'none');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth));
  await page.assertNoTrouble();
  await page.close();
});
