'use strict';
// Keyword filtering (seed: "Keyword Filtering" and "Modify a Message"): the example app runs
// with -keywords <file>; a filtered message reaches the others rewritten, and the sender gets
// MESSAGE_UPDATE with reason {code: -4408, detail}.
// Against the reference stub (E2E_SERVER_URL), start it with STUB_KEYWORDS='badword|笨蛋'.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { eachBackend, T } = require('../lib/suite');
const { Event, ids, waitFor, sendText, expectNoEvent } = require('../lib/clients');

const keywordsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realtime-e2e-keywords-'));
const keywordsFile = path.join(keywordsDir, 'keywords.txt');
fs.writeFileSync(keywordsFile, 'badword\n笨蛋\n');
process.on('exit', () => fs.rmSync(keywordsDir, { recursive: true, force: true }));

eachBackend('keyword filter', { args: ['-keywords', keywordsFile] }, ctx => {
  for (const [sentText, filteredText] of [
    ['you badword', 'you ***'],
    ['你这个笨蛋', '你这个***'],
  ]) {
    test(`"${sentText}" reaches Jerry as "${filteredText}" and Tom gets MESSAGE_UPDATE -4408`, T, async () => {
      const { Tom, Jerry } = ids('Tom', 'Jerry');
      const tom = await ctx.login(Tom);
      const jerry = await ctx.login(Jerry);
      const conversation = await tom.createConversation({ members: [Jerry], name: 'filtered' });
      const atJerry = waitFor(jerry, Event.MESSAGE);
      const patched = waitFor(conversation, Event.MESSAGE_UPDATE);
      const sent = await sendText(conversation, sentText);

      const [m] = await atJerry;
      assert.equal(m.text, filteredText);
      assert.equal(m.id, sent.id);

      const [updated, reason] = await patched;
      assert.equal(updated.id, sent.id);
      assert.equal(updated.text, filteredText);
      assert.ok(reason, 'MESSAGE_UPDATE carries a reason');
      assert.equal(reason.code, -4408);
      assert.equal(typeof reason.detail, 'string');

      const history = await conversation.queryMessages({ limit: 5 });
      assert.deepEqual(history.map(x => x.text), [filteredText], 'history stores the filtered text');
    });
  }

  test('a clean message is delivered as sent and not patched', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'clean' });
    const atJerry = waitFor(jerry, Event.MESSAGE);
    const noPatch = expectNoEvent(conversation, Event.MESSAGE_UPDATE, () => true, 1500);
    await sendText(conversation, 'a good word');
    assert.equal((await atJerry)[0].text, 'a good word');
    await noPatch;
  });
});
