'use strict';
// Hooks (seed: "Hooks and System Conversations", _messageReceived and _conversationStart): the
// test-only app e2e/testserver registers a MessageReceived hook that drops every message
// containing "DROP-ME" (appCode 1001, detail "dropped by the test hook") and a
// ConversationStart hook that refuses conversations named "forbidden" (appCode 2002).
// A dropped send fails with 4402 and the app's code; a refused start with 4305.
// Needs the testserver, so the run against E2E_SERVER_URL is skipped.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, expectNoEvent, sendText, tapCommands, withTimeout, WAIT_MS,
} = require('../lib/clients');

const DROP_APP_CODE = 1001;
const DROP_DETAIL = 'dropped by the test hook';
const FORBIDDEN_APP_CODE = 2002;
const FORBIDDEN_DETAIL = 'conversation name refused by the test hook';

/**
 * Records the acks the server sends to a client. The SDK turns a coded ack into an error with
 * code, reason and appCode only; the hook's detail travels in ack.appMsg, which the SDK does
 * not expose.
 */
function recordAcks(client) {
  const tap = tapCommands(client);
  return {
    get acks() { return tap.commands.filter(c => c.ackMessage).map(c => c.ackMessage); },
    stop: tap.stop,
  };
}

eachBackend('hooks', { binary: 'testserver', external: 'needs e2e/testserver (its hooks), not an external server' }, ctx => {
  const { TextMessage } = ctx.SDK;

  test('a message the MessageReceived hook drops: 4402 + appCode, never delivered, not in history', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'hooked' });
    const first = waitFor(jerry, Event.MESSAGE, m => m.text === 'before the drop');
    await sendText(conversation, 'before the drop');
    await first;

    const neverAtJerry = expectNoEvent(jerry, Event.MESSAGE, m => typeof m.text === 'string' && m.text.includes('DROP-ME'), 2000);
    const wire = recordAcks(tom);
    const dropped = new TextMessage('please DROP-ME');
    const err = await withTimeout(conversation.send(dropped), WAIT_MS, 'the dropped send').then(
      m => assert.fail(`send of a DROP-ME message resolved (id ${m && m.id}); expected a 4402 rejection`),
      e => e,
    );
    wire.stop();
    assert.equal(err.code, 4402, `error code (message: ${err.message})`);
    assert.equal(err.appCode, DROP_APP_CODE, 'appCode from the hook');
    assert.equal(err.message, 'MESSAGE_REJECTED_BY_APP', 'the SDK uses the ack reason as the message');
    assert.equal(dropped.status, ctx.SDK.MessageStatus.FAILED, 'the SDK marks the message failed');
    // The SDK reads code, reason and appCode from a coded ack and drops the rest; the detail is
    // on the wire as ack.appMsg.
    const ack = wire.acks.find(a => a.code === 4402);
    assert.ok(ack, `the server answered with a 4402 ack (acks seen: ${JSON.stringify(wire.acks)})`);
    assert.equal(ack.appCode, DROP_APP_CODE);
    assert.equal(ack.appMsg, DROP_DETAIL, 'the hook detail travels as ack.appMsg');
    await neverAtJerry;

    // A normal message afterwards still goes through.
    const after = waitFor(jerry, Event.MESSAGE, m => m.text === 'after the drop');
    const sent = await sendText(conversation, 'after the drop');
    assert.ok(sent.id);
    const [m] = await after;
    assert.equal(m.id, sent.id);

    const tomHistory = await conversation.queryMessages({ limit: 10 });
    assert.deepEqual(tomHistory.map(x => x.text), ['before the drop', 'after the drop'],
      'the dropped message is not stored');
    const jerryConversation = await jerry.getConversation(conversation.id);
    const jerryHistory = await jerryConversation.queryMessages({ limit: 10 });
    assert.deepEqual(jerryHistory.map(x => x.text), ['before the drop', 'after the drop']);
    assert.equal(conversation.lastMessage && conversation.lastMessage.text, 'after the drop');
  });

  test('a conversation the ConversationStart hook refuses: 4305 + appCode 2002, not created', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const noInvite = expectNoEvent(jerry, Event.INVITED, () => true, 1500);
    const err = await withTimeout(tom.createConversation({ name: 'forbidden', members: [Jerry] }), WAIT_MS, 'forbidden create')
      .then(c => assert.fail(`createConversation "forbidden" resolved (${c && c.id}); expected 4305`), e => e);
    assert.equal(err.code, 4305, `error code (message: ${err.message})`);
    assert.equal(err.appCode, FORBIDDEN_APP_CODE, 'appCode from the hook');
    assert.equal(err.detail, FORBIDDEN_DETAIL, 'the SDK exposes the detail of an error command');
    await noInvite;

    const found = await jerry.getQuery().containsMembers([Tom, Jerry]).find();
    assert.deepEqual(found.map(c => c.name), [], 'nothing was created');

    // Any other name is fine.
    const allowed = await tom.createConversation({ name: 'allowed', members: [Jerry] });
    assert.ok(allowed.id);
    assert.equal(allowed.name, 'allowed');
  });
});
