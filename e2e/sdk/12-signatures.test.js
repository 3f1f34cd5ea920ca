'use strict';
// Signatures (seed: "Security and Signatures"): e2e/testserver runs with -master-key, so the hub
// requires a login signature (4102 without a valid one) and conversation signatures for
// create/invite/kick (4302). The SDK's signatureFactory(clientId) and
// conversationSignatureFactory(conversationId, clientId, targetIds, action) fetch
// {signature, timestamp, nonce} from the testserver's POST /sign, the way an app's own
// server signs for its users. Needs the testserver, so the run against E2E_SERVER_URL is
// skipped.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, newRealtime, login, waitFor, sendText, closeQuietly, withTimeout, WAIT_MS,
} = require('../lib/clients');

const MASTER_KEY = `e2e-master-${crypto.randomBytes(6).toString('hex')}`;

/** Asks the testserver's /sign for {signature, timestamp, nonce}. */
async function sign(server, body) {
  const res = await fetch(`${server.base}/sign`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`/sign ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** A signature that is well-formed but wrong: the last hex digit changed. */
function spoil(result) {
  const s = result.signature;
  return { ...result, signature: s.slice(0, -1) + (s.endsWith('0') ? '1' : '0') };
}

/**
 * The action names each SDK hands conversationSignatureFactory, by the protocol's name (the
 * one signed, and the one /sign takes): 5.x passes the protocol's 'invite'/'kick'; 4.x passes
 * 'add'/'remove' for them (leancloud-realtime 5.0 changelog: "action from add/remove changed
 * to invite/kick"), so a 4.x app's signing code maps them, as this harness does.
 */
const SDK_ACTIONS = {
  sdk4: { create: 'create', invite: 'add', kick: 'remove' },
  sdk5: { create: 'create', invite: 'invite', kick: 'kick' },
};

/** The protocol's action for the action name `sdk` passed to the factory. */
function protocolAction(sdk, action) {
  const hit = Object.entries(SDK_ACTIONS[sdk]).find(([, sdkName]) => sdkName === action);
  if (!hit) throw new Error(`${sdk} passed an unexpected action ${JSON.stringify(action)} to conversationSignatureFactory`);
  return hit[0];
}

/** The SDK factories backed by /sign; every call's arguments land in `calls`. */
function factories(server) {
  const calls = { login: [], conversation: [] };
  return {
    calls,
    signatureFactory: async clientId => {
      calls.login.push([clientId]);
      return sign(server, { clientId });
    },
    conversationSignatureFactory: async (convId, clientId, targetIds, action) => {
      calls.conversation.push([convId, clientId, [...targetIds], action]);
      return sign(server, { convId, clientId, members: targetIds, action: protocolAction(server.sdk, action) });
    },
  };
}

function rejection(promise, what) {
  return withTimeout(promise, WAIT_MS, what).then(
    v => assert.fail(`${what} resolved (${v && (v.id || v)}); expected a rejection`),
    e => e,
  );
}

eachBackend('signatures', { binary: 'testserver', args: ['-master-key', MASTER_KEY], external: 'needs e2e/testserver (its /sign endpoint), not an external server' }, ctx => {
  const actions = SDK_ACTIONS[ctx.sdk];

  test('signed login, create, add and remove', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const tomSign = factories(ctx.server);
    const tom = await ctx.login(Tom, tomSign);
    assert.deepEqual(tomSign.calls.login, [[Tom]], 'signatureFactory(clientId)');
    const jerry = await ctx.login(Jerry, factories(ctx.server));
    const kate = await ctx.login(Kate, factories(ctx.server));

    const conversation = await tom.createConversation({ members: [Jerry], name: 'signed' });
    assert.ok(conversation.id);
    assert.deepEqual([...conversation.members].sort(), [Jerry, Tom].sort());
    assert.deepEqual(tomSign.calls.conversation, [[null, Tom, [Jerry, Tom].sort(), actions.create]],
      'the SDK signs create with the members including the creator, sorted');

    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'signed hello');
    await sendText(conversation, 'signed hello');
    assert.equal((await atJerry)[1].id, conversation.id);

    const invited = waitFor(kate, Event.INVITED, p => p && p.invitedBy === Tom);
    const added = await withTimeout(conversation.add([Kate]), WAIT_MS, 'add');
    assert.deepEqual(added.successfulClientIds, [Kate]);
    assert.deepEqual(added.failures, []);
    await invited;
    assert.deepEqual(tomSign.calls.conversation[1], [conversation.id, Tom, [Kate], actions.invite]);
    assert.deepEqual([...conversation.members].sort(), [Jerry, Kate, Tom].sort());

    const kicked = waitFor(kate, Event.KICKED, p => p && p.kickedBy === Tom);
    const removed = await withTimeout(conversation.remove([Kate]), WAIT_MS, 'remove');
    assert.deepEqual(removed.successfulClientIds, [Kate]);
    assert.deepEqual(removed.failures, []);
    await kicked;
    assert.deepEqual(tomSign.calls.conversation[2], [conversation.id, Tom, [Kate], actions.kick]);
    assert.deepEqual([...conversation.members].sort(), [Jerry, Tom].sort());

    const fromServer = await jerry.getQuery().equalTo('objectId', conversation.id).find();
    assert.equal(fromServer.length, 1);
    assert.deepEqual([...fromServer[0].members].sort(), [Jerry, Tom].sort(), 'the server has the same members');
  });

  test('login with a wrong signature, or none, fails with 4102', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const wrong = await rejection(
      ctx.realtime.createIMClient(Tom, { signatureFactory: async id => spoil(await sign(ctx.server, { clientId: id })) }),
      'login with a wrong signature');
    assert.equal(wrong.code, 4102, `error code (message: ${wrong.message})`);

    const none = await rejection(ctx.realtime.createIMClient(Jerry), 'login without a signature');
    assert.equal(none.code, 4102, `error code (message: ${none.message})`);

    // Signed for someone else: the client id is part of the signed message.
    const other = await rejection(
      ctx.realtime.createIMClient(`${Tom}-x`, { signatureFactory: () => sign(ctx.server, { clientId: Tom }) }),
      'login with another client id\'s signature');
    assert.equal(other.code, 4102, `error code (message: ${other.message})`);

    // The right signature still works afterwards.
    const tom = await ctx.login(Tom, factories(ctx.server));
    assert.equal(tom.id, Tom);
  });

  test('a replayed login signature (same nonce) fails with 4102', T, async () => {
    const { Tom } = ids('Tom');
    const once = await sign(ctx.server, { clientId: Tom });
    const first = await login(ctx.realtime, Tom, { signatureFactory: async () => once });
    await first.close();
    const replay = await rejection(ctx.realtime.createIMClient(Tom, { signatureFactory: async () => once }), 'replayed login');
    assert.equal(replay.code, 4102, `error code (message: ${replay.message})`);
  });

  test('createConversation with a bad conversation signature fails with 4302', T, async () => {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const good = factories(ctx.server);
    const tom = await ctx.login(Tom, {
      signatureFactory: good.signatureFactory,
      conversationSignatureFactory: async (...args) => spoil(await good.conversationSignatureFactory(...args)),
    });
    await ctx.login(Jerry, factories(ctx.server));
    const err = await rejection(tom.createConversation({ members: [Jerry], name: 'bad signature' }), 'create with a bad signature');
    assert.equal(err.code, 4302, `error code (message: ${err.message})`);

    // Signed for other members than the ones asked for.
    const tom2Sign = factories(ctx.server);
    const { Kate } = ids('Kate');
    const tom2 = await ctx.login(`${Tom}-2`, {
      signatureFactory: tom2Sign.signatureFactory,
      conversationSignatureFactory: (convId, clientId, targetIds, action) =>
        sign(ctx.server, { convId, clientId, members: [clientId, Kate], action: protocolAction(ctx.sdk, action) }),
    });
    const mismatch = await rejection(tom2.createConversation({ members: [Jerry], name: 'other members' }), 'create signed for other members');
    assert.equal(mismatch.code, 4302, `error code (message: ${mismatch.message})`);
  });

  test('conversation.add with a bad signature fails with 4302 and adds nobody', T, async () => {
    const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
    const good = factories(ctx.server);
    let spoilNext = false;
    const tom = await ctx.login(Tom, {
      signatureFactory: good.signatureFactory,
      conversationSignatureFactory: async (...args) => {
        const s = await good.conversationSignatureFactory(...args);
        return spoilNext ? spoil(s) : s;
      },
    });
    await ctx.login(Jerry, factories(ctx.server));
    await ctx.login(Kate, factories(ctx.server));
    const conversation = await tom.createConversation({ members: [Jerry], name: 'add refused' });
    spoilNext = true;
    const err = await rejection(conversation.add([Kate]), 'add with a bad signature');
    assert.equal(err.code, 4302, `error code (message: ${err.message})`);
    const fromServer = await tom.getQuery().equalTo('objectId', conversation.id).find();
    assert.deepEqual([...fromServer[0].members].sort(), [Jerry, Tom].sort(), 'Kate was not added');
  });
});
