'use strict';
// Joining a group by its id (LeanCloud beginner guide, "用户主动加入对话"): William, who is not a
// member, looks the group up with client.getConversation(id) and calls conversation.join();
// he then receives the group's messages and can send to it. A query without conditions
// finds only one's own conversations. With the hub's ConversationVisibility VisibleToMembers
// (e2e/testserver -private-groups) groups are private: the lookup finds nothing, and a join
// (from a conversation the client knows otherwise: client.parseConversation of a serialized
// one, or its own copy after being kicked) is refused with 4308.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, sendText, rejection, withTimeout, WAIT_MS,
} = require('../lib/clients');

const sorted = a => [...a].sort();
const shown = convs => JSON.stringify(convs.map(c => ({ id: c.id, name: c.name, members: c.members })));

eachBackend('join by id', { binary: 'testserver', external: 'needs e2e/testserver' }, ctx => {
  test('a non-member finds the group by id, joins it, then receives and sends', T, async () => {
    const { Tom, Jerry, William } = ids('Tom', 'Jerry', 'William');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const william = await ctx.login(William);
    const group = await tom.createConversation({ members: [Jerry], name: 'open group' });
    await sendText(group, 'before William');

    const found = await withTimeout(william.getConversation(group.id), WAIT_MS, 'getConversation');
    assert.ok(found, 'a non-member finds the group by its id');
    assert.equal(found.id, group.id);
    assert.equal(found.name, 'open group');
    assert.deepEqual(sorted(found.members), sorted([Tom, Jerry]));

    const joinedAtTom = waitFor(tom, Event.MEMBERS_JOINED, p => p.members.includes(William));
    const joinedAtJerry = waitFor(jerry, Event.MEMBERS_JOINED, p => p.members.includes(William));
    const joinedAtWilliam = waitFor(william, Event.MEMBERS_JOINED, p => p.members.includes(William));
    const joined = await withTimeout(found.join(), WAIT_MS, 'join');
    assert.equal(joined, found, 'join() resolves with the conversation');
    assert.deepEqual(sorted(found.members), sorted([Tom, Jerry, William]));
    const [tomSaw, tomConv] = await joinedAtTom;
    assert.deepEqual(tomSaw.members, [William]);
    assert.equal(tomSaw.invitedBy, William, 'a self-join is initiated by the joiner');
    assert.equal(tomConv.id, group.id);
    await joinedAtJerry;
    await joinedAtWilliam;
    assert.deepEqual(sorted(group.members), sorted([Tom, Jerry, William]), 'the creator\'s copy has William');

    const atWilliam = waitFor(william, Event.MESSAGE, m => m.text === 'welcome William');
    const sent = await sendText(group, 'welcome William');
    const [m, c] = await atWilliam;
    assert.equal(m.id, sent.id);
    assert.equal(c.id, group.id);

    const atTom = waitFor(tom, Event.MESSAGE, x => x.text === 'hi, I am William');
    const atJerry = waitFor(jerry, Event.MESSAGE, x => x.text === 'hi, I am William');
    const mine = await sendText(found, 'hi, I am William');
    assert.equal((await atTom)[0].id, mine.id);
    assert.equal((await atJerry)[0].from, William);

    const fromServer = await tom.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(sorted(fromServer[0].members), sorted([Tom, Jerry, William]), 'the server has William as a member');
  });

  test('getQuery() without conditions finds only one\'s own conversations', T, async () => {
    const { Tom, Jerry, Kate, William } = ids('Tom', 'Jerry', 'Kate', 'William');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    await ctx.login(Kate);
    const william = await ctx.login(William);
    const tomAndJerry = await tom.createConversation({ members: [Jerry], name: 'Tom & Jerry' });
    const jerryAndKate = await jerry.createConversation({ members: [Kate], name: 'Jerry & Kate' });

    // The SDK sends conv query {where: {data: '{}'}, flag: 0}: no condition at all.
    const tomOwn = await tom.getQuery().find();
    assert.deepEqual(tomOwn.map(c => c.id), [tomAndJerry.id], `Tom finds his conversation only; got ${shown(tomOwn)}`);
    const jerryOwn = await jerry.getQuery().find();
    assert.deepEqual(sorted(jerryOwn.map(c => c.id)), sorted([tomAndJerry.id, jerryAndKate.id]), shown(jerryOwn));
    const williamOwn = await william.getQuery().find();
    assert.deepEqual(williamOwn, [], `William is in no conversation; got ${shown(williamOwn)}`);

    // A condition replaces the default one: the group is visible by id to a non-member.
    const byId = await tom.getQuery().equalTo('objectId', jerryAndKate.id).find();
    assert.deepEqual(byId.map(c => c.id), [jerryAndKate.id]);
  });
});

eachBackend('join by id, private groups', {
  binary: 'testserver', args: ['-private-groups'], external: 'needs e2e/testserver -private-groups',
}, ctx => {
  test('a non-member\'s lookup finds nothing and its join is refused with 4308', T, async () => {
    const { Tom, Jerry, William } = ids('Tom', 'Jerry', 'William');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const william = await ctx.login(William);
    const group = await tom.createConversation({ members: [Jerry], name: 'private group' });

    assert.equal(await withTimeout(william.getConversation(group.id), WAIT_MS, 'getConversation'), null,
      'getConversation(id) finds nothing for a non-member');
    assert.deepEqual(await william.getQuery().equalTo('objectId', group.id).find(), []);
    const atJerry = await jerry.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(atJerry.map(c => c.id), [group.id], 'members still find it');

    // William knows the group anyway (say, from a serialized copy in an invitation link):
    // the SDK's own parseConversation (the inverse of toFullJSON) gives him a Conversation.
    const known = await william.parseConversation(group.toFullJSON());
    assert.equal(known.id, group.id);
    const err = await rejection(known.join(), 'join of a private group');
    assert.equal(err.code, 4308, `error code (message: ${err.message})`);
    const fromServer = await tom.getQuery().equalTo('objectId', group.id).find();
    assert.deepEqual(sorted(fromServer[0].members), sorted([Tom, Jerry]), 'William was not added');

    // A member may still add him.
    const invited = waitFor(william, Event.INVITED, p => p.invitedBy === Tom);
    const added = await withTimeout(group.add([William]), WAIT_MS, 'add');
    assert.deepEqual(added.successfulClientIds, [William]);
    await invited;
    const nowFound = await william.getConversation(group.id, true);
    assert.ok(nowFound, 'once a member, William finds the group');
  });

  test('a kicked member cannot join again on its own (4308)', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const group = await tom.createConversation({ members: [Jerry], name: 'kick and rejoin' });
    const jerryCopy = await jerry.getConversation(group.id);
    assert.ok(jerryCopy);

    const kicked = waitFor(jerry, Event.KICKED, p => p.kickedBy === Tom);
    await withTimeout(group.remove([Jerry]), WAIT_MS, 'remove');
    await kicked;
    assert.equal(await jerry.getConversation(group.id, true), null, 'no longer visible to Jerry');
    const err = await rejection(jerryCopy.join(), 'rejoin of a private group');
    assert.equal(err.code, 4308, `error code (message: ${err.message})`);
  });
});
