// browser.js - what the browser tests share: ab against the server, a headless chromium page in a fresh profile, and writing the result JSON however the run ends.
'use strict';

const fs = require('fs');
const path = require('path');
const os = require('os');
const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

// Bounded ab run against GET / of base (ab exits 0 also when the server answers 503).
function ab(base, n, c) {
  execFileSync('ab', ['-q', '-n', String(n), '-c', String(c), base + '/'],
               { timeout: 60000, stdio: ['ignore', 'ignore', 'pipe'] });
}

// withPage(fn): Debian's chromium, headless, in a fresh profile removed after;
// fn(page) runs with a 20 s default timeout.
async function withPage(fn) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'leaklab-chromium-'));
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--disable-dev-shm-usage'],
      viewport: { width: 1280, height: 800 },
      timeout: 60000,
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(20000);
    await fn(page);
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

// run(main, result, resultFile, tag): await main(), then write result as JSON;
// on an error, with "error" set (its first line), and exit status 1.
function run(main, result, resultFile, tag) {
  main().then(() => {
    fs.writeFileSync(resultFile, JSON.stringify(result, null, 1));
  }, (e) => {
    result.error = String(e && e.message ? e.message : e).split('\n')[0];
    fs.writeFileSync(resultFile, JSON.stringify(result, null, 1));
    console.error('# ' + tag + ': error: ' + result.error);
    process.exitCode = 1;
  });
}

module.exports = { ab, withPage, run };
