'use strict';
// A conversation's blacklist (spec A.3): conversation.blockMembers(ids) by the Owner or a
// Manager (cmd blacklist op block) removes the members among them: the target gets BLOCKED and
// KICKED, the others MEMBERS_BLOCKED and MEMBERS_LEFT (the SDK's blocked handlers do not drop
// members from its copy; the left pushes do). queryBlockedMembers() lists them; a blocked
// client's join() fails with 4548 (BLOCKED_BY_CONV, through the reply's failedPids: join() is
// add([self]) and throws failures[0]), add() reports it as a failure; after unblockMembers it
// can join again.
//
// With e2e/testserver -master-key KEY -require blacklist the hub requires blacklist signatures
// (4546 without a valid one). blacklistSignatureFactory gets (conversationId, clientId,
// sortedTargetIds, action) in 5.x but (clientId, conversationId, ...) in 4.3.1 (fixed in
// 5.0.0-rc.5); action is conversation-block-clients or conversation-unblock-clients; the signed
// string is appid:clientid:convid:sorted_member_ids:timestamp:nonce:action.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, expectNoEvent, sendText, rejection, withTimeout, WAIT_MS,
} = require('../lib/clients');
const { sign, spoil } = require('../lib/testserver');

const sorted = a => [...a].sort();

