// Live tail, a server restart under an open page, and the actions: create a
// session, send a message, terminate, all from the page.
'use strict';
const { test, before, after } = require('node:test');
const L = require('./lib.cjs');
const { assert } = L;

let srv, browser;

before(async () => {
  srv = await L.startServer();
  browser = await L.startBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

const shown = (page) => page.$$eval('#events .ev', (ns) => ns.map((n) => Number(n.dataset.seq)));

test('live tail survives a server restart and resumes without loss or repeats', async () => {
  await srv.create('tail');
  const page = await L.newPage(browser);
  const sse = [];
  page.on('request', (r) => { if (r.url().endsWith('/events/sse')) sse.push(r.headers()['last-event-id'] || ''); });
  await L.open(page, srv, '/ui/sessions/tail');
  await page.waitForSelector('#live[data-state="live"]');
  await srv.send('tail', 'echo before the restart');
  let evs = await srv.waitEvents('tail', (e) => e.some((x) => x.type === 'item.completed' && x.data.item.role === 'assistant'));
  await L.waitSeq(page, evs[evs.length - 1].sequence);
  assert.match(await page.$eval('#events', (n) => n.textContent), /before the restart/);

  await srv.stop();
  await page.waitForSelector('#live[data-state="reconnecting"]');
  assert.equal(await page.$eval('#live', (n) => n.textContent), 'reconnecting…');
  await srv.start();
  await page.waitForSelector('#live[data-state="live"]');
  const last = evs[evs.length - 1].sequence;
  assert.ok(sse.includes(String(last)), `resumed with Last-Event-ID ${last}: ${sse}`);

  await srv.send('tail', 'echo after the restart');
  evs = await srv.waitEvents('tail', (e) => e.filter((x) => x.type === 'item.completed' && x.data.item.role === 'assistant').length === 2);
  await L.waitSeq(page, evs[evs.length - 1].sequence);
  assert.match(await page.$eval('#events', (n) => n.textContent), /after the restart/);
  const seqs = await shown(page);
  assert.equal(new Set(seqs).size, seqs.length, 'no block twice');
  // Every event is in exactly one block, in order.
  const spans = await page.$$eval('#events .ev', (ns) => ns.map((n) => [Number(n.dataset.seq), Number(n.dataset.last)]));
  const covered = new Set();
  for (const [a, b] of spans) for (let s = a; s <= b; s++) covered.add(s);
  for (const e of evs) assert.ok(covered.has(e.sequence), `event ${e.sequence} shown`);
  await page.assertNoTrouble();
  await page.close();
});

test('create a session, send a message and terminate it from the page', async () => {
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await page.click('#new-session');
  await page.waitForSelector('#create-dialog[open]');
  await page.waitForSelector('#new-agent option[value="mock"]');
  await page.select('#new-agent', 'mock');
  await page.waitForSelector('#new-mode option:nth-child(2)');
  const mode = await page.$eval('#new-mode option:nth-child(2)', (o) => o.value);
  await page.select('#new-mode', mode);
  await page.select('#new-permission', 'plan');
  await page.$eval('#new-id', (i) => { i.value = ''; });
  await page.type('#new-id', 'made-in-ui');
  await page.click('#create-form button[type="submit"]');
  await page.waitForFunction(() => location.pathname === '/ui/sessions/made-in-ui');
  const info = await srv.api('GET', '/v1/sessions/made-in-ui');
  assert.equal(info.agent, 'mock');
  assert.equal(info.agentMode, mode);
  assert.equal(info.permissionMode, 'plan');
  await page.waitForSelector('#live[data-state="live"]');

  await page.type('#message', 'echo typed in the page');
  await page.keyboard.down('Control');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Control');
  await page.waitForFunction(() => /typed in the page/.test(document.querySelector('#events .role-assistant')?.textContent || ''));
  assert.equal(await page.$eval('#message', (t) => t.value), '');
  // The list shows the new session with its title.
  await page.waitForFunction(() => document.querySelector('a.row[data-id="made-in-ui"] .row-title')?.textContent === 'echo typed in the page', { timeout: 12000 });

  await page.click('#terminate');
  assert.equal(page.dialogs.length, 1, 'asked to confirm');
  await page.waitForFunction(() => [...document.querySelectorAll('.sys.ended')].length === 1);
  await page.waitForFunction(() => document.querySelector('#s-status .badge').textContent === 'ended');
  assert.ok(await page.$eval('#terminate', (b) => b.disabled));
  assert.ok(await page.$eval('#send', (b) => b.disabled));
  const evs = await srv.events('made-in-ui');
  assert.equal(evs[evs.length - 1].type, 'session.ended');
  await page.assertNoTrouble();
  await page.close();
});

test('a creation the server refuses shows its problem in the dialog', async () => {
  await srv.create('taken');
  const page = await L.newPage(browser);
  await L.open(page, srv);
  await page.click('#new-session');
  await page.waitForSelector('#new-agent option[value="mock"]');
  await page.$eval('#new-id', (i) => { i.value = 'taken'; });
  await page.click('#create-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById('create-error').textContent.length > 0);
  assert.equal(await page.evaluate(() => location.pathname), '/ui/');
  await page.assertNoTrouble();
  await page.close();
});
