// leaks.test.js - drives /dashboard of bin/server-planted in headless chromium: the highlighted leak, the stacked sites and the RSS bar all come from /leaks and /stats; writes what it saw as JSON.
//
// Usage: node leaks.test.js BASE_URL RESULT_JSON SCREENSHOT_PNG
// Run by tests/test_dashboard.sh against bin/server-planted --fixed with
// PLANT=leak:3000,cache:40000:500: the planted cache grows faster than the
// planted leak until it is full, so the capture's top row is the cache; the
// page must highlight the row /leaks calls a leak, wherever it is. The
// wrapper makes the assertions. Every wait is bounded; on error the script
// writes what it has, with "error" set, and exits 1.
'use strict';

const browser = require('./browser');

const [base, resultFile, shotFile] = process.argv.slice(2);
if (!base || !resultFile || !shotFile) {
  console.error('usage: node leaks.test.js BASE_URL RESULT_JSON SCREENSHOT_PNG');
  process.exit(2);
}

const result = {};
const log = (msg) => console.error('# browser (leaks): ' + msg);
const ab = (n, c) => browser.ab(base, n, c);
// One history sample now (the server runs with --test-hooks): the test needs the
// sampler to see each step, and takes the sample rather than sleeping for it.
async function sample() {
  const r = await fetch(base + '/history/sample', { method: 'POST' });
  const body = await r.text();
  if (!r.ok || !/^sample \d+/.test(body)) throw new Error('POST /history/sample: ' + r.status + ' ' + body.trim());
}

async function main() {
  await browser.withPage(async (page) => {
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    result.page_errors = pageErrors;

    await page.goto(base + '/dashboard', { waitUntil: 'load' });
    await page.waitForFunction(() => /baseline capture/.test(document.getElementById('capture-note').textContent) &&
                                     !document.getElementById('capture').disabled);
    log('page live, baseline taken');
    // The cache (500 entries) fills over the first 500 requests, sent in five steps, a
    // history sample after each, so the history sees it grow even on a loaded machine: a
    // series starts at the first sample that sees its site, and a cache first seen full
    // would be flat (steady) from its first point. Then 2500 requests with the cache full.
    for (let i = 0; i < 5; i++) { ab(100, 2); await sample(); }
    for (let i = 0; i < 5; i++) { ab(500, 2); await sample(); }
    // /leaks is polled every other /stats poll: wait until its answer is drawn
    await page.waitForFunction(() => document.querySelector('#chart polygon.site-area.leak') !== null, null,
                               { timeout: 30000 });
    await page.click('#capture');
    await page.waitForSelector('#sites[data-mode="diff"]');
    result.top_row_site = await page.$eval('#sites tbody tr', (tr) => tr.dataset.site);
    result.leak_row_sites = await page.$$eval('#sites tbody tr.leak', (r) => r.map((tr) => tr.dataset.site));
    result.leak_box_site = await page.textContent('#leak-site');
    result.leak_box_func = await page.textContent('#leak-func');
    result.leak_source = await page.textContent('#leak-source');
    result.areas = await page.$$eval('#chart polygon.site-area',
                                     (a) => a.map((p) => ({ site: p.dataset.site, kind: p.dataset.kind,
                                                            leak: p.classList.contains('leak') })));
    result.rss_parts = await page.$$eval('#rss-bar .seg', (s) => s.map((d) => d.dataset.part));
    result.rss_bar_bytes = await page.$$eval('#rss-bar .seg', (s) => s.reduce((t, d) => t + Number(d.dataset.bytes), 0));
    result.rss_bar_vm_rss = Number(await page.getAttribute('#rss-bar', 'data-vm-rss'));
    // What the server says, read right after, for the wrapper to compare.
    const lk = await page.evaluate(async () => (await fetch('/leaks?format=json&top=64')).json());
    const first = lk.suspects.find((s) => s.kind === 'leak');
    result.leaks_top_leak = first ? first.site : '';
    result.leaks_kinds = Object.fromEntries(lk.suspects.map((s) => [s.site, s.kind]));
    result.page_source_has_lab_names = /fetch_user_data|LEAK_FILE/.test(
      await page.evaluate(async () => (await fetch('/dashboard/dashboard.js')).text()));
    await page.screenshot({ path: shotFile, fullPage: true });
    log('highlighted: ' + result.leak_row_sites.join(' ') + '; top row ' + result.top_row_site);
  });
}

browser.run(main, result, resultFile, 'browser (leaks)');