eachBackend('blacklist', { binary: 'testserver', external: 'needs e2e/testserver' }, ctx => {
  const { ConversationMemberRole } = ctx.SDK;

  test('the owner blocks a member: events, listed, no rejoin (4548), no re-add; unblocked it joins again', T, async () => {
    const { Tom, Jerry, Kate, William } = ids('Tom', 'Jerry', 'Kate', 'William');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'blacklist' });
    const jerryGroup = await jerry.getConversation(group.id);
    const kateGroup = await kate.getConversation(group.id);

    const blockedAtJerry = waitFor(jerry, Event.BLOCKED, p => p.blockedBy === Tom);
    const kickedAtJerry = waitFor(jerry, Event.KICKED, p => p.kickedBy === Tom);
    const blockedAtKate = waitFor(kate, Event.MEMBERS_BLOCKED, p => p.members.includes(Jerry));
    const leftAtKate = waitFor(kate, Event.MEMBERS_LEFT, p => p.members.includes(Jerry));
    const blockedAtTom = waitFor(tom, Event.MEMBERS_BLOCKED, p => p.members.includes(Jerry));
    const leftAtTom = waitFor(tom, Event.MEMBERS_LEFT, p => p.members.includes(Jerry));
    const res = await withTimeout(group.blockMembers([Jerry]), WAIT_MS, 'blockMembers');
    assert.deepEqual(res.successfulClientIds, [Jerry]);
    assert.deepEqual(res.failures, []);
    const [, jerryConv] = await blockedAtJerry;
    assert.equal(jerryConv.id, group.id);
    await kickedAtJerry;
    const [kateSaw] = await blockedAtKate;
    assert.deepEqual(kateSaw.members, [Jerry]);
    assert.equal(kateSaw.blockedBy, Tom);
    assert.equal((await leftAtKate)[0].kickedBy, Tom);
    await blockedAtTom;
    await leftAtTom;
    assert.deepEqual(sorted(group.members), sorted([Tom, Kate]), 'the owner\'s copy lost Jerry');
    assert.deepEqual(sorted(kateGroup.members), sorted([Tom, Kate]), 'Kate\'s copy lost Jerry');
    const fromServer = await tom.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(sorted(fromServer[0].members), sorted([Tom, Kate]), 'the server removed Jerry');

    const neverAtJerry = expectNoEvent(jerry, Event.MESSAGE, m => m.text === 'after the block', 1500);
    const atKate = waitFor(kate, Event.MESSAGE, m => m.text === 'after the block');
    await sendText(group, 'after the block');
    await atKate;
    await neverAtJerry;

    const listed = await withTimeout(group.queryBlockedMembers(), WAIT_MS, 'queryBlockedMembers');
    assert.deepEqual(listed.results, [Jerry]);
    assert.ok(!listed.next, `no next page (next ${JSON.stringify(listed.next)})`);

    const joinErr = await rejection(jerryGroup.join(), 'a blocked client\'s join');
    assert.equal(joinErr.code, 4548, `error code (message: ${joinErr.message})`);
    assert.deepEqual(joinErr.clientIds, [Jerry], 'join() throws the failure of the partial answer');

    const readd = await withTimeout(group.add([Jerry, William]), WAIT_MS, 'add of a blocked client');
    assert.deepEqual(readd.successfulClientIds, [William], 'the others are added');
    assert.equal(readd.failures.length, 1, `failures ${JSON.stringify(readd.failures)}`);
    assert.equal(readd.failures[0].code, 4548, `failure code (message: ${readd.failures[0].message})`);
    assert.deepEqual(readd.failures[0].clientIds, [Jerry]);
    const afterAdd = await tom.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(sorted(afterAdd[0].members), sorted([Tom, Kate, William]));

    const unblockedAtJerry = waitFor(jerry, Event.UNBLOCKED, p => p.unblockedBy === Tom);
    const unblockedAtKate = waitFor(kate, Event.MEMBERS_UNBLOCKED, p => p.members.includes(Jerry) && p.unblockedBy === Tom);
    const un = await withTimeout(group.unblockMembers([Jerry]), WAIT_MS, 'unblockMembers');
    assert.deepEqual(un.successfulClientIds, [Jerry]);
    assert.deepEqual(un.failures, []);
    await unblockedAtJerry;
    await unblockedAtKate;
    assert.deepEqual((await group.queryBlockedMembers()).results, []);

    await withTimeout(jerryGroup.join(), WAIT_MS, 'join after the unblock');
    assert.ok(jerryGroup.members.includes(Jerry));
    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'welcome back');
    await sendText(group, 'welcome back');
    await atJerry;
  });

  test('a Member blocking is refused with 4320; nobody blocks the Owner', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'blacklist refused' });
    const jerryGroup = await jerry.getConversation(group.id);

    const err = await rejection(jerryGroup.blockMembers([Kate]), 'a Member\'s blockMembers');
    assert.equal(err.code, 4320, `error code (message: ${err.message})`);

    await withTimeout(group.updateMemberRole(Jerry, ConversationMemberRole.MANAGER), WAIT_MS, 'updateMemberRole');
    const res = await withTimeout(jerryGroup.blockMembers([Tom]), WAIT_MS, 'a Manager blocking the Owner');
    assert.deepEqual(res.successfulClientIds, []);
    assert.equal(res.failures.length, 1, `failures ${JSON.stringify(res.failures)}`);
    assert.equal(res.failures[0].code, 4320, `failure code (message: ${res.failures[0].message})`);
    assert.deepEqual(res.failures[0].clientIds, [Tom]);
    assert.deepEqual((await group.queryBlockedMembers()).results, []);
    const fromServer = await tom.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(sorted(fromServer[0].members), sorted([Tom, Jerry, Kate]), 'nobody was removed');
  });
});

const MASTER_KEY = `e2e-master-${crypto.randomBytes(6).toString('hex')}`;

/**
 * (convId, clientId) from blacklistSignatureFactory's first two arguments, in the order `sdk`
 * passes them: 5.x (conversationId, clientId, ...), 4.3.1 (clientId, conversationId, ...). An
 * app's signing code for 4.3.1 has to take them in that order, as this one does.
 */
function blacklistArgs(sdk, first, second) {
  return sdk === 'sdk4' ? { clientId: first, convId: second } : { convId: first, clientId: second };
}

