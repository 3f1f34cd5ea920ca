'use strict';
// Will messages (seed: "Will Messages"): stored on the server, sent when the sender drops
// without logging out, never when it logs out; one per user (the last replaces the earlier);
// never stored in history.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const { Event, ids, waitFor, eventsOf, expectNoEvent } = require('../lib/clients');

const WILL = 'I am a will message. I will be sent out to other members in the conversation when the sender goes offline unexpectedly.';

eachBackend('will messages', { cluster: true }, ctx => {
  test('SIGKILLed sender: the other member receives the will message', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const jerry = await ctx.login(Jerry);
    const tom = ctx.child();
    await tom.login(Tom);
    const conv = await tom.call('createConversation', { members: [Jerry], name: 'will' });
    await tom.call('send', { cid: conv.id, text: 'hello' });
    await eventsOf(jerry).wait(Event.MESSAGE, m => m.text === 'hello');

    await tom.call('send', { cid: conv.id, text: WILL, options: { will: true } });
    // Not delivered while Tom is connected.
    await expectNoEvent(jerry, Event.MESSAGE, m => m.text === WILL, 1000);

    const willArrives = waitFor(jerry, Event.MESSAGE, m => m.text === WILL);
    await tom.kill();
    const [m, c] = await willArrives;
    assert.equal(m.from, Tom);
    assert.equal(c.id, conv.id);

    const history = await c.queryMessages({ limit: 10 });
    assert.deepEqual(history.map(x => x.text), ['hello'], 'will messages are not stored in history');
  });

  test('a sender that logs out (client.close()) leaves no will behind', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const jerry = await ctx.login(Jerry);
    const tom = ctx.child();
    await tom.login(Tom);
    const conv = await tom.call('createConversation', { members: [Jerry], name: 'will, logout' });
    await tom.call('send', { cid: conv.id, text: WILL, options: { will: true } });
    const none = expectNoEvent(jerry, Event.MESSAGE, m => m.text === WILL, 2000);
    await tom.call('close');
    await tom.kill(); // the process ends after the logout: still no will
    await none;
  });

  test('a later will replaces the earlier one, across conversations', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const tom = ctx.child();
    await tom.login(Tom);
    const a = await tom.call('createConversation', { members: [Jerry], name: 'will A' });
    const b = await tom.call('createConversation', { members: [Jerry, Kate], name: 'will B' });
    const c = await tom.call('createConversation', { members: [Kate], name: 'will C' });
    await tom.call('send', { cid: a.id, text: 'will A', options: { will: true } });
    await tom.call('send', { cid: c.id, text: 'will C, first', options: { will: true } });
    await tom.call('send', { cid: b.id, text: 'will B', options: { will: true } });

    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'will B');
    const atKate = waitFor(kate, Event.MESSAGE, m => m.text === 'will B');
    await tom.kill();
    const [mj, cj] = await atJerry;
    assert.equal(cj.id, b.id);
    assert.equal(mj.from, Tom);
    await atKate;
    // Nothing else arrives: the earlier wills were replaced.
    await expectNoEvent(jerry, Event.MESSAGE, m => m.text === 'will A', 1500);
    const stale = [...eventsOf(jerry).all(Event.MESSAGE), ...eventsOf(kate).all(Event.MESSAGE)]
      .map(([m]) => m.text).filter(t => t === 'will A' || t === 'will C, first');
    assert.deepEqual(stale, [], 'only the last will is sent');
  });
});
