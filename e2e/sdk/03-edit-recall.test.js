'use strict';
// Edit and recall (seed: "Modify a Message", "Recall a Message"): conversation.update and
// conversation.recall, the MESSAGE_UPDATE / MESSAGE_RECALL events, history after a patch,
// refusal of other people's messages, and patches replayed to a client that was offline.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, sendText, expectNoEvent, withTimeout, WAIT_MS,
} = require('../lib/clients');

async function pair(ctx, name) {
  const { Tom, Jerry } = ids('Tom', 'Jerry');
  const tom = await ctx.login(Tom);
  const jerry = await ctx.login(Jerry);
  const tomConv = await tom.createConversation({ members: [Jerry], name });
  const received = waitFor(jerry, Event.MESSAGE);
  const original = await sendText(tomConv, 'The old message.');
  const [, jerryConv] = await received;
  return { Tom, Jerry, tom, jerry, tomConv, jerryConv, original };
}

eachBackend('edit and recall', { cluster: true }, ctx => {
  const { TextMessage, RecalledMessage } = ctx.SDK;

  test('update(old, new): Jerry gets MESSAGE_UPDATE with the new content; history has it', T, async () => {
    const { Tom, tomConv, jerryConv, original } = await pair(ctx, 'edit');
    const updated = waitFor(jerryConv, Event.MESSAGE_UPDATE);
    const result = await withTimeout(tomConv.update(original, new TextMessage('The new message.')), WAIT_MS, 'update');
    assert.equal(result.id, original.id, 'update resolves with the message under the same id');
    assert.equal(result.text, 'The new message.');

    const [message, reason] = await updated;
    assert.ok(message instanceof TextMessage);
    assert.equal(message.id, original.id);
    assert.equal(message.text, 'The new message.');
    assert.equal(message.from, Tom);
    assert.equal(message.timestamp.getTime(), original.timestamp.getTime(), 'the message keeps its send time');
    assert.ok(message.updatedAt instanceof Date && message.updatedAt.getTime() > 0, 'updatedAt is set from the patch time');
    assert.equal(reason, undefined, 'an edit by the sender carries no reason');

    const history = await jerryConv.queryMessages({ limit: 10 });
    assert.equal(history.length, 1);
    assert.equal(history[0].id, original.id);
    assert.equal(history[0].text, 'The new message.');
    assert.ok(history[0].updatedAt instanceof Date, 'history carries the patch time');
  });

  test('recall(msg): resolves with a RecalledMessage; Jerry gets MESSAGE_RECALL; history shows it recalled', T, async () => {
    const { tomConv, jerryConv, original } = await pair(ctx, 'recall');
    const recalled = waitFor(jerryConv, Event.MESSAGE_RECALL);
    const result = await withTimeout(tomConv.recall(original), WAIT_MS, 'recall');
    assert.ok(result instanceof RecalledMessage, `recall resolves with a RecalledMessage, got ${result && result.constructor.name}`);
    assert.equal(result.id, original.id);

    const [message, reason] = await recalled;
    assert.ok(message instanceof RecalledMessage, `MESSAGE_RECALL carries a RecalledMessage, got ${message && message.constructor.name}`);
    assert.equal(message.type, -127);
    assert.equal(message.id, original.id);
    assert.equal(reason, undefined);

    const history = await jerryConv.queryMessages({ limit: 10 });
    assert.equal(history.length, 1);
    assert.ok(history[0] instanceof RecalledMessage, 'history returns the recalled message as RecalledMessage');
    assert.equal(history[0].id, original.id);
    assert.equal(history[0].type, -127);
  });

  test('only the sender may edit or recall: the SDK refuses, and so does the server', T, async () => {
    const { tomConv, jerryConv, original } = await pair(ctx, 'not yours');
    const [jerrysCopy] = await jerryConv.queryMessages({ limit: 1 });
    await assert.rejects(jerryConv.update(jerrysCopy, new TextMessage('hijacked')), /not allowed/);
    await assert.rejects(jerryConv.recall(jerrysCopy), /not allowed/);

    // The SDK skips its own sender check when given a plain {id, timestamp} instead of a
    // Message: that is the raw attempt the server must refuse.
    const raw = { id: original.id, timestamp: original.timestamp, cid: original.cid };
    const noUpdate = expectNoEvent(tomConv, Event.MESSAGE_UPDATE, () => true, 1500);
    const noRecall = expectNoEvent(tomConv, Event.MESSAGE_RECALL, () => true, 1500);
    // A refusal from the server carries its error code; an SDK-side failure would not.
    await assert.rejects(withTimeout(jerryConv.update(raw, new TextMessage('hijacked')), WAIT_MS, 'raw update'),
      err => !/timed out/.test(err.message) && typeof err.code === 'number',
      'server refuses an edit of another client\'s message');
    await assert.rejects(withTimeout(jerryConv.recall(raw), WAIT_MS, 'raw recall'),
      err => !/timed out/.test(err.message) && typeof err.code === 'number',
      'server refuses a recall of another client\'s message');
    await noUpdate;
    await noRecall;
    const history = await tomConv.queryMessages({ limit: 10 });
    assert.equal(history.length, 1);
    assert.ok(history[0] instanceof TextMessage);
    assert.equal(history[0].text, 'The old message.');
  });

  test('a client offline during an edit and a recall gets both when it comes back', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const jerry = await ctx.login(Jerry);
    // Tom runs in a child process so that pausing Jerry's connection leaves Tom online.
    const tom = ctx.child();
    await tom.login(Tom);
    const conv = await tom.call('createConversation', { members: [Jerry], name: 'offline patch' });
    const gotBoth = waitFor(jerry, Event.MESSAGE, m => m.text === 'second');
    const first = await tom.call('send', { cid: conv.id, text: 'first' });
    const second = await tom.call('send', { cid: conv.id, text: 'second' });
    const [, jerryConv] = await gotBoth;

    const offline = waitFor(jerry, Event.DISCONNECT);
    ctx.realtime.pause();
    await offline;
    await tom.call('update', { cid: conv.id, mid: first.id, text: 'first, edited' });
    await tom.call('recall', { cid: conv.id, mid: second.id });

    const updated = waitFor(jerryConv, Event.MESSAGE_UPDATE, m => m.id === first.id);
    const recalled = waitFor(jerryConv, Event.MESSAGE_RECALL, m => m.id === second.id);
    ctx.realtime.resume();
    const [u] = await updated;
    assert.equal(u.text, 'first, edited');
    const [r] = await recalled;
    assert.ok(r instanceof RecalledMessage);

    const history = await jerryConv.queryMessages({ limit: 10 });
    assert.deepEqual(history.map(m => m.id), [first.id, second.id]);
    assert.equal(history[0].text, 'first, edited');
    assert.ok(history[1] instanceof RecalledMessage);
  });
});