/** A blacklistSignatureFactory backed by /sign that records its arguments. */
function blacklistFactory(server, sdk, { order = sdk, tamper = s => s } = {}) {
  const calls = [];
  const factory = async (first, second, targetIds, action) => {
    calls.push([first, second, [...targetIds], action]);
    const { convId, clientId } = blacklistArgs(order, first, second);
    return tamper(await sign(server, { convId, clientId, members: targetIds, action }));
  };
  return { calls, factory };
}

eachBackend('blacklist signatures', {
  binary: 'testserver',
  args: ['-master-key', MASTER_KEY, '-require', 'blacklist'],
  external: 'needs e2e/testserver -master-key -require blacklist',
}, ctx => {
  test('blockMembers and unblockMembers signed by blacklistSignatureFactory', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const signer = blacklistFactory(ctx.server, ctx.sdk);
    const tom = await ctx.login(Tom, { blacklistSignatureFactory: signer.factory });
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'signed blacklist' });
    await jerry.getConversation(group.id);
    await kate.getConversation(group.id);

    const kicked = waitFor(kate, Event.KICKED, p => p.kickedBy === Tom);
    const res = await withTimeout(group.blockMembers([Kate, Jerry]), WAIT_MS, 'signed blockMembers');
    assert.deepEqual(sorted(res.successfulClientIds), sorted([Jerry, Kate]));
    assert.deepEqual(res.failures, []);
    await kicked;
    const expectFirstTwo = ctx.sdk === 'sdk4' ? [Tom, group.id] : [group.id, Tom];
    assert.deepEqual(signer.calls, [[...expectFirstTwo, sorted([Jerry, Kate]), 'conversation-block-clients']],
      `${ctx.sdk} calls blacklistSignatureFactory with its own argument order and the targets sorted`);
    assert.deepEqual(sorted((await group.queryBlockedMembers()).results), sorted([Jerry, Kate]));

    const un = await withTimeout(group.unblockMembers([Jerry]), WAIT_MS, 'signed unblockMembers');
    assert.deepEqual(un.successfulClientIds, [Jerry]);
    assert.deepEqual(signer.calls[1], [...expectFirstTwo, [Jerry], 'conversation-unblock-clients']);
    assert.deepEqual((await group.queryBlockedMembers()).results, [Kate]);
  });

  test('without a signature, with a bad one or with the arguments in the other SDK\'s order: 4546', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const unsigned = await ctx.login(Tom);
    await ctx.login(Jerry);
    const group = await unsigned.createConversation({ members: [Jerry], name: 'unsigned blacklist' });

    const none = await rejection(group.blockMembers([Jerry]), 'blockMembers without a signature');
    assert.equal(none.code, 4546, `error code (message: ${none.message})`);
    await unsigned.close();

    const bad = blacklistFactory(ctx.server, ctx.sdk, { tamper: spoil });
    const tomBad = await ctx.login(Tom, { blacklistSignatureFactory: bad.factory });
    const badGroup = await tomBad.getConversation(group.id);
    const spoiled = await rejection(badGroup.blockMembers([Jerry]), 'blockMembers with a bad signature');
    assert.equal(spoiled.code, 4546, `error code (message: ${spoiled.message})`);
    assert.equal(bad.calls.length, 1, 'the factory was asked');
    await tomBad.close();

    // Signing code written for the other SDK generation swaps conversation and client ids.
    const swapped = blacklistFactory(ctx.server, ctx.sdk, { order: ctx.sdk === 'sdk4' ? 'sdk5' : 'sdk4' });
    const tomSwapped = await ctx.login(Tom, { blacklistSignatureFactory: swapped.factory });
    const swappedGroup = await tomSwapped.getConversation(group.id);
    const wrongOrder = await rejection(swappedGroup.blockMembers([Jerry]), 'blockMembers signed with swapped ids');
    assert.equal(wrongOrder.code, 4546, `error code (message: ${wrongOrder.message})`);

    const fromServer = await tomSwapped.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(sorted(fromServer[0].members), sorted([Tom, Jerry]), 'Jerry is still a member');
    assert.deepEqual((await swappedGroup.queryBlockedMembers()).results, []);
  });
});
