// First transcript paint of a long session in headless Chromium (issue 14's
// benchmark; run through bench/ui_paint.sh, which builds the server and
// installs puppeteer-core the way the browser tests do).
//
// Three sessions are imported (tests/browser/lib.cjs's importSession:
// `sandbox-journal import` of a generated JSONL): EVENTS plain messages;
// MD_EVENTS messages that are each markdown with emphasis, code, a link, a
// list and a fenced block; and a 10-event session, the baseline that shows
// what the page costs on this machine whatever the session's length.  Each run opens
// /ui/sessions/<id> in a new incognito context (nothing cached) and once
// more in the same context (modules cached), and records, in the page's own
// clock (ms since navigation start):
//   dom:   the newest event is in the transcript's DOM;
//   paint: the first frame after that (requestAnimationFrame, then a task);
//   api:   the end of the last response for the session's events;
//   task, script, layout: Chromium's main-thread counters at that point;
// plus the requests made for the transcript and their bytes.
// Prints a JSON summary (medians, min, max) on stdout.
'use strict';
const path = require('node:path');
const L = require(path.join(__dirname, '..', 'tests', 'browser', 'lib.cjs'));

const EVENTS = Number(process.env.SJ_PAINT_EVENTS || 100000);
const RUNS = Number(process.env.SJ_PAINT_RUNS || 5);
const MD_EVENTS = Number(process.env.SJ_PAINT_MD_EVENTS || EVENTS);
const SESSIONS = [['plain', EVENTS], ['markdown', MD_EVENTS], ['short', 10]];
const MARKDOWN = '\n\nThe **plan** has `three` steps, see [the docs](https://example.com/docs):\n\n' +
  '1. read *src/http/ui/markdown.js*\n2. run `ctest -R ui/`\n3. done\n\n```c\nint main(void) { return 0; }\n```';

// Installed before any page script: stamps the first moment the newest
// event is in the DOM, then the frame that shows it.
function paintProbe(newest) {
  window.__newest = newest;
  window.__paint = null;
  const shown = () => [...document.querySelectorAll('#events .ev')]
    .some((n) => Number(n.dataset.seq) <= newest && Number(n.dataset.last) >= newest);
  const obs = new MutationObserver(() => {
    if (!shown()) return;
    obs.disconnect();
    const dom = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__paint = { dom, paint: performance.now() }; }, 0));
  });
  obs.observe(document, { childList: true, subtree: true });
}

async function measure(browser, srv, id, newest, context) {
  const page = await L.newPage(browser, { context });
  await page.evaluateOnNewDocument(paintProbe, newest);
  const requests = [];
  page.on('response', async (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith(`/v1/sessions/${id}`)) return;
    let bytes = 0;
    try { bytes = (await r.buffer()).length; } catch { /* a streamed body (SSE) has none */ }
    requests.push({ path: u.pathname + u.search, bytes });
  });
  await page.goto(`${srv.url}/ui/sessions/${id}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.__paint !== null, { timeout: 60000 });
  const t = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const api = performance.getEntriesByType('resource').filter((e) => /\/v1\/sessions\/[^/]+\/events\?/.test(e.name))
      .reduce((a, e) => Math.max(a, e.responseEnd), 0);
    return { ...window.__paint, api, fcp: fcp ? fcp.startTime : null, nodes: document.getElementsByTagName('*').length };
  });
  // Main-thread time Chromium spent in tasks, script, style and layout up
  // to here (its own counters): less at the mercy of a loaded machine than
  // the page's clock, which also counts waiting for a CPU.
  const m = await page.metrics();
  t.task = m.TaskDuration * 1000;
  t.script = m.ScriptDuration * 1000;
  t.layout = (m.LayoutDuration + m.RecalcStyleDuration) * 1000;
  await page.assertNoTrouble();
  await page.close();
  return { ...t, requests: requests.length, bytes: requests.reduce((a, r) => a + r.bytes, 0) };
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 10) / 10;
  return { median: r(s[Math.floor(s.length / 2)]), min: r(s[0]), max: r(s[s.length - 1]) };
};

(async () => {
  const dataDir = L.freshDir('paint');
  let t0 = Date.now();
  for (const [id, n] of SESSIONS) L.importSession(dataDir, id, n, id === 'markdown' ? MARKDOWN : '');
  const importMs = Date.now() - t0;
  const srv = await L.startServer({ dataDir });
  const browser = await L.startBrowser();
  const out = { runs: RUNS, importMs, sessions: {} };
  try {
    for (const [id, n] of SESSIONS) {
      const cold = [];
      const warm = [];
      // One unmeasured load: Chromium's own start-up costs are not the page's.
      await measure(browser, srv, id, n);
      for (let i = 0; i < RUNS; i++) {
        const ctx = await browser.createBrowserContext();
        cold.push(await measure(browser, srv, id, n, ctx));
        warm.push(await measure(browser, srv, id, n, ctx));
        await ctx.close();
      }
      const pick = (runs, k) => stats(runs.map((r) => r[k]));
      out.sessions[id] = {
        events: n,
        cold: { paint: pick(cold, 'paint'), dom: pick(cold, 'dom'), api: pick(cold, 'api'), fcp: pick(cold, 'fcp'),
          task: pick(cold, 'task'), script: pick(cold, 'script'), layout: pick(cold, 'layout') },
        warm: { paint: pick(warm, 'paint'), dom: pick(warm, 'dom'), api: pick(warm, 'api'),
          task: pick(warm, 'task'), script: pick(warm, 'script'), layout: pick(warm, 'layout') },
        requests: cold[0].requests,
        transcriptBytes: cold[0].bytes,
        domElements: cold[0].nodes,
      };
    }
  } finally {
    await browser.close();
    await srv.stop();
  }
  console.log(JSON.stringify(out, null, 2));
})().catch((e) => { console.error(e); process.exit(1); });
