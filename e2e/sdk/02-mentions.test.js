'use strict';
// Mentions (seed: "Mentioning People"): setMentionList / mentionAll on send; getMentionList,
// mentionedAll and mentioned on receipt, in history, and in the unread sync after login.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const { Event, ids, waitFor, eventsOf, withTimeout, WAIT_MS } = require('../lib/clients');

eachBackend('mentions', { cluster: true }, ctx => {
  const { TextMessage } = ctx.SDK;

  test('setMentionList([Tom]): Tom is mentioned, Kate is not; both see the list', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const conversation = await jerry.createConversation({ members: [Tom, Kate], name: 'mentions' });

    const atTom = waitFor(tom, Event.MESSAGE, m => m.text === '@Tom Come back early.');
    const atKate = waitFor(kate, Event.MESSAGE, m => m.text === '@Tom Come back early.');
    const message = new TextMessage('@Tom Come back early.').setMentionList([Tom]);
    await withTimeout(conversation.send(message), WAIT_MS, 'send');

    const [toTom] = await atTom;
    assert.deepEqual(toTom.getMentionList(), [Tom]);
    assert.equal(toTom.mentionedAll, false);
    assert.equal(toTom.mentioned, true, 'Tom is mentioned');

    const [toKate] = await atKate;
    assert.deepEqual(toKate.getMentionList(), [Tom]);
    assert.equal(toKate.mentionedAll, false);
    assert.equal(toKate.mentioned, false, 'Kate is not mentioned');
  });

  test('mentionAll(): everyone is mentioned', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const conversation = await jerry.createConversation({ members: [Tom, Kate], name: 'all' });

    const atTom = waitFor(tom, Event.MESSAGE, m => m.text === '@all');
    const atKate = waitFor(kate, Event.MESSAGE, m => m.text === '@all');
    await withTimeout(conversation.send(new TextMessage('@all').mentionAll()), WAIT_MS, 'send');
    for (const [m] of [await atTom, await atKate]) {
      assert.equal(m.mentionedAll, true);
      assert.equal(m.mentioned, true);
    }
  });

  test('history keeps mention lists and mention-all', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const conversation = await jerry.createConversation({ members: [Tom, Kate], name: 'history' });
    await withTimeout(conversation.send(new TextMessage('@Tom Come back early.').setMentionList([Tom])), WAIT_MS, 'send');
    await withTimeout(conversation.send(new TextMessage('@all').mentionAll()), WAIT_MS, 'send');
    await withTimeout(conversation.send(new TextMessage('nobody')), WAIT_MS, 'send');

    const tomHistory = await (await tom.getConversation(conversation.id)).queryMessages({ limit: 10 });
    assert.deepEqual(tomHistory.map(m => m.text), ['@Tom Come back early.', '@all', 'nobody']);
    assert.deepEqual(tomHistory.map(m => m.getMentionList()), [[Tom], [], []]);
    assert.deepEqual(tomHistory.map(m => m.mentionedAll), [false, true, false]);
    assert.deepEqual(tomHistory.map(m => m.mentioned), [true, true, false]);

    const kateHistory = await (await kate.getConversation(conversation.id)).queryMessages({ limit: 10 });
    assert.deepEqual(kateHistory.map(m => m.mentioned), [false, true, false]);
  });

  test('an offline client who was mentioned sees unreadMessagesMentioned on login', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const jerry = await ctx.login(Jerry);
    const mentioning = await jerry.createConversation({ members: [Tom, Kate], name: 'mentions Tom' });
    const plain = await jerry.createConversation({ members: [Tom], name: 'no mention' });
    await withTimeout(mentioning.send(new TextMessage('@Tom Come back early.').setMentionList([Tom])), WAIT_MS, 'send');
    await withTimeout(mentioning.send(new TextMessage('later, no mention')), WAIT_MS, 'send');
    await withTimeout(plain.send(new TextMessage('hi Tom')), WAIT_MS, 'send');

    const tom = await ctx.login(Tom);
    const events = eventsOf(tom);
    const [convs1] = await events.wait(Event.UNREAD_MESSAGES_COUNT_UPDATE, cs => cs.some(c => c.id === mentioning.id));
    const m = convs1.find(c => c.id === mentioning.id);
    assert.equal(m.unreadMessagesCount, 2);
    assert.equal(m.unreadMessagesMentioned, true, 'mentioned flag set for the conversation that mentioned Tom');
    const [convs2] = await events.wait(Event.UNREAD_MESSAGES_COUNT_UPDATE, cs => cs.some(c => c.id === plain.id));
    const p = convs2.find(c => c.id === plain.id);
    assert.equal(p.unreadMessagesCount, 1);
    assert.equal(p.unreadMessagesMentioned, false, 'no mentioned flag where Tom was not mentioned');

    // Mention-all counts as a mention for an offline member too.
    await withTimeout(tom.close(), WAIT_MS, 'close');
    ctx.clients.splice(ctx.clients.indexOf(tom), 1);
    const kateConv = await jerry.createConversation({ members: [Kate], name: 'all for Kate' });
    await withTimeout(kateConv.send(new TextMessage('@all').mentionAll()), WAIT_MS, 'send');
    const kate = await ctx.login(Kate);
    const [convs3] = await eventsOf(kate).wait(Event.UNREAD_MESSAGES_COUNT_UPDATE, cs => cs.some(c => c.id === kateConv.id));
    assert.equal(convs3.find(c => c.id === kateConv.id).unreadMessagesMentioned, true);
  });
});
