'use strict';
// LeanCloud's IM REST API v2 (rtm/conversations ..., master key): what a backend does over REST
// reaches the official SDK as if another client had done it. A REST send (from_client, not
// necessarily online) arrives as MESSAGE; a REST member removal arrives as KICKED at the removed
// member and MEMBERS_LEFT at the others; a REST role change (member-infos) arrives as
// MEMBER_INFO_UPDATED. The app runs with -master-key; the app key alone is refused with 401.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, withTimeout, WAIT_MS,
} = require('../lib/clients');

const MASTER_KEY = 'e2e-master-key';

eachBackend('REST API v2', { masterKey: MASTER_KEY, external: 'needs the app started with -master-key' }, ctx => {
  /** Calls {mount}/1.2/rtm{path}; resolves to {status, body}. */
  const rest = async (method, path, body, key = `${MASTER_KEY},master`) => {
    const res = await fetch(`${ctx.server.imServer}/1.2/rtm${path}`, {
      method,
      headers: { 'X-LC-Id': ctx.server.appId, 'X-LC-Key': key, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const ok = async (method, path, body) => {
    const r = await rest(method, path, body);
    assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };

  test('the app key alone is refused with 401', T, async () => {
    const r = await rest('GET', '/all-conversations', undefined, ctx.server.appKey);
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 401);
    assert.equal(typeof r.body.error, 'string');
  });

  test('a REST send reaches the SDK client live, with its sender and mentions', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const jerry = await ctx.login(Jerry);
    const conv = await ok('POST', '/conversations', { name: 'rest', m: [Tom, Jerry] });
    const got = waitFor(jerry, Event.MESSAGE, (m, c) => c.id === conv.objectId);
    const body = JSON.stringify({ _lctype: -1, _lctext: 'from the backend' });
    const sent = await ok('POST', `/conversations/${conv.objectId}/messages`,
      { from_client: Tom, message: body, mention_client_ids: [Jerry] });
    assert.ok(sent['msg-id'] && sent.timestamp > 0, JSON.stringify(sent));
    const [message, conversation] = await got;
    assert.equal(message.id, sent['msg-id']);
    assert.equal(message.from, Tom);
    assert.equal(message.text, 'from the backend');
    assert.equal(message.timestamp.getTime(), sent.timestamp);
    assert.deepEqual(message.mentionList, [Jerry]);
    assert.equal(message.mentioned, true);
    assert.equal(conversation.id, conv.objectId);

    // And it is in the history the SDK reads.
    const history = await withTimeout(conversation.queryMessages({ limit: 10 }), WAIT_MS, 'queryMessages');
    assert.deepEqual(history.map(m => m.id), [sent['msg-id']]);
  });

  test('a REST member removal: KICKED at the removed member, MEMBERS_LEFT at the others', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const jerry = await ctx.login(Jerry);
    const kate = await ctx.login(Kate);
    const conv = await ok('POST', '/conversations', { name: 'kick', m: [Tom, Jerry, Kate] });
    await jerry.getConversation(conv.objectId);
    await kate.getConversation(conv.objectId);
    const kicked = waitFor(jerry, Event.KICKED, (p, c) => c.id === conv.objectId);
    const left = waitFor(kate, Event.MEMBERS_LEFT, (p, c) => c.id === conv.objectId && p.members.includes(Jerry));
    await ok('DELETE', `/conversations/${conv.objectId}/members`, { client_ids: [Jerry] });
    await kicked;
    await left;
    const { result } = await ok('GET', `/conversations/${conv.objectId}/members`);
    assert.deepEqual(result, [Kate, Tom].sort());
  });

  test('a REST role change: MEMBER_INFO_UPDATED, and the SDK reads the new role', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const kate = await ctx.login(Kate);
    const conv = await ok('POST', '/conversations', { c: Tom, name: 'roles', m: [Tom, Jerry, Kate] });
    const kateConv = await kate.getConversation(conv.objectId);
    const updated = waitFor(kate, Event.MEMBER_INFO_UPDATED, p => p.member === Jerry && p.memberInfo.role === 'Manager');
    await ok('POST', `/conversations/${conv.objectId}/member-infos`, { clientId: Jerry, role: 'Manager' });
    const [payload, conversation] = await updated;
    assert.equal(conversation.id, conv.objectId);
    assert.equal(payload.memberInfo.memberId, Jerry);
    const infos = await withTimeout(kateConv.getAllMemberInfo({ noCache: true }), WAIT_MS, 'getAllMemberInfo');
    assert.equal(infos.find(i => i.memberId === Jerry).role, 'Manager');
    const { results } = await ok('GET', `/conversations/${conv.objectId}/member-infos?role=Manager`);
    assert.deepEqual(results.map(r => r.clientId), [Jerry]);
  });
});
