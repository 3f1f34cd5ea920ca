'use strict';
// Receipts (seed: "Receipts"): send(msg, {receipt: true}) in a two-member conversation;
// delivery -> LAST_DELIVERED_AT_UPDATE, read() -> LAST_READ_AT_UPDATE, and
// fetchReceiptTimestamps() restores both in a new session.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, eventsOf, withTimeout, WAIT_MS,
} = require('../lib/clients');

eachBackend('receipts', { cluster: true }, ctx => {
  const { TextMessage, MessageStatus } = ctx.SDK;

  test('delivery and read receipts update lastDeliveredAt and lastReadAt', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    let tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'receipts' });
    const delivered = waitFor(conversation, Event.LAST_DELIVERED_AT_UPDATE);
    const atJerry = waitFor(jerry, Event.MESSAGE);
    const message = new TextMessage('A very important message.');
    const sent = await withTimeout(conversation.send(message, { receipt: true }), WAIT_MS, 'send');
    const [, jerryConv] = await atJerry; // Jerry's SDK acks it on receipt

    await delivered;
    assert.ok(conversation.lastDeliveredAt instanceof Date, 'lastDeliveredAt is set');
    assert.ok(conversation.lastDeliveredAt.getTime() >= sent.timestamp.getTime(),
      'lastDeliveredAt is not before the message');
    assert.equal(sent.status, MessageStatus.DELIVERED, 'the receipt names the message: it is marked delivered');
    assert.ok(sent.deliveredAt, 'deliveredAt is set on the message');

    const read = waitFor(conversation, Event.LAST_READ_AT_UPDATE);
    await jerryConv.read();
    await read;
    assert.ok(conversation.lastReadAt instanceof Date, 'lastReadAt is set');
    assert.ok(conversation.lastReadAt.getTime() >= sent.timestamp.getTime(), 'lastReadAt is not before the message');

    // A new session knows nothing locally: fetchReceiptTimestamps() asks the server.
    await withTimeout(tom.close(), WAIT_MS, 'close');
    ctx.clients.splice(ctx.clients.indexOf(tom), 1);
    tom = await ctx.login(Tom);
    const again = await tom.getConversation(conversation.id);
    await withTimeout(again.fetchReceiptTimestamps(), WAIT_MS, 'fetchReceiptTimestamps');
    assert.ok(again.lastDeliveredAt instanceof Date, 'lastDeliveredAt restored by fetchReceiptTimestamps');
    assert.ok(again.lastReadAt instanceof Date, 'lastReadAt restored by fetchReceiptTimestamps');
    assert.ok(again.lastDeliveredAt.getTime() >= sent.timestamp.getTime());
    assert.ok(again.lastReadAt.getTime() >= sent.timestamp.getTime());
  });

  test('a receiver who was offline reads later: the sender gets the read receipt', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'read later' });
    const sent = await withTimeout(conversation.send(new TextMessage('Hello, Jerry!'), { receipt: true }), WAIT_MS, 'send');
    const beforeRead = conversation.lastReadAt;
    assert.ok(!beforeRead || beforeRead.getTime() < sent.timestamp.getTime(), 'not read before Jerry reads');

    const read = waitFor(conversation, Event.LAST_READ_AT_UPDATE);
    const jerry = await ctx.login(Jerry);
    const [convs] = await eventsOf(jerry).wait(Event.UNREAD_MESSAGES_COUNT_UPDATE, cs => cs.some(c => c.id === conversation.id));
    await convs.find(c => c.id === conversation.id).read();
    await read;
    assert.ok(conversation.lastReadAt.getTime() >= sent.timestamp.getTime());
  });

  test('fetchReceiptTimestamps() before anything was delivered leaves both unset', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const conversation = await tom.createConversation({ members: [Jerry], name: 'nothing yet' });
    await withTimeout(conversation.send(new TextMessage('unseen'), { receipt: true }), WAIT_MS, 'send');
    await withTimeout(conversation.fetchReceiptTimestamps(), WAIT_MS, 'fetchReceiptTimestamps');
    assert.ok(!conversation.lastReadAt, `lastReadAt unset, got ${conversation.lastReadAt}`);
    assert.ok(!conversation.lastDeliveredAt, `lastDeliveredAt unset, got ${conversation.lastDeliveredAt}`);
  });
});
