'use strict';
// Multi-device sign-on (seed: "Multi Device Sign-on and Single Device Sign-on"): the same
// <clientId, tag> logging in again kicks the earlier device with CONFLICT; different tags, or
// no tag, stay logged in together and all receive messages, including their own user's.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const { Event, ids, waitFor, sendText, eventsOf, expectNoEvent } = require('../lib/clients');

eachBackend('multi-device sign-on', { cluster: true }, ctx => {
  test('same clientId and tag: the earlier device gets CONFLICT with a reason', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom, { tag: 'Mobile' });
    const jerry = await ctx.login(Jerry);
    const conflict = waitFor(tom, Event.CONFLICT);
    const phone = ctx.child();
    await phone.login(Tom, { tag: 'Mobile' });
    const [payload] = await conflict;
    assert.ok(payload && typeof payload.reason === 'string' && payload.reason.length > 0,
      `CONFLICT carries a reason, got ${JSON.stringify(payload)}`);

    // Messages now go to the new device only.
    const conversation = await jerry.createConversation({ members: [Tom], name: 'after conflict' });
    const quiet = expectNoEvent(tom, Event.MESSAGE, () => true, 1500);
    await sendText(conversation, 'who is there?');
    const [m] = await phone.events.wait('message', x => x.text === 'who is there?');
    assert.equal(m.from, Jerry);
    await quiet;
    assert.equal(phone.events.all('conflict').length, 0, 'the new device is not kicked');
  });

  test('an automatic re-login that would conflict is refused; the newer device stays', T, async () => {
    // Seed: on a reconnect "the cloud will not logout earlier devices. The device trying to
    // relogin will receive an error instead."
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom, { tag: 'Mobile' });
    const jerry = await ctx.login(Jerry);
    const offline = waitFor(tom, Event.DISCONNECT);
    ctx.realtime.pause();
    await offline;
    const phone = ctx.child();
    await phone.login(Tom, { tag: 'Mobile' }); // explicit login while the first device is away

    const refused = waitFor(tom, Event.RECONNECT_ERROR);
    ctx.realtime.resume();
    const [error] = await refused;
    assert.equal(error && error.code, 4111, `re-login refused with SESSION_CONFLICT, got ${error && (error.code + ' ' + error.message)}`);
    assert.equal(eventsOf(tom).all(Event.RECONNECT).length, 0, 'the old device did not get back in');
    // With several nodes Jerry's socket may be another node's Realtime, paused and resumed
    // too: let it be back before using it.
    if (eventsOf(jerry).all(Event.DISCONNECT).length > 0) await eventsOf(jerry).wait(Event.RECONNECT);

    const conversation = await jerry.createConversation({ members: [Tom], name: 'after refused re-login' });
    const quiet = expectNoEvent(tom, Event.MESSAGE, () => true, 1500);
    await sendText(conversation, 'still there?');
    await phone.events.wait('message', m => m.text === 'still there?');
    await quiet;
    assert.equal(phone.events.all('conflict').length, 0, 'the newer device was not logged out');
  });

  for (const [title, tags] of [
    ['different tags', ['Web', 'Mobile']],
    ['no tag', [undefined, undefined]],
  ]) {
    test(`${title}: both devices stay logged in and both receive messages`, T, async () => {
      const { Tom, Jerry } = ids('Tom', 'Jerry');
      const tom = await ctx.login(Tom, tags[0] ? { tag: tags[0] } : {});
      const jerry = await ctx.login(Jerry);
      const phone = ctx.child();
      await phone.login(Tom, tags[1] ? { tag: tags[1] } : {});
      const conversation = await jerry.createConversation({ members: [Tom], name: title });
      const atWeb = waitFor(tom, Event.MESSAGE, m => m.text === 'to both');
      const sent = await sendText(conversation, 'to both');
      const [m1] = await atWeb;
      const [m2] = await phone.events.wait('message', m => m.text === 'to both');
      assert.equal(m1.id, sent.id);
      assert.equal(m2.id, sent.id);
      assert.equal(eventsOf(tom).all(Event.CONFLICT).length, 0, 'no conflict on the first device');
      assert.equal(phone.events.all('conflict').length, 0, 'no conflict on the second device');
    });
  }

  test('a message sent from one device appears on the user\'s other device', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom, { tag: 'Web' });
    const jerry = await ctx.login(Jerry);
    const phone = ctx.child();
    await phone.login(Tom, { tag: 'Mobile' });
    const conv = await phone.call('createConversation', { members: [Jerry], name: 'from the phone' });
    const atWeb = waitFor(tom, Event.MESSAGE, m => m.text === 'sent from my phone');
    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'sent from my phone');
    const sent = await phone.call('send', { cid: conv.id, text: 'sent from my phone' });
    const [m, c] = await atWeb;
    assert.equal(m.id, sent.id);
    assert.equal(m.from, Tom, 'the copy on the other device is from Tom himself');
    assert.equal(c.id, conv.id);
    assert.equal((await atJerry)[0].id, sent.id);
    assert.equal(phone.events.all('message').filter(x => x.id === sent.id).length, 0,
      'the sending device does not get its own message back');
  });
});
