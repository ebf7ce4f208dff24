// dashboard.test.js - drives Debian's chromium through /dashboard under load, a capture, a restart and the leak cap; writes what it saw as JSON.
//
// Usage: node dashboard.test.js BASE_URL RESULT_JSON SCREENSHOT_PNG SYNC_DIR
// Run by tests/test_dashboard.sh, which makes the assertions from RESULT_JSON
// and owns the server. The restart is a handshake over files in SYNC_DIR:
// this script writes "stop" and waits for "stopped", then writes "start" and
// waits for "started" (the wrapper stops and starts bin/server in between).
// Every wait here is bounded; on any error the script still writes what it
// has, with "error" set, and exits 1.
'use strict';

const fs = require('fs');
const path = require('path');
const browser = require('./browser');

const [base, resultFile, shotFile, syncDir] = process.argv.slice(2);
if (!base || !resultFile || !shotFile || !syncDir) {
  console.error('usage: node dashboard.test.js BASE_URL RESULT_JSON SCREENSHOT_PNG SYNC_DIR');
  process.exit(2);
}

const result = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.error('# browser: ' + msg);
// DASHBOARD_SHOTS=DIR: also save the page while down and past the cap there (for a look, not asserted).
const extraShot = (page, name) => process.env.DASHBOARD_SHOTS
  ? page.screenshot({ path: path.join(process.env.DASHBOARD_SHOTS, name), fullPage: true }) : null;

// Wait (at most ms) for the file SYNC_DIR/name to appear.
async function waitFile(name, ms) {
  const f = path.join(syncDir, name);
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100))
    if (fs.existsSync(f)) return;
  throw new Error('no ' + name + ' from the wrapper after ' + ms + ' ms');
}

const ab = (n, c) => browser.ab(base, n, c);

async function main() {
  await browser.withPage(async (page) => {
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // Console errors too, except the network errors the restart below causes on purpose.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: net::/.test(m.text())) pageErrors.push(m.text());
    });
    result.page_errors = pageErrors;

    // ---- load: live, and the baseline capture taken by the page itself
    const resp = await page.goto(base + '/dashboard', { waitUntil: 'load' });
    result.load_status = resp ? resp.status() : 0;
    await page.waitForSelector('body[data-state="live"]');
    await page.waitForFunction(() => /baseline capture/.test(document.getElementById('capture-note').textContent) &&
                                     !document.getElementById('capture').disabled);
    result.baseline_note = await page.textContent('#capture-note');
    log('page live, baseline taken');

    // ---- load in rounds, so the page polls between them: the curve gets points
    const rounds = 6, per = 500;
    for (let i = 0; i < rounds; i++) {
      ab(per, 4);
      await sleep(700);
    }
    result.requests_sent = rounds * per;
    await page.waitForFunction((n) => Number(document.getElementById('requests').textContent.replace(/,/g, '')) >= n,
                               rounds * per);
    result.requests_shown = await page.textContent('#requests');
    result.rss_shown = await page.textContent('#rss');
    result.points = Number(await page.getAttribute('#chart', 'data-points'));
    result.polyline_points = await page.$eval('#chart polyline.curve:not(.old)',
                                              (p) => p.getAttribute('points').trim().split(/\s+/).length);
    log('load done: ' + result.requests_shown + ' requests, ' + result.points + ' points');

    // ---- Capture: the diff since the baseline, the leaking line on top
    await page.click('#capture');
    await page.waitForSelector('#sites[data-mode="diff"]');
    const top = await page.$eval('#sites tbody tr', (tr) => ({
      site: tr.dataset.site, cls: tr.className,
      cells: Array.from(tr.cells).map((c) => c.textContent),
    }));
    result.top_site = top.site;
    result.top_class = top.cls;
    result.top_cells = top.cells;
    result.rows = await page.$$eval('#sites tbody tr:not([hidden])', (r) => r.length);
    result.leak_rows = await page.$$eval('#sites tbody tr.leak', (r) => r.length);
    result.leak_box_site = await page.textContent('#leak-site');
    result.leak_box_hidden = await page.$eval('#leak', (e) => e.hidden);
    result.leak_source = await page.textContent('#leak-source');
    // the leak's row says what GET /retention found: "lost" for --leak=drop
    result.leak_verdict = await page.waitForSelector('#sites tbody tr.leak .verdict', { timeout: 10000 })
      .then((e) => e.textContent()).catch(() => '');
    await page.screenshot({ path: shotFile, fullPage: true });
    log('capture shown, screenshot ' + shotFile);

    // Capture again: the table is reused, not grown.
    const shown = await page.getAttribute('#sites', 'data-capture');
    await page.click('#capture');
    await page.waitForFunction((n) => document.getElementById('sites').dataset.capture !== n, shown);
    result.tbody_rows_after_second_capture = await page.$$eval('#sites tbody tr', (r) => r.length);

    // ---- restart: unreachable while down, a new series after
    const pointsBefore = result.points;
    fs.writeFileSync(path.join(syncDir, 'stop'), '');
    await waitFile('stopped', 30000);
    await page.waitForSelector('body[data-state="unreachable"]');
    result.unreachable_status = await page.textContent('#status');
    log('unreachable shown: ' + result.unreachable_status);
    await extraShot(page, 'dashboard-unreachable.png');
    fs.writeFileSync(path.join(syncDir, 'start'), '');
    await waitFile('started', 30000);
    await page.waitForSelector('body[data-state="live"]', { timeout: 30000 });
    result.old_curve = await page.$$eval('#chart polyline.curve.old', (p) => p.length);
    result.points_after_restart = Number(await page.getAttribute('#chart', 'data-points'));
    result.points_before_restart = pointsBefore;

    // ---- the restarted server has a tiny leak cap: drive it past, see the state
    ab(200, 2);
    await page.waitForSelector('body[data-state="capped"]');
    result.capped_status = await page.textContent('#status');
    log('capped shown: ' + result.capped_status);
    await extraShot(page, 'dashboard-capped.png');
  });
}

browser.run(main, result, resultFile, 'browser');
