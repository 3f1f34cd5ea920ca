// The example chat app (examples/chat) in a real browser: two Chromium
// pages, Tom and Jerry, each running the official browser SDK bundle
// (leancloud-realtime 5.0.0-rc.8, dist/im-browser.min.js) against the Go hub.
//
// Needs Debian's chromium (`apt-get install -y chromium`, or CHROMIUM_PATH),
// Go, and `npm ci` in e2e/. Run: cd e2e && node --test browser/
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
const SHOTS = path.join(ROOT, 'e2e', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_TIMEOUT = 15000; // ms for any one thing to show up on a page

let tmp;
let app; // { child, url, log(), exited }
let browser;
const pages = {}; // name -> { page, log: [] }

// ---------- the app ----------

async function buildApp() {
  const bin = path.join(tmp, 'chat');
  await promisify(execFile)('go', ['build', '-o', bin, './examples/chat'], { cwd: ROOT, timeout: 300000 })
    .catch((err) => { throw new Error('go build ./examples/chat failed:\n' + (err.stderr || err.message)); });
  fs.writeFileSync(path.join(tmp, 'keywords.txt'), 'badword\n');
  return bin;
}

// startApp runs the built app on addr (a free port by default) with the
// same database and keyword file every time, and resolves once it printed
// its URL.
async function startApp(addr = '127.0.0.1:0') {
  // Run from the repository root so that the app finds the SDK bundle in
  // e2e/node_modules, as it does for a developer.
  const child = spawn(path.join(tmp, 'chat'),
    ['-addr', addr, '-db', path.join(tmp, 'chat.db'), '-keywords', path.join(tmp, 'keywords.txt')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const state = { child, url: null, exited: null, log: () => (out + err).split('\n').slice(-40).join('\n') };
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    state.exited = { code, signal };
    resolve(state.exited);
  }));
  state.wait = () => exited;

  state.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the app printed no URL within 30s\n' + state.log())), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/\S+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the app exited (code ${code}, signal ${signal}) before printing its URL\n${state.log()}`));
    });
  });
  return state;
}

// ---------- pages ----------

