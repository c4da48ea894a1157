// Takes the README's screenshots of the inspector (docs/img/*.png) from the
// browser tests' setup: a fresh journal, the mock agent, headless chromium.
//   SJ_BINARY=build/sandbox-journal SJ_BROWSER_MODULES=build/browser-deps \
//     node tests/browser/screenshots.cjs [out-dir]
// (install.sh puts puppeteer-core in SJ_BROWSER_MODULES; ctest's
// browser/install fixture does it too).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const L = require('./lib.cjs');

const out = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'docs', 'img'));

async function turn(srv, id, message) {
  const n = (await srv.events(id)).length;
  await srv.send(id, message);
  await srv.waitEvents(id, (e) => e.length > n && ['item.completed', 'error', 'agent.unparsed', 'question.requested', 'permission.requested']
    .includes(e[e.length - 1].type) && e.length > n + 3);
  await new Promise((r) => setTimeout(r, 300));
}

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const dataDir = L.freshDir('shots');
  L.importSession(dataDir, 'long-import', 3000, ' from an imported transcript');
  const srv = await L.startServer({ dataDir });
  const browser = await L.startBrowser();
  try {
    for (let i = 0; i < 14; i++) {
      const id = `task-${String(i).padStart(2, '0')}`;
      await srv.create(id);
      await turn(srv, id, ['echo refactor the parser', 'echo add a --json flag to export', 'tool', 'echo fix the flaky test'][i % 4]);
    }
    await srv.api('POST', '/v1/sessions/task-03/terminate');
    await srv.create('demo');
    await turn(srv, 'demo', 'markdown');
    await turn(srv, 'demo', 'tool');
    await srv.create('needs-answer');
    await turn(srv, 'needs-answer', 'echo may I run the tests?');
    await srv.send('needs-answer', 'permission');
    await srv.waitEvents('needs-answer', (e) => e.some((x) => x.type === 'permission.requested'));

    await srv.indexed();
    const page = await L.newPage(browser, { width: 1280, height: 800 });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    await L.open(page, srv);
    await page.waitForSelector('#session-list a.row');
    await page.screenshot({ path: path.join(out, 'inspector-sessions.png') });

    await L.open(page, srv, '/ui/sessions/demo');
    await page.waitForSelector('#live[data-state="live"]');
    await new Promise((r) => setTimeout(r, 400));
    await page.screenshot({ path: path.join(out, 'inspector-transcript.png') });

    await L.open(page, srv, '/ui/sessions/needs-answer');
    await page.waitForSelector('.ask.pending');
    await new Promise((r) => setTimeout(r, 400));
    await page.screenshot({ path: path.join(out, 'inspector-permission.png') });

    await page.type('#search', 'parser');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#hits a.hit mark');
    await page.click('#hits a.hit:not(.id-hit)');
    await page.waitForSelector('.ev.target');
    await new Promise((r) => setTimeout(r, 400));
    await page.screenshot({ path: path.join(out, 'inspector-search.png') });

    const narrow = await L.newPage(browser, { width: 390, height: 760 });
    await L.open(narrow, srv, '/ui/sessions/demo');
    await narrow.waitForSelector('#live[data-state="live"]');
    await new Promise((r) => setTimeout(r, 400));
    await narrow.screenshot({ path: path.join(out, 'inspector-narrow.png') });
    console.log(`screenshots in ${out}`);
  } finally {
    await browser.close();
    await srv.stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });
