// The example page must never fail silently: when the SDK bundle cannot
// load (no e2e/node_modules copy and the CDN unreachable), it shows a
// visible message saying how to fix it; with the bundle it shows none.
//
// Needs Debian's chromium (`apt-get install -y chromium`, or CHROMIUM_PATH),
// Go, and `npm ci` in e2e/. Run: cd e2e && node --test browser/sdk-missing.test.js
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '../..');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SDK_DIST = path.join(ROOT, 'e2e', 'node_modules', 'leancloud-realtime', 'dist');
const STEP_TIMEOUT = 15000;

let tmp;
let bin;
let browser;
const apps = [];

// startApp runs the example in cwd (a folder without node_modules, so that
// without -sdk-dir the page is sent to the CDN) and resolves with its URL.
async function startApp(args) {
  const child = spawn(bin, ['-addr', '127.0.0.1:0', '-db', path.join(tmp, `chat-${apps.length}.db`), ...args],
    { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  const app = { child, out: '' };
  apps.push(app);
  child.stderr.on('data', (d) => { app.out += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the app printed no URL within 30s\n' + app.out)), 30000);
    child.stdout.on('data', (d) => {
      app.out += d;
      const m = app.out.match(/http:\/\/\S+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the app exited (${code})\n${app.out}`)); });
  });
}

async function open(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The CDN is unreachable in this test whatever the network: every
  // request to it fails, as behind a firewall or offline.
  await page.route('**/cdn.jsdelivr.net/**', (route) => route.abort('internetdisconnected'));
  await page.goto(url, { timeout: STEP_TIMEOUT });
  return page;
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-missing-e2e-'));
  bin = path.join(tmp, 'chat');
  await promisify(execFile)('go', ['build', '-o', bin, './examples/chat'], { cwd: ROOT, timeout: 300000 })
    .catch((err) => { throw new Error('go build ./examples/chat failed:\n' + (err.stderr || err.message)); });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30000,
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  for (const app of apps) app.child.kill('SIGKILL');
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('without the SDK bundle the page says how to fix it', { timeout: 120000 }, async () => {
  const page = await open(await startApp([]));
  const banner = page.locator('#sdk-missing');
  await banner.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  const text = await banner.innerText();
  for (const fix of ['cd e2e && npm ci', 'cdn.jsdelivr.net', '-sdk-dir']) {
    assert.ok(text.includes(fix), `the message does not mention "${fix}":\n${text}`);
  }
  assert.equal(await page.locator('#login-button').isDisabled(), true, 'login stays enabled without the SDK');
});

test('with the SDK bundle the page shows no such message', { timeout: 120000 }, async () => {
  assert.ok(fs.existsSync(path.join(SDK_DIST, 'im-browser.min.js')), 'run npm ci in e2e/ first');
  const page = await open(await startApp(['-sdk-dir', SDK_DIST]));
  await page.waitForFunction(() => typeof AV !== 'undefined' && !!AV.Realtime, null, { timeout: STEP_TIMEOUT });
  assert.equal(await page.locator('#sdk-missing').isVisible(), false, 'the SDK-missing message shows although the SDK loaded');
  assert.equal(await page.locator('#login-button').isDisabled(), false);
});
