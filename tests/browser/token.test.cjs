// The token flow on a server started with --token: the page asks once,
// keeps the token for the tab only, sends it as Authorization (the event
// stream too), never in a URL; a wrong token is asked for again.
'use strict';
const { test, before, after } = require('node:test');
const L = require('./lib.cjs');
const { assert } = L;

const TOKEN = 'tok-3b1f8e0c2d';
let srv, browser;

before(async () => {
  srv = await L.startServer({ token: TOKEN });
  await srv.create('secret-session');
  await srv.send('secret-session', 'echo behind the token');
  await srv.waitEvents('secret-session', (e) => e.some((x) => x.type === 'item.completed' && x.data.item.role === 'assistant'));
  browser = await L.startBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test('the page and its files need no token; the API does', async () => {
  const r = await fetch(`${srv.url}/ui/`);
  assert.equal(r.status, 200);
  assert.equal((await fetch(`${srv.url}/ui/app.js`)).status, 200);
  assert.equal((await fetch(`${srv.url}/v1/sessions`)).status, 401);
});

test('asks once, retries a refused token, keeps it for the tab, never in a URL', async () => {
  const ctx = await browser.createBrowserContext();
  const page = await L.newPage(browser, { context: ctx });
  const urls = [];
  const auth = [];
  page.on('request', (r) => {
    urls.push(r.url());
    if (r.url().includes('/v1/')) auth.push([new URL(r.url()).pathname, r.headers().authorization || '']);
  });
  await page.goto(`${srv.url}/ui/sessions/secret-session`);
  await page.waitForSelector('#token-dialog[open]');
  assert.match(await page.$eval('#token-msg', (n) => n.textContent), /needs its access token/);
  await page.type('#token-input', 'wrong-token');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /refused/.test(document.getElementById('token-msg').textContent)
    && document.getElementById('token-dialog').open);
  await page.type('#token-input', TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#live[data-state="live"]');
  await page.waitForSelector('a.row[data-id="secret-session"]');
  assert.match(await page.$eval('#events', (n) => n.textContent), /behind the token/);
  assert.ok(!(await page.$eval('#token-dialog', (d) => d.open)), 'asked no more');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sandbox-journal.token')), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing kept beyond the tab');
  assert.ok(auth.some(([p, a]) => p.endsWith('/events/sse') && a === `Bearer ${TOKEN}`), 'the stream sends the header');

  // A reload keeps the token: no prompt.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#live[data-state="live"]');
  assert.ok(!(await page.$eval('#token-dialog', (d) => d.open)));
  for (const u of urls) assert.ok(!u.includes(TOKEN) && !u.includes('wrong-token'), `token in a URL: ${u}`);

  // Forgetting it asks again.
  await page.click('#forget-token');
  await page.waitForSelector('#token-dialog[open]');
  await page.assertNoTrouble();
  await ctx.close();
});

test('another tab (a new context) is asked again', async () => {
  const ctx = await browser.createBrowserContext();
  const page = await L.newPage(browser, { context: ctx });
  await page.goto(`${srv.url}/ui/`);
  await page.waitForSelector('#token-dialog[open]');
  await ctx.close();
});
