'use strict';
// Conversation queries built with the SDK's own ConversationQuery methods (so the where, sort
// and flag are exactly what the SDK sends): equality on name and custom attributes, contains /
// startsWith / matches, dates, members, and/or, sorting by a custom attribute, compact results,
// chat rooms, and a refused query (4310).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const { ids, sendText } = require('../lib/clients');

// Private groups (VisibleToMembers): each query finds the client's own conversations among the
// matching ones, whatever other runs left in a shared PostgreSQL database.
eachBackend('conversation queries (ConversationQuery methods)', {
  binary: 'testserver', args: ['-private-groups'], external: 'needs e2e/testserver -private-groups',
}, ctx => {
  // 5.x exports ConversationQuery with its and/or combinators; 4.3.1 has neither.
  const { ConversationQuery } = ctx.SDK;
  test('ConversationQuery methods find what they say, with custom attributes read back', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const a = await tom.createConversation({ members: [Jerry], name: 'Tom & Jerry (1)', type: 'private', rank: 2 });
    const b = await tom.createConversation({ members: [Jerry, Kate], name: 'party', type: 'public', rank: 10 });
    const c = await tom.createConversation({ members: [Kate], name: 'quiet', type: 'private', rank: 5 });
    c.set('attr.level', 3);
    await c.save();
    await sendText(a, 'first');
    await new Promise(resolve => setTimeout(resolve, 20));
    const between = new Date();
    await new Promise(resolve => setTimeout(resolve, 20));
    await sendText(b, 'second');

    const idsOf = convs => convs.map(conv => conv.id);
    const set = convs => idsOf(convs).sort();
    const q = () => tom.getQuery();

    assert.deepEqual(idsOf(await q().equalTo('name', 'party').find()), [b.id]);
    assert.deepEqual(set(await q().equalTo('attr.type', 'private').find()), [a.id, c.id].sort());
    assert.deepEqual(set(await q().equalTo('type', 'private').find()), [a.id, c.id].sort());
    assert.deepEqual(idsOf(await q().equalTo('attr.level', 3).find()), [c.id]);
    assert.deepEqual(idsOf(await q().contains('name', 'Tom & Jerry (').find()), [a.id]);
    assert.deepEqual(idsOf(await q().startsWith('name', 'qu').find()), [c.id]);
    assert.deepEqual(idsOf(await q().endsWith('name', 'rty').find()), [b.id]);
    assert.deepEqual(idsOf(await q().matches('name', /PARTY/i).find()), [b.id]);
    assert.deepEqual(idsOf(await q().greaterThan('lm', between).find()), [b.id]);
    assert.deepEqual(set(await q().lessThanOrEqualTo('createdAt', new Date()).find()), [a.id, b.id, c.id].sort());
    assert.deepEqual(set(await q().containsMembers([Jerry]).find()), [a.id, b.id].sort());
    assert.deepEqual(idsOf(await q().withMembers([Jerry], true).find()), [a.id]);
    assert.deepEqual(set(await q().containedIn('rank', [2, 10]).find()), [a.id, b.id].sort());
    assert.deepEqual(idsOf(await q().notEqualTo('type', 'private').find()), [b.id]);
    assert.deepEqual(idsOf(await q().exists('attr.level').find()), [c.id]);
    assert.deepEqual(idsOf(await q().sizeEqualTo('m', 3).find()), [b.id]);
    if (ConversationQuery) {
      assert.deepEqual(
        set(await ConversationQuery.or(q().equalTo('name', 'party'), q().exists('level')).find()),
        [b.id, c.id].sort(),
      );
      assert.deepEqual(
        idsOf(await ConversationQuery.and(q().equalTo('type', 'private'), q().greaterThan('rank', 3)).find()),
        [c.id],
      );
    }
    assert.deepEqual(idsOf(await q().descending('attr.rank').find()), [b.id, c.id, a.id]);
    assert.deepEqual(idsOf(await q().ascending('type').addDescending('rank').find()), [c.id, a.id, b.id]);
    assert.deepEqual(idsOf(await q().ascending('rank').skip(1).limit(1).find()), [c.id]);
    assert.deepEqual(idsOf(await q().find()), [b.id, a.id, c.id], 'default order: newest message first');

    const [found] = await q().equalTo('objectId', c.id).find();
    assert.equal(found.get('type'), 'private');
    assert.equal(found.get('rank'), 5);
    assert.equal(found.get('level'), 3);

    const [compact] = await q().equalTo('objectId', b.id).compact(true).withLastMessagesRefreshed(true).find();
    assert.deepEqual(compact.members, []);
    assert.equal(compact.lastMessage.text, 'second');
  });

  test('chat rooms are found by anyone; a bad query is refused with 4310', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const room = await tom.createChatRoom({ name: 'lobby', tag: Tom });
    const rooms = await jerry.getChatRoomQuery().equalTo('tag', Tom).find();
    assert.deepEqual(rooms.map(r => r.id), [room.id]);
    assert.equal(rooms[0].transient, true);

    await assert.rejects(jerry.getQuery().matches('name', '(').find(), err => err.code === 4310);
    await assert.rejects(jerry.getQuery().ascending('m').find(), err => err.code === 4310);
    if (ConversationQuery) {
      const deep = [...Array(20)].reduce(inner => ConversationQuery.and(inner, jerry.getQuery().equalTo('name', 'x')),
        jerry.getQuery().equalTo('name', 'x'));
      await assert.rejects(deep.find(), err => err.code === 4310 && /deeper than 8/.test(err.detail || err.message));
    }
  });
});
