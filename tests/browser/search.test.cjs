// Search from the sessions pane: ids, and content through /v1/search with
// the matches marked (as text, never HTML), a hit opening its event, paging
// of hits, and text that is not FTS5 syntax searched as a phrase.
'use strict';
const { test, before, after } = require('node:test');
const L = require('./lib.cjs');
const { assert } = L;

let srv, browser;

before(async () => {
  const dataDir = L.freshDir('search');
  L.importSession(dataDir, 'many', 120, ' quokka');
  srv = await L.startServer({ dataDir });
  await srv.create('needle-session-7');
  await srv.send('needle-session-7', 'echo the zanzibar lighthouse keeper');
  await srv.create('hostile');
  await srv.send('hostile', 'echo <img src=x onerror=window.__pwned=1> zanzibar <b>bold</b>');
  await srv.create('other');
  await srv.send('other', 'echo nothing to see');
  for (const id of ['needle-session-7', 'hostile', 'other'])
    await srv.waitEvents(id, (e) => e.some((x) => x.type === 'item.completed' && x.data.item.role === 'assistant'));
  await srv.indexed();
  browser = await L.startBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

async function searchFor(page, text) {
  await page.click('#search', { clickCount: 3 });
  await page.keyboard.press('Backspace');
  await page.type('#search', text);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('search-status')?.textContent !== 'Searching…');
}

test('content hits are marked, inert, and open their event', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await searchFor(page, 'zanzibar');
  await page.waitForSelector('#hits a.hit mark');
  const hits = await page.$$eval('#hits a.hit:not(.id-hit)', (as) => as.map((a) => ({
    href: a.getAttribute('href'), marks: [...a.querySelectorAll('mark')].map((m) => m.textContent), text: a.textContent,
  })));
  assert.ok(hits.length >= 2, JSON.stringify(hits));
  for (const h of hits) assert.ok(h.marks.every((m) => m.toLowerCase() === 'zanzibar'), JSON.stringify(h));
  assert.equal(await page.$$eval('#search-results img, #search-results b', (n) => n.length), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  const hit = hits.find((h) => h.href.startsWith('/ui/sessions/needle-session-7/events/'));
  assert.ok(hit, 'a hit in the needle session');
  const seq = Number(hit.href.split('/').pop());
  await page.click(`#hits a[href="${hit.href}"]`);
  await page.waitForFunction((h) => location.pathname === h, {}, hit.href);
  await page.waitForSelector(`.ev.target`);
  const target = await page.$eval('.ev.target', (n) => [Number(n.dataset.seq), Number(n.dataset.last), n.textContent]);
  assert.ok(target[0] <= seq && seq <= target[1], `event ${seq} in the highlighted block ${target}`);
  assert.match(target[2], /zanzibar lighthouse/);
  await page.assertNoTrouble();
  await page.close();
});

test('ids: an exact id and a part of one', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await page.waitForSelector('a.row[data-id="needle-session-7"]');
  await searchFor(page, 'needle-session-7');
  await page.waitForSelector('#hits a.id-hit[href="/ui/sessions/needle-session-7"]');
  await searchFor(page, 'session-7');
  await page.waitForSelector('#hits a.id-hit[href="/ui/sessions/needle-session-7"]');
  await page.click('#hits a.id-hit');
  await page.waitForFunction(() => location.pathname === '/ui/sessions/needle-session-7');
  // Escape in the field clears the search and shows the list again.
  await page.focus('#search');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('list-scroll').hidden);
  await page.assertNoTrouble();
  await page.close();
});

test('text that is not FTS5 syntax is searched as a phrase', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await searchFor(page, '"zanzibar lighthouse');
  await page.waitForSelector('#hits a.hit mark');
  await searchFor(page, 'keeper AND');
  await page.waitForFunction(() => document.getElementById('search-status').textContent === 'No matches');
  await page.assertNoTrouble();
  await page.close();
});

test('hits page on with More results', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await searchFor(page, 'quokka');
  await page.waitForSelector('#hits a.hit');
  const counts = [await page.$$eval('#hits a.hit', (n) => n.length)];
  while (await page.$('#search-results button.more')) {
    const before2 = counts[counts.length - 1];
    await page.click('#search-results button.more');
    await page.waitForFunction((k) => document.querySelectorAll('#hits a.hit').length > k, {}, before2);
    counts.push(await page.$$eval('#hits a.hit', (n) => n.length));
  }
  assert.deepEqual(counts, [50, 100, 120]);
  const hrefs = await page.$$eval('#hits a.hit', (as) => as.map((a) => a.getAttribute('href')));
  assert.equal(new Set(hrefs).size, 120, 'no hit twice');
  await page.assertNoTrouble();
  await page.close();
});
