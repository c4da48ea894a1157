// Shared by the inspector's browser tests: the real server (mock agent) on
// 127.0.0.1, Debian's headless chromium through puppeteer-core, and the
// page-side traps every test checks (uncaught errors, CSP violations).
//
// Environment: SJ_BINARY (the server), SJ_BROWSER_MODULES (where
// tests/browser/install.sh put node_modules), SJ_TEST_TMPDIR (scratch),
// SJ_CHROMIUM (default /usr/bin/chromium).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');

const modules = process.env.SJ_BROWSER_MODULES;
if (!modules) throw new Error('SJ_BROWSER_MODULES is not set (ctest sets it)');
const puppeteer = require(path.join(modules, 'node_modules', 'puppeteer-core'));

const TIMEOUT = 15000;

function freshDir(tag) {
  const root = process.env.SJ_TEST_TMPDIR || os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  return fs.mkdtempSync(path.join(root, `browser-${tag}-`));
}

// Starts `sandbox-journal server` and resolves once it prints its address.
function launch(srv) {
  const args = ['server', '--host', '127.0.0.1', '--port', String(srv.port || 0),
    '--data-dir', srv.dataDir, '--mock-delay-ms', String(srv.delay)];
  if (srv.token) args.push('--token', srv.token); else args.push('--no-token');
  const child = spawn(process.env.SJ_BINARY, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  srv.child = child;
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start')), 20000);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code})`)); });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        srv.port = Number(m[1]);
        srv.url = `http://127.0.0.1:${srv.port}`;
        child.stdout.on('data', () => {});
        resolve(srv);
      }
    });
  });
}

async function startServer({ token = '', delay = 1, dataDir } = {}) {
  const srv = { token, delay, dataDir: dataDir || freshDir('srv'), port: 0 };
  await launch(srv);
  srv.stop = () => new Promise((resolve) => {
    const c = srv.child;
    if (!c || c.exitCode !== null) return resolve();
    c.removeAllListeners('exit');
    const kill = setTimeout(() => c.kill('SIGKILL'), 10000);
    c.on('exit', () => { clearTimeout(kill); resolve(); });
    c.kill('SIGTERM');
  });
  srv.start = () => launch(srv); // again, on the same port and journal
  srv.api = async (method, p, body, { auth = true } = {}) => {
    const headers = {};
    if (auth && srv.token) headers.Authorization = `Bearer ${srv.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(srv.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  srv.create = (id, body = { agent: 'mock' }) => srv.api('POST', `/v1/sessions/${encodeURIComponent(id)}`, body);
  srv.send = (id, message) => srv.api('POST', `/v1/sessions/${encodeURIComponent(id)}/messages`, { message });
  srv.events = async (id) => {
    const all = [];
    let offset = 0;
    for (;;) {
      const r = await srv.api('GET', `/v1/sessions/${encodeURIComponent(id)}/events?offset=${offset}&limit=10000`);
      all.push(...r.events);
      if (!r.hasMore || !r.events.length) return all;
      offset = r.events[r.events.length - 1].sequence;
    }
  };
  // Polls until pred(events) holds; returns the events.
  srv.waitEvents = async (id, pred, ms = TIMEOUT) => {
    const end = Date.now() + ms;
    for (;;) {
      const evs = await srv.events(id);
      if (pred(evs)) return evs;
      if (Date.now() > end) throw new Error(`events of ${id}: condition not met (${evs.length} events)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return srv;
}

async function startBrowser() {
  return puppeteer.launch({
    executablePath: process.env.SJ_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-extensions', '--disable-background-networking', '--disable-component-update'],
  });
}

// A page with traps: uncaught errors and CSP violations are collected and
// assertNoTrouble() fails on them.
async function newPage(browser, { width = 1280, height = 800, context } = {}) {
  const page = await (context || browser).newPage();
  await page.setViewport({ width, height });
  page.setDefaultTimeout(TIMEOUT);
  page.trouble = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.trouble.push(`pageerror: ${e.message}`));
  page.on('dialog', async (d) => { page.dialogs.push(`${d.type()}: ${d.message()}`); await d.accept(); });
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.assertNoTrouble = async () => {
    const csp = await page.evaluate(() => window.__csp);
    assert.deepEqual(csp, [], 'CSP violations');
    assert.deepEqual(page.trouble, [], 'page errors');
  };
  return page;
}

async function open(page, srv, p = '/ui/') {
  await page.goto(srv.url + p, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.__sjInspectorReady === true);
}

// Rows of the sessions list, as ids.
const rowIds = (page) => page.$$eval('#session-list a.row', (as) => as.map((a) => a.dataset.id));

// Waits until the transcript shows event `seq` (any block spanning it).
async function waitSeq(page, seq) {
  await page.waitForFunction((s) => [...document.querySelectorAll('#events .ev')]
    .some((n) => Number(n.dataset.seq) <= s && Number(n.dataset.last) >= s), {}, seq);
}

async function pool(items, n, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) { const k = i++; await fn(items[k], k); }
  }));
}

module.exports = { assert, freshDir, startServer, startBrowser, newPage, open, rowIds, waitSeq, pool, TIMEOUT };
