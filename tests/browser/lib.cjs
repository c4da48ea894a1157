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
const puppeteer = require(path.resolve(modules, 'node_modules', 'puppeteer-core'));

const TIMEOUT = 15000;

function freshDir(tag) {
  const root = process.env.SJ_TEST_TMPDIR || os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  return fs.mkdtempSync(path.join(root, `browser-${tag}-`));
}

// Starts `sandbox-journal server` and resolves once it prints its address.
function launch(srv) {
  const args = ['server', '--host', '127.0.0.1', '--port', String(srv.port || 0),
    '--data-dir', srv.dataDir, '--mock-delay-ms', String(srv.delay), '--durability', 'normal'];
  if (srv.token) args.push('--token', srv.token); else args.push('--no-token');
  const child = spawn(path.resolve(process.env.SJ_BINARY), args, { stdio: ['ignore', 'pipe', 'inherit'] });
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
  // SIGTERM; rejects unless the server exits 0 by itself (a sanitizer
  // report, a leak or a hang fails the test).
  srv.stop = () => new Promise((resolve, reject) => {
    const c = srv.child;
    if (!c || c.exitCode !== null) return resolve();
    c.removeAllListeners('exit');
    const kill = setTimeout(() => c.kill('SIGKILL'), 10000);
    c.on('exit', (code, signal) => {
      clearTimeout(kill);
      if (code === 0) resolve(); else reject(new Error(`server exited with ${code ?? signal}`));
    });
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
  // Waits until the search index has caught up with the journal (it
  // follows behind the commit, and back-fills an imported journal).
  srv.indexed = async (ms = 60000) => {
    const end = Date.now() + ms;
    for (;;) {
      const r = await srv.api('GET', '/v1/search?q=sjindexprobe&limit=1');
      if (!r.indexLag) return;
      if (Date.now() > end) throw new Error(`search index still ${r.indexLag} events behind`);
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  return srv;
}

// Writes a journal export of one mock session of `n` messages (alternately
// the user's and the assistant's, text `message <sequence>` plus `extra`)
// and imports it into `dataDir` with `sandbox-journal import`: a long
// session in a second, where the mock would take minutes.
function importSession(dataDir, id, n, extra = '') {
  const { execFileSync } = require('node:child_process');
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const lines = [JSON.stringify({ kind: 'sandbox-journal-export', version: 1 }),
    JSON.stringify({ kind: 'session', session_id: id, agent: 'mock', agent_mode: 'build', permission_mode: 'default',
      model: null, variant: null, agent_version: null, native_session_id: null, working_dir: null,
      adapter_state: '{"turns":0}', created_at: new Date(t0).toISOString(), ended: 0, last_sequence: n })];
  for (let k = 1; k <= n; k++) {
    const ev = { event_id: `evt_${k}`, sequence: k, time: new Date(t0 + k * 1000).toISOString(), session_id: id,
      native_session_id: null, synthetic: false, source: 'agent', type: 'item.completed',
      data: { item: { item_id: `itm_${k}`, native_item_id: null, parent_id: null, kind: 'message',
        role: k % 2 ? 'user' : 'assistant', content: [{ type: 'text', text: `message ${k}${extra}` }], status: 'completed' } },
      raw: null };
    lines.push(JSON.stringify({ kind: 'event', session_id: id, sequence: k, type: ev.type, turn_end: k % 2 === 0,
      json: JSON.stringify(ev), raw: null }));
  }
  const file = path.join(dataDir, `${id}.jsonl`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  execFileSync(path.resolve(process.env.SJ_BINARY), ['import', `jsonl:${file}`, '--data-dir', dataDir, '--quiet'], { stdio: 'inherit' });
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
async function waitSeq(page, seq, timeout = TIMEOUT) {
  await page.waitForFunction((s) => [...document.querySelectorAll('#events .ev')]
    .some((n) => Number(n.dataset.seq) <= s && Number(n.dataset.last) >= s), { timeout }, seq);
}

async function pool(items, n, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) { const k = i++; await fn(items[k], k); }
  }));
}

module.exports = { assert, freshDir, importSession, startServer, startBrowser, newPage, open, rowIds, waitSeq, pool, TIMEOUT };
