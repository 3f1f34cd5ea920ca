'use strict';
// Transient messages (seed: "Transient Messages"): send(msg, {transient: true}) is acked,
// reaches online members only, is never stored, and never counts as unread.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, sendText, eventsOf, expectNoEvent, withTimeout, WAIT_MS,
} = require('../lib/clients');

eachBackend('transient messages', { cluster: true }, ctx => {
  const { TextMessage } = ctx.SDK;

  test('an online member receives a transient message; the send resolves', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'typing' });
    const received = waitFor(jerry, Event.MESSAGE, m => m.text === 'Tom is typing…');
    const sent = await withTimeout(conversation.send(new TextMessage('Tom is typing…'), { transient: true }), WAIT_MS, 'transient send');
    assert.ok(sent instanceof TextMessage, 'send resolves with the message');
    const [m, c] = await received;
    assert.equal(m.from, Tom);
    assert.equal(c.id, conversation.id);
  });

  test('an offline member never gets it: not pushed on login, not in history, not unread', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const kate = await ctx.login(Kate);
    const conversation = await tom.createConversation({ members: [Jerry, Kate], name: 'typing, offline' });
    const kateGot = waitFor(kate, Event.MESSAGE, m => m.text === 'Tom is typing…');
    const stored = await sendText(conversation, 'a real message');
    await withTimeout(conversation.send(new TextMessage('Tom is typing…'), { transient: true }), WAIT_MS, 'transient send');
    await kateGot; // proves the transient message was fanned out before Jerry logs in

    const jerry = await ctx.login(Jerry);
    const events = eventsOf(jerry);
    const [convs] = await events.wait(Event.UNREAD_MESSAGES_COUNT_UPDATE, cs => cs.some(c => c.id === conversation.id));
    const c = convs.find(x => x.id === conversation.id);
    assert.equal(c.unreadMessagesCount, 1, 'only the stored message counts as unread');
    assert.equal(c.lastMessage && c.lastMessage.id, stored.id, 'the last message is the stored one');
    await expectNoEvent(jerry, Event.MESSAGE, m => m.text === 'Tom is typing…', 1500);
    assert.equal(events.all(Event.MESSAGE).filter(([m]) => m.text === 'Tom is typing…').length, 0);

    const history = await c.queryMessages({ limit: 10 });
    assert.deepEqual(history.map(m => m.text), ['a real message']);
    const kateHistory = await (await kate.getConversation(conversation.id)).queryMessages({ limit: 10 });
    assert.deepEqual(kateHistory.map(m => m.text), ['a real message'], 'transient messages are never stored');
  });
});
