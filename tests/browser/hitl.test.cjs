// Permissions and questions answered from the page: the buttons appear on
// the pending request, the reply goes through the API, and the journal
// records the decision, which the card then shows with its time.
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

test('a pending permission, allowed from the page, is journaled', async () => {
  await srv.create('perm');
  const page = await L.newPage(browser);
  await L.open(page, srv, '/ui/sessions/perm');
  await page.waitForSelector('#live[data-state="live"]');
  await srv.send('perm', 'permission');
  const evs = await srv.waitEvents('perm', (e) => e.some((x) => x.type === 'permission.requested'));
  const req = evs.find((x) => x.type === 'permission.requested');
  const id = req.data.permission_id;
  // Live: the card arrives over the event stream, answerable in place.
  await page.waitForSelector(`#ev-${req.sequence} .ask.pending .reply-once`);
  await page.waitForFunction(() => document.querySelector('#s-status .badge').textContent === 'waiting');
  await page.click(`#ev-${req.sequence} .reply-once`);
  const after2 = await srv.waitEvents('perm', (e) => e.some((x) => x.type === 'permission.resolved'));
  const res = after2.find((x) => x.type === 'permission.resolved');
  assert.equal(res.data.permission_id, id);
  assert.equal(res.data.status, 'approved');
  await page.waitForFunction((s) => {
    const card = document.querySelector(`#ev-${s} .ask`);
    return card && !card.classList.contains('pending') && /approved at/.test(card.textContent)
      && !card.querySelector('button');
  }, {}, req.sequence);
  const info = await srv.api('GET', '/v1/sessions/perm');
  assert.ok(!info.pendingPermissions.includes(id), `${id} no longer pending`);
  await page.assertNoTrouble();
  await page.close();
});

test('a pending permission rejected after a reload', async () => {
  await srv.create('perm2');
  await srv.send('perm2', 'permission');
  const evs = await srv.waitEvents('perm2', (e) => e.some((x) => x.type === 'permission.requested'));
  const req = evs.find((x) => x.type === 'permission.requested');
  const page = await L.newPage(browser);
  await L.open(page, srv, `/ui/sessions/perm2/events/${req.sequence}`);
  await page.waitForSelector(`#ev-${req.sequence} .reply-reject`);
  await page.click(`#ev-${req.sequence} .reply-reject`);
  const done = await srv.waitEvents('perm2', (e) => e.some((x) => x.type === 'permission.resolved'));
  assert.equal(done.find((x) => x.type === 'permission.resolved').data.status, 'denied');
  await page.waitForFunction((s) => /denied at/.test(document.querySelector(`#ev-${s}`).textContent), {}, req.sequence);
  await page.assertNoTrouble();
  await page.close();
});

test('a question answered with one of its options', async () => {
  await srv.create('ask');
  await srv.send('ask', 'question');
  const evs = await srv.waitEvents('ask', (e) => e.some((x) => x.type === 'question.requested'));
  const req = evs.find((x) => x.type === 'question.requested');
  const option = req.data.options[0];
  const page = await L.newPage(browser);
  await L.open(page, srv, '/ui/sessions/ask');
  await page.waitForSelector(`#ev-${req.sequence} .ask.pending button.answer`);
  const labels = await page.$$eval(`#ev-${req.sequence} button.answer`, (bs) => bs.map((b) => b.textContent));
  assert.deepEqual(labels, req.data.options);
  await page.click(`#ev-${req.sequence} button.answer`);
  const done = await srv.waitEvents('ask', (e) => e.some((x) => x.type === 'question.resolved'));
  const res = done.find((x) => x.type === 'question.resolved');
  assert.equal(res.data.status, 'answered');
  assert.equal(res.data.response, option);
  await page.waitForFunction((s, o) => document.querySelector(`#ev-${s}`).textContent.includes(`answered: ${o}`), {}, req.sequence, option);
  await page.assertNoTrouble();
  await page.close();
});
