'use strict';
// Unread sync (seed: "Notifications on Updates of Unread Message Count"): the login sync of
// <conversation, unread count, last message>, growth while online until read(), and read() on
// one device clearing the count on the user's other device.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, sendText, eventsOf, expectNoEvent, tapCommands, withTimeout, WAIT_MS,
} = require('../lib/clients');

eachBackend('unread sync', { cluster: true }, ctx => {
  test('messages sent while offline: UNREAD_MESSAGES_COUNT_UPDATE on login with count and lastMessage', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'unread' });
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await sendText(conversation, text));

    const jerry = await ctx.login(Jerry);
    const [convs] = await eventsOf(jerry).wait(Event.UNREAD_MESSAGES_COUNT_UPDATE,
      cs => cs.some(c => c.id === conversation.id));
    const c = convs.find(x => x.id === conversation.id);
    assert.equal(c.unreadMessagesCount, 3);
    assert.ok(c.lastMessage, 'lastMessage is set');
    assert.equal(c.lastMessage.id, sent[2].id);
    assert.equal(c.lastMessage.text, 'three');
    assert.equal(c.lastMessage.from, Tom);
    assert.equal(c.lastMessage.timestamp.getTime(), sent[2].timestamp.getTime());
    assert.equal(c.lastMessageAt.getTime(), sent[2].timestamp.getTime());
    assert.equal(c.name, 'unread');

    // The seed: fetch the messages that came in, with the last message as the cursor.
    const unreadMessages = await c.queryMessages({ limit: c.unreadMessagesCount });
    assert.deepEqual(unreadMessages.map(m => m.id), sent.map(m => m.id));
  });

  test('the count grows while online and read() clears it on the server', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'grows' });
    await sendText(conversation, 'offline 1');
    await sendText(conversation, 'offline 2');

    let jerry = await ctx.login(Jerry);
    const [convs] = await eventsOf(jerry).wait(Event.UNREAD_MESSAGES_COUNT_UPDATE,
      cs => cs.some(c => c.id === conversation.id && c.unreadMessagesCount === 2));
    const jc = convs.find(c => c.id === conversation.id);

    const grew = waitFor(jerry, Event.UNREAD_MESSAGES_COUNT_UPDATE,
      cs => cs.some(c => c.id === conversation.id && c.unreadMessagesCount === 3));
    await sendText(conversation, 'online 3');
    await grew;
    assert.equal(jc.unreadMessagesCount, 3);

    const cleared = waitFor(jerry, Event.UNREAD_MESSAGES_COUNT_UPDATE,
      cs => cs.some(c => c.id === conversation.id && c.unreadMessagesCount === 0));
    await jc.read();
    await cleared;
    assert.equal(jc.unreadMessagesCount, 0);

    // The server forgot the read messages: after one more, a new login counts only that one.
    await withTimeout(jerry.close(), WAIT_MS, 'close');
    ctx.clients.splice(ctx.clients.indexOf(jerry), 1);
    const last = await sendText(conversation, 'after read');
    jerry = await ctx.login(Jerry);
    const [convs2] = await eventsOf(jerry).wait(Event.UNREAD_MESSAGES_COUNT_UPDATE,
      cs => cs.some(c => c.id === conversation.id));
    const again = convs2.find(c => c.id === conversation.id);
    assert.equal(again.unreadMessagesCount, 1, 'read() reset the server-side count');
    assert.equal(again.lastMessage.id, last.id);
  });

  test('read() on one device clears the count on the other device', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry, { tag: 'Web' });
    const mobile = ctx.child();
    await mobile.login(Jerry, { tag: 'Mobile' });
    const conversation = await tom.createConversation({ members: [Jerry], name: 'two devices' });

    const webGot = waitFor(jerry, Event.MESSAGE, m => m.text === 'second');
    await sendText(conversation, 'first');
    await sendText(conversation, 'second');
    const [, webConv] = await webGot;
    await mobile.events.wait('message', m => m.text === 'second');
    await mobile.events.wait('unread', cs => cs.some(c => c.id === conversation.id && c.unreadMessagesCount === 2));

    await webConv.read();
    const [cs] = await mobile.events.wait('unread',
      list => list.some(c => c.id === conversation.id && c.unreadMessagesCount === 0));
    assert.equal(cs.find(c => c.id === conversation.id).unreadMessagesCount, 0);
  });
});

// SDK 4.x only: Realtime({pushOfflineMessages: true}) speaks lc.protobuf2.1, on which the server
// syncs by pushing the missed messages themselves instead of unread notifications (5.x dropped
// the option). Seed: "Notifications on Updates of Unread Message Count" is the default mode;
// this is the other one.
eachBackend('offline messages pushed on login (pushOfflineMessages)', {
  sdks: ['sdk4'], realtime: { extra: { pushOfflineMessages: true } },
}, ctx => {
  test('messages sent while offline arrive as MESSAGE events after login, oldest first, once each, with no unread notification', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'pushed offline' });
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await sendText(conversation, text));

    // Jerry's session opens on Tom's socket (one Realtime, one socket): tapping it now sees
    // everything the server sends Jerry. The SDK itself raises UNREAD_MESSAGES_COUNT_UPDATE
    // for each message it receives, so only the wire tells whether the server sent unread.
    const wire = tapCommands(tom);
    const jerry = await ctx.login(Jerry);
    const events = eventsOf(jerry);
    const [last, conv] = await events.wait(Event.MESSAGE, m => m.id === sent[2].id);
    assert.equal(conv.id, conversation.id);
    assert.equal(last.from, Tom);
    // Nothing more arrives for this conversation: no duplicate, no unread notification.
    await expectNoEvent(jerry, Event.MESSAGE, m => m.cid === conversation.id, 1500);
    const pushed = events.all(Event.MESSAGE).map(([m]) => m).filter(m => m.cid === conversation.id);
    assert.deepEqual(pushed.map(m => m.id), sent.map(m => m.id), 'each missed message once, oldest first');
    assert.deepEqual(pushed.map(m => m.text), ['one', 'two', 'three']);
    assert.deepEqual(pushed.map(m => m.timestamp.getTime()), sent.map(m => m.timestamp.getTime()));
    wire.stop();
    const directs = wire.commands.filter(c => c.directMessage && c.directMessage.cid === conversation.id);
    assert.deepEqual(directs.map(c => c.directMessage.id), sent.map(m => m.id), 'the server pushed each missed message once');
    const unread = wire.commands.filter(c => c.unreadMessage)
      .flatMap(c => c.unreadMessage.convs || []).filter(t => t.cid === conversation.id);
    assert.deepEqual(unread, [], 'push-style sync sends the messages, not unread notifications');

    // Online messages keep coming as usual.
    const live = waitFor(jerry, Event.MESSAGE, m => m.text === 'online');
    const online = await sendText(conversation, 'online');
    assert.equal((await live)[0].id, online.id);
  });
});