async function openPage(name, key = name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log.push(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => log.push('page error: ' + e.message));
  page.on('requestfailed', (r) => log.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  await page.goto(app.url, { timeout: STEP_TIMEOUT });
  pages[key] = { page, log, context };
  return page;
}

// describe tells what a page shows, for failure messages.
async function describe(name) {
  const { page, log } = pages[name];
  const text = await page.evaluate(() => {
    const msgs = [...document.querySelectorAll('#messages .msg')].map((m) =>
      `  [${m.className}] ${m.dataset.from}: ${m.querySelector('.bubble').textContent}` +
      (m.querySelector('.note') ? ` (${m.querySelector('.note').textContent})` : '') +
      (m.querySelector('.ticks') ? ` ticks=${m.querySelector('.ticks').dataset.receipt}` : ''));
    const convs = [...document.querySelectorAll('#convs .conv')].map((c) => '  ' + c.innerText.replace(/\n/g, ' | '));
    return [
      'status: ' + document.getElementById('status').textContent,
      'login error: ' + document.getElementById('login-error').textContent,
      'open: ' + document.getElementById('conv-title').textContent,
      'typing: ' + document.getElementById('typing').textContent,
      'conversations:', ...convs, 'messages:', ...msgs,
    ].join('\n');
  }).catch((e) => '(page not readable: ' + e.message + ')');
  return `--- ${name}'s page ---\n${text}\n--- ${name}'s browser log ---\n${log.slice(-15).join('\n')}`;
}

// until waits for fn(arg) to be true in name's page, or fails saying what
// it waited for and what both pages and the server showed.
async function until(name, what, fn, arg, timeout = STEP_TIMEOUT) {
  try {
    await pages[name].page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (err) {
    const others = await Promise.all(Object.keys(pages).map(describe));
    const server = app.exited ? `the app EXITED: ${JSON.stringify(app.exited)}\n` : '';
    throw new Error(`${name}: waited ${timeout} ms for ${what}: ${err.message.split('\n')[0]}\n` +
      others.join('\n') + `\n--- server log ---\n${server}${app.log()}`);
  }
}

// find is page-side source: the message whose bubble shows exactly text.
const find = `(text) => [...document.querySelectorAll('#messages .msg')].find((m) => m.querySelector('.bubble').textContent === text)`;

function hasMessage(name, text, extra = 'true') {
  return until(name, `a message "${text}"` + (extra === 'true' ? '' : ` with ${extra}`),
    new Function('text', `const m = (${find})(text); return !!m && (${extra});`), text);
}

async function send(name, text) {
  const { page } = pages[name];
  await page.fill('#text', text, { timeout: STEP_TIMEOUT });
  await page.click('#send', { timeout: STEP_TIMEOUT });
}

async function login(name, key = name) {
  const { page } = pages[key];
  await page.fill('#login-name', name, { timeout: STEP_TIMEOUT });
  await page.click('#login-button', { timeout: STEP_TIMEOUT });
  await until(key, 'the chat view after logging in',
    (me) => !document.getElementById('app').hidden && document.getElementById('me').textContent === me, name);
}

async function openConv(name, title) {
  await pages[name].page.click(`#convs .conv[data-title="${title}"]`, { timeout: STEP_TIMEOUT });
  await until(name, `conversation "${title}" open`, (t) => document.getElementById('conv-title').textContent === t, title);
}

function unreadOf(name, title, count) {
  return until(name, `${count} unread in "${title}"`, ([t, n]) => {
    const c = document.querySelector(`#convs .conv[data-title="${t}"]`);
    const badge = c && c.querySelector('.unread');
    return !!c && (n === 0 ? !badge : !!badge && badge.textContent === String(n));
  }, [title, count]);
}

function shot(name, file) {
  return pages[name].page.screenshot({ path: path.join(SHOTS, file) });
}

// ---------- setup ----------

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-e2e-'));
  fs.mkdirSync(SHOTS, { recursive: true });
  await buildApp();
  app = await startApp();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30000,
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (app && !app.exited) {
    app.child.kill('SIGTERM');
    const res = await Promise.race([app.wait(), new Promise((r) => setTimeout(() => r(null), 15000))]);
    if (!res) app.child.kill('SIGKILL');
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// Steps share one story; after a failed step the rest are skipped, so the
// first failure is the one reported.
let broken = null;
function step(t, name, fn) {
  return t.test(name, broken ? { skip: `after "${broken}" failed` } : {}, async () => {
    try {
      await fn();
    } catch (err) {
      broken = name;
      throw err;
    }
  });
}

test('two browser windows chat through the example app', { timeout: 300000 }, async (t) => {
  await step(t, 'the page loads the SDK and shows the login form', async () => {
    await openPage('Tom');
    await openPage('Jerry');
    for (const name of ['Tom', 'Jerry']) {
      const hasSDK = await pages[name].page.evaluate(() => typeof AV === 'object' && typeof AV.Realtime === 'function');
      assert.ok(hasSDK, `${name}: window.AV.Realtime missing; the SDK bundle did not load\n${await describe(name)}`);
      await pages[name].page.waitForSelector('#login-form', { state: 'visible', timeout: STEP_TIMEOUT });
    }
    await shot('Tom', 'chat-login.png');
  });

  await step(t, 'Tom and Jerry log in', async () => {
    await Promise.all([login('Tom'), login('Jerry')]);
  });

  await step(t, 'Tom starts a 1:1 chat with Jerry', async () => {
    const { page } = pages.Tom;
    await page.fill('#new-members', 'Jerry');
    await page.click('#new-chat-button');
    await until('Tom', 'the chat with Jerry open', () => document.getElementById('conv-title').textContent === 'Jerry'
      && !document.getElementById('composer').hidden);
  });

  await step(t, 'Tom\'s message reaches Jerry as unread, and is ticked delivered', async () => {
    await send('Tom', 'Hello Jerry');
    await unreadOf('Jerry', 'Tom', 1);
    await hasMessage('Tom', 'Hello Jerry', `!!m.querySelector('.ticks') && m.querySelector('.ticks').dataset.receipt === 'delivered'`);
  });

  await step(t, 'Jerry opens the chat: Tom\'s message is ticked read', async () => {
    await openConv('Jerry', 'Tom');
    await hasMessage('Jerry', 'Hello Jerry');
    await unreadOf('Jerry', 'Tom', 0);
    await hasMessage('Tom', 'Hello Jerry', `!!m.querySelector('.ticks') && m.querySelector('.ticks').dataset.receipt === 'read'`);
  });

  await step(t, 'Jerry\'s typing shows on Tom\'s page, then the reply', async () => {
    await pages.Jerry.page.fill('#text', 'Hi To');
    await until('Tom', '"Jerry is typing…"', () => document.getElementById('typing').textContent === 'Jerry is typing\u2026');
    // clearing the text says "stopped typing" at once (a notice lasts 4 s)
    await pages.Jerry.page.fill('#text', '');
    await until('Tom', 'the typing notice gone when Jerry cleared his text',
      () => document.getElementById('typing').textContent === '', undefined, 2500);
    await pages.Jerry.page.fill('#text', 'Hi To');
    await until('Tom', '"Jerry is typing…" again', () => document.getElementById('typing').textContent === 'Jerry is typing\u2026');
    await send('Jerry', 'Hi Tom');
    await hasMessage('Tom', 'Hi Tom', `m.dataset.from === 'Jerry'`);
    await until('Tom', 'the typing notice gone after the message', () => document.getElementById('typing').textContent === '');
    // typing notices are transient: they never count as unread
    await unreadOf('Tom', 'Jerry', 0);
  });

  await step(t, 'a mention of Tom is highlighted on his page only', async () => {
    await send('Jerry', '@Tom look at this');
    await hasMessage('Tom', '@Tom look at this', `m.classList.contains('mentioned') && !!m.querySelector('.mention')`);
    await hasMessage('Jerry', '@Tom look at this', `!m.classList.contains('mentioned')`);
    await send('Tom', '@all meeting at noon');
    await hasMessage('Jerry', '@all meeting at noon', `m.classList.contains('mentioned')`);
    await shot('Tom', 'chat-tom-mention.png');
  });

  // Tom's read() goes out (throttled by the SDK) after his own reply, so
  // its timestamp is his message's: the receipt must still reach Jerry.
  await step(t, 'Jerry\'s messages that Tom saw before replying are ticked read', async () => {
    await hasMessage('Jerry', '@Tom look at this', `!!m.querySelector('.ticks') && m.querySelector('.ticks').dataset.receipt === 'read'`);
  });

  await step(t, 'Tom edits his message; Jerry sees the new text marked edited', async () => {
    const { page } = pages.Tom;
    const mine = page.locator('#messages .msg.mine').filter({ hasText: 'Hello Jerry' });
    await mine.hover({ timeout: STEP_TIMEOUT });
    await mine.locator('button.edit').click({ timeout: STEP_TIMEOUT });
    await until('Tom', 'the composer in edit mode', () => !document.getElementById('edit-banner').hidden
      && document.getElementById('text').value === 'Hello Jerry');
    await page.fill('#text', 'Hello Jerry, how are you?');
    await page.click('#send');
    await hasMessage('Tom', 'Hello Jerry, how are you?', `m.querySelector('.note') && m.querySelector('.note').textContent === 'edited'`);
    await hasMessage('Jerry', 'Hello Jerry, how are you?', `m.querySelector('.note') && m.querySelector('.note').textContent === 'edited'`);
    const old = await pages.Jerry.page.evaluate(() =>
      [...document.querySelectorAll('#messages .bubble')].some((b) => b.textContent === 'Hello Jerry'));
    assert.ok(!old, 'Jerry still shows the old text\n' + await describe('Jerry'));
  });

  await step(t, 'Tom recalls a message; Jerry sees it recalled', async () => {
    await send('Tom', 'oops, wrong chat');
    await hasMessage('Jerry', 'oops, wrong chat');
    const { page } = pages.Tom;
    const mine = page.locator('#messages .msg.mine').filter({ hasText: 'oops, wrong chat' });
    await mine.hover({ timeout: STEP_TIMEOUT });
    await mine.locator('button.recall').click({ timeout: STEP_TIMEOUT });
    await until('Tom', 'his message shown recalled', () =>
      !!document.querySelector('#messages .msg.mine.recalled') && !document.body.innerText.includes('oops, wrong chat'));
    await until('Jerry', 'Tom\'s message shown recalled', () =>
      !!document.querySelector('#messages .msg.recalled[data-from="Tom"]') && !document.body.innerText.includes('oops, wrong chat'));
  });

  await step(t, 'a filtered word reaches Jerry as *** and Tom sees it marked filtered', async () => {
    await send('Tom', 'what a badword day');
    await hasMessage('Jerry', 'what a *** day');
    await hasMessage('Tom', 'what a *** day', `m.querySelector('.note') && m.querySelector('.note').textContent === 'filtered'`);
    for (const name of ['Tom', 'Jerry']) {
      const leaked = await pages[name].page.evaluate(() => document.body.innerText.includes('badword'));
      assert.ok(!leaked, `${name}'s page still shows the filtered word\n${await describe(name)}`);
    }
    await shot('Tom', 'chat-tom.png');
    await shot('Jerry', 'chat-jerry.png');
  });

  await step(t, 'Tom starts a group; Jerry sees unread and the @ flag', async () => {
    const { page } = pages.Tom;
    await page.fill('#new-members', 'Jerry, Spike');
    await page.fill('#new-name', 'Cartoons');
    await page.click('#new-chat-button');
    await until('Tom', 'the group open', () => document.getElementById('conv-title').textContent === 'Cartoons');
    await send('Tom', 'Welcome to the group');
    // the mention bar writes "@Jerry " at the caret
    await page.click('#mention-bar .chip[data-name="Jerry"]', { timeout: STEP_TIMEOUT });
    await page.locator('#text').pressSequentially('you too', { timeout: STEP_TIMEOUT });
    assert.equal(await page.inputValue('#text'), '@Jerry you too', 'composer text after the mention chip');
    await page.click('#send');
    await unreadOf('Jerry', 'Cartoons', 2);
    await until('Jerry', 'the @ flag on the group', () =>
      !!document.querySelector('#convs .conv[data-title="Cartoons"] .mention-flag'));
    await shot('Jerry', 'chat-jerry-unread.png');
    await shot('Tom', 'chat-tom-group.png');
  });

  await step(t, 'Jerry reloads: history, edits, recalls and unread counts come back', async () => {
    await send('Tom', 'one more while you were away');
    await unreadOf('Jerry', 'Cartoons', 3);
    const { page } = pages.Jerry;
    await page.reload({ timeout: STEP_TIMEOUT });
    await login('Jerry');
    await unreadOf('Jerry', 'Cartoons', 3);
    await openConv('Jerry', 'Tom');
    for (const text of ['Hello Jerry, how are you?', 'Hi Tom', '@Tom look at this', '@all meeting at noon', 'what a *** day']) {
      await hasMessage('Jerry', text);
    }
    await hasMessage('Jerry', 'Hello Jerry, how are you?', `m.querySelector('.note') && m.querySelector('.note').textContent === 'edited'`);
    await until('Jerry', 'the recalled message in history', () => !!document.querySelector('#messages .msg.recalled'));
    const order = await page.evaluate(() => [...document.querySelectorAll('#messages .bubble')].map((b) => b.textContent));
    assert.deepEqual(order.filter((x) => x !== 'This message was recalled'),
      ['Hello Jerry, how are you?', 'Hi Tom', '@Tom look at this', '@all meeting at noon', 'what a *** day'],
      'history order');
    await openConv('Jerry', 'Cartoons');
    await hasMessage('Jerry', '@Jerry you too', `m.classList.contains('mentioned')`);
    await unreadOf('Jerry', 'Cartoons', 0);
  });

  await step(t, 'logging in as Tom in another window signs the first one out', async () => {
    await openPage('Tom', 'Tom, second window');
    await login('Tom', 'Tom, second window');
    await until('Tom', 'the conflict notice and the login form', () =>
      !document.getElementById('login').hidden && /somewhere else/.test(document.getElementById('status').textContent));
    await pages.Tom.context.close();
    pages.Tom = pages['Tom, second window'];
    delete pages['Tom, second window'];
    await openConv('Tom', 'Jerry');
    await hasMessage('Tom', 'what a *** day');
  });

  await step(t, 'no script errors on either page so far', async () => {
    for (const name of ['Tom', 'Jerry']) {
      const errors = pages[name].log.filter((l) => l.startsWith('page error'));
      assert.deepEqual(errors, [], `${name}'s page threw`);
    }
  });

  // While the app is down, the SDK's router requests fail with an uncaught
  // "Request has been terminated" in the page: that is the SDK retrying,
  // not our page, so errors are not checked after this point.
  await step(t, 'the app shuts down cleanly on SIGTERM with both pages connected', async () => {
    app.child.kill('SIGTERM');
    const res = await Promise.race([app.wait(), new Promise((r) => setTimeout(() => r(null), 15000))]);
    assert.ok(res, 'the app did not exit within 15 s of SIGTERM\n' + app.log());
    assert.deepEqual(res, { code: 0, signal: null }, 'exit status after SIGTERM\n' + app.log());
    for (const name of ['Tom', 'Jerry']) {
      await until(name, 'the disconnected notice', () => /reconnecting/.test(document.getElementById('status').textContent));
    }
  });

  await step(t, 'after a restart on the same port both pages reconnect and chat on', async () => {
    const { host } = new URL(app.url);
    app = await startApp(host);
    for (const name of ['Tom', 'Jerry']) {
      // the SDK retries with a growing back-off
      await until(name, 'the reconnection', () => document.getElementById('status').hidden, undefined, 60000);
    }
    await openConv('Jerry', 'Tom');
    await send('Tom', 'we are back');
    await hasMessage('Jerry', 'we are back');
    await send('Jerry', 'welcome back');
    await hasMessage('Tom', 'welcome back');
    await shot('Jerry', 'chat-jerry-after-restart.png');
  });

  await step(t, 'a long chat shows its newest page first and loads older messages on demand', async () => {
    const { page } = pages.Tom;
    await page.fill('#new-members', 'Spike');
    await page.click('#new-chat-button');
    await until('Tom', 'the chat with Spike open', () => document.getElementById('conv-title').textContent === 'Spike');
    for (let i = 1; i <= 55; i++) await send('Tom', `note ${i}`);
    await hasMessage('Tom', 'note 55', `!!m.querySelector('.ticks') && m.querySelector('.ticks').dataset.receipt === 'sent'`);
    await page.reload({ timeout: STEP_TIMEOUT });
    await login('Tom');
    await openConv('Tom', 'Spike');
    await until('Tom', 'the newest 50 notes and a "Load older" button', () => {
      const texts = [...document.querySelectorAll('#messages .bubble')].map((b) => b.textContent);
      return texts.length === 50 && texts[0] === 'note 6' && texts[49] === 'note 55' && !!document.getElementById('load-older');
    });
    await page.click('#load-older', { timeout: STEP_TIMEOUT });
    await until('Tom', 'all 55 notes in order and no "Load older" button', () => {
      const texts = [...document.querySelectorAll('#messages .bubble')].map((b) => b.textContent);
      return texts.length === 55 && texts.every((x, i) => x === `note ${i + 1}`) && !document.getElementById('load-older');
    });
  });
});
