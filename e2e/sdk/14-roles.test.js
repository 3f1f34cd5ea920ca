'use strict';
// Member roles (LeanCloud senior guide, "权限管理与黑名单"; spec A.1): the creator is the Owner;
// conversation.updateMemberRole(id, ConversationMemberRole.MANAGER) by the Owner appoints a
// Manager (conv member_info_update); every member gets MEMBER_INFO_UPDATED
// ('memberinfoupdated', pushed as conv member_info_changed); getAllMemberInfo({noCache}) and
// getMemberInfo(id) read the roles over REST, GET /1.1/classes/_ConversationMemberInfo with the
// session token (through the TLS proxy for SDK 4.x). A Member changing a role is refused with
// 4320; the Owner role cannot be given (5130, refused by the SDK itself).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, rejection, withTimeout, WAIT_MS,
} = require('../lib/clients');

/** {memberId: role} of a getAllMemberInfo() answer. */
const rolesOf = infos => Object.fromEntries(infos.map(i => [i.memberId, i.role]));

eachBackend('member roles', { binary: 'testserver', external: 'needs e2e/testserver' }, ctx => {
  const { ConversationMemberRole } = ctx.SDK;

  test('the owner appoints a manager: MEMBER_INFO_UPDATED on the members, roles over REST', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'roles' });
    const kateGroup = await kate.getConversation(group.id);
    await jerry.getConversation(group.id);

    const before = await withTimeout(kateGroup.getAllMemberInfo({ noCache: true }), WAIT_MS, 'getAllMemberInfo');
    assert.deepEqual(rolesOf(before), { [Tom]: 'Owner', [Jerry]: 'Member', [Kate]: 'Member' });

    const promoted = p => p.member === Jerry && p.memberInfo && p.memberInfo.role === ConversationMemberRole.MANAGER;
    const atJerry = waitFor(jerry, Event.MEMBER_INFO_UPDATED, promoted);
    const atKate = waitFor(kate, Event.MEMBER_INFO_UPDATED, promoted);
    const atKateConv = waitFor(kateGroup, Event.MEMBER_INFO_UPDATED, promoted);
    const atTom = waitFor(tom, Event.MEMBER_INFO_UPDATED, promoted);
    const res = await withTimeout(group.updateMemberRole(Jerry, ConversationMemberRole.MANAGER), WAIT_MS, 'updateMemberRole');
    assert.equal(res, group, 'updateMemberRole resolves with the conversation');
    for (const [name, wait] of [['Jerry', atJerry], ['Kate', atKate], ['Tom', atTom]]) {
      const [payload, conversation] = await wait;
      assert.equal(payload.updatedBy, Tom, `${name}: updatedBy`);
      assert.equal(payload.memberInfo.memberId, Jerry, `${name}: memberInfo.memberId`);
      assert.equal(payload.memberInfo.isOwner, false, `${name}: memberInfo.isOwner`);
      assert.equal(conversation.id, group.id, `${name}: the conversation`);
    }
    assert.equal((await atKateConv)[0].updatedBy, Tom, 'the Conversation emits it too');

    const after = await withTimeout(kateGroup.getAllMemberInfo({ noCache: true }), WAIT_MS, 'getAllMemberInfo');
    assert.deepEqual(rolesOf(after), { [Tom]: 'Owner', [Jerry]: 'Manager', [Kate]: 'Member' });
    const owner = after.find(i => i.memberId === Tom);
    assert.equal(owner.isOwner, true);
    assert.equal((await kateGroup.getMemberInfo(Jerry)).role, ConversationMemberRole.MANAGER);
    const jerryGroupFresh = await jerry.getConversation(group.id, true);
    assert.equal((await jerryGroupFresh.getAllMemberInfo({ noCache: true })).find(i => i.memberId === Jerry).role, 'Manager',
      'Jerry reads his own role');

    if (ctx.sdk === 'sdk4') {
      // 4.x reaches the REST API over https too: the member info request went through the proxy.
      const line = ctx.proxy.stats.log.find(l => l.startsWith('GET /im/1.1/classes/_ConversationMemberInfo?'));
      assert.ok(line, `getAllMemberInfo went through the TLS proxy; proxy saw ${JSON.stringify(ctx.proxy.stats.log)}`);
      const q = new URL(line.slice(4), ctx.proxy.url).searchParams;
      assert.ok([Tom, Jerry, Kate].includes(q.get('client_id')), `client_id ${q.get('client_id')}`);
      assert.deepEqual(JSON.parse(q.get('where')), { cid: group.id });
    }

    // And back to Member.
    const demoted = p => p.member === Jerry && p.memberInfo && p.memberInfo.role === ConversationMemberRole.MEMBER;
    const demotedAtKate = waitFor(kate, Event.MEMBER_INFO_UPDATED, demoted);
    await withTimeout(group.updateMemberRole(Jerry, ConversationMemberRole.MEMBER), WAIT_MS, 'updateMemberRole back');
    await demotedAtKate;
    const last = await kateGroup.getAllMemberInfo({ noCache: true });
    assert.deepEqual(rolesOf(last), { [Tom]: 'Owner', [Jerry]: 'Member', [Kate]: 'Member' });
  });

  test('a Member changing a role is refused with 4320; nobody can be made Owner (5130)', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    await ctx.login(Kate);
    const group = await tom.createConversation({ members: [Jerry, Kate], name: 'roles refused' });
    const jerryGroup = await jerry.getConversation(group.id);

    const err = await rejection(jerryGroup.updateMemberRole(Kate, ConversationMemberRole.MANAGER), 'a Member\'s updateMemberRole');
    assert.equal(err.code, 4320, `error code (message: ${err.message})`);
    const self = await rejection(jerryGroup.updateMemberRole(Jerry, ConversationMemberRole.MANAGER), 'a Member promoting himself');
    assert.equal(self.code, 4320, `error code (message: ${self.message})`);
    assert.deepEqual(rolesOf(await group.getAllMemberInfo({ noCache: true })), { [Tom]: 'Owner', [Jerry]: 'Member', [Kate]: 'Member' },
      'nothing changed');

    const owner = await rejection(group.updateMemberRole(Jerry, ConversationMemberRole.OWNER), 'making someone Owner');
    assert.equal(owner.code, 5130, `the SDK refuses it itself (message: ${owner.message})`);
  });
});
