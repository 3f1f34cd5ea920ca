'use strict';
// Muting members ("shutup"; spec A.2): conversation.muteMembers(ids) by the Owner or a Manager
// (conv add_shutup) tells the target MUTED (shutuped) and the other members MEMBERS_MUTED; the
// muted member's send() is refused with 4563 (SILIENCED) while it still receives;
// queryMutedMembers() lists it; unmuteMembers (UNMUTED / MEMBERS_UNMUTED) lets it send again.
//
// How the SDK reports refusals: muteMembers resolves with a PartiallySuccess
// {successfulClientIds, failures: [Error{code, clientIds}]} built from the reply's
// allowedPids/failedPids, and rejects only when the server refuses the whole command. The hub
// refuses the whole command (4320) when the caller may not moderate at all (a Member), and
// refuses per target (failures[i].code 4320) when a moderator may not act on that target
// (a Manager and the Owner).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, expectNoEvent, sendText, rejection, withTimeout, WAIT_MS,
} = require('../lib/clients');

eachBackend('mute members', { binary: 'testserver', external: 'needs e2e/testserver' }, ctx => {
  const { ConversationMemberRole } = ctx.SDK;

  test('the owner mutes a member: events, 4563 on send, still receives, listed, then unmuted', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'mute' });
    const jerryGroup = await jerry.getConversation(group.id);
    await kate.getConversation(group.id);

    const mutedAtJerry = waitFor(jerry, Event.MUTED, p => p.mutedBy === Tom);
    const mutedAtJerryConv = waitFor(jerryGroup, Event.MUTED, p => p.mutedBy === Tom);
    const membersMutedAtKate = waitFor(kate, Event.MEMBERS_MUTED, p => p.members.includes(Jerry));
    const membersMutedAtTom = waitFor(tom, Event.MEMBERS_MUTED, p => p.members.includes(Jerry));
    const res = await withTimeout(group.muteMembers([Jerry]), WAIT_MS, 'muteMembers');
    assert.deepEqual(res.successfulClientIds, [Jerry]);
    assert.deepEqual(res.failures, []);
    const [, conv] = await mutedAtJerry;
    assert.equal(conv.id, group.id);
    await mutedAtJerryConv;
    const [atKate] = await membersMutedAtKate;
    assert.deepEqual(atKate.members, [Jerry]);
    assert.equal(atKate.mutedBy, Tom);
    assert.equal((await membersMutedAtTom)[0].mutedBy, Tom);

    const listed = await withTimeout(group.queryMutedMembers(), WAIT_MS, 'queryMutedMembers');
    assert.deepEqual(listed.results, [Jerry]);
    assert.ok(!listed.next, `no next page (next ${JSON.stringify(listed.next)})`);

    const neverAtKate = expectNoEvent(kate, Event.MESSAGE, m => m.text === 'can anyone hear me', 1500);
    const err = await rejection(sendText(jerryGroup, 'can anyone hear me'), 'a muted member\'s send');
    assert.equal(err.code, 4563, `error code (message: ${err.message})`);
    await neverAtKate;

    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'you still hear us');
    const sent = await sendText(group, 'you still hear us');
    assert.equal((await atJerry)[0].id, sent.id, 'a muted member still receives');

    const unmutedAtJerry = waitFor(jerry, Event.UNMUTED, p => p.unmutedBy === Tom);
    const unmutedAtKate = waitFor(kate, Event.MEMBERS_UNMUTED, p => p.members.includes(Jerry) && p.unmutedBy === Tom);
    const un = await withTimeout(group.unmuteMembers([Jerry]), WAIT_MS, 'unmuteMembers');
    assert.deepEqual(un.successfulClientIds, [Jerry]);
    assert.deepEqual(un.failures, []);
    await unmutedAtJerry;
    await unmutedAtKate;
    assert.deepEqual((await group.queryMutedMembers()).results, []);

    const atKate2 = waitFor(kate, Event.MESSAGE, m => m.text === 'free again');
    const free = await sendText(jerryGroup, 'free again');
    assert.equal((await atKate2)[0].id, free.id);
  });

  test('a Member muting is refused with 4320; a Manager cannot mute the Owner (a partial failure)', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'mute refused' });
    const jerryGroup = await jerry.getConversation(group.id);
    const kateGroup = await kate.getConversation(group.id);

    // A Member: the whole command is refused, so the promise rejects.
    const err = await rejection(jerryGroup.muteMembers([Kate]), 'a Member\'s muteMembers');
    assert.equal(err.code, 4320, `error code (message: ${err.message})`);
    assert.deepEqual((await group.queryMutedMembers()).results, [], 'nobody was muted');
    await sendText(kateGroup, 'Kate can still talk');

    // A Manager may mute a Member but not the Owner: the promise resolves with the failure.
    await withTimeout(group.updateMemberRole(Jerry, ConversationMemberRole.MANAGER), WAIT_MS, 'updateMemberRole');
    const res = await withTimeout(jerryGroup.muteMembers([Kate, Tom]), WAIT_MS, 'a Manager\'s muteMembers');
    assert.deepEqual(res.successfulClientIds, [Kate]);
    assert.equal(res.failures.length, 1, `failures ${JSON.stringify(res.failures)}`);
    assert.equal(res.failures[0].code, 4320, `failure code (message: ${res.failures[0].message})`);
    assert.deepEqual(res.failures[0].clientIds, [Tom]);
    assert.deepEqual((await group.queryMutedMembers()).results, [Kate]);
    const kateErr = await rejection(sendText(kateGroup, 'muted by a manager'), 'Kate\'s send');
    assert.equal(kateErr.code, 4563, `error code (message: ${kateErr.message})`);
    await sendText(group, 'the Owner still talks');
  });
});
