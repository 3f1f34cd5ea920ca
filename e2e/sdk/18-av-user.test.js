'use strict';
// createIMClient(AV.User) (spec A.7): the SDK takes an identity with `id` and
// `getSessionToken` as an application user, logs in as user.id, and signs the login itself:
// POST {server}/1.1/rtm/sign {session_token} (through the TLS proxy for SDK 4.x), whose
// {signature, timestamp, nonce} it puts in session open. e2e/testserver runs with
// -master-key KEY -require login (login signatures required) and a hub.Config.UserResolver
// that takes the session tokens "valid-<objectId>" as the user <objectId>. A bad token fails
// the login with the REST error (4102).
//
// The users are leancloud-storage AV.User objects, rebuilt with AV.parseJSON from the JSON an
// app keeps of a logged-in user (AV.User#toFullJSON): nothing talks to a LeanCloud storage
// server.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const AV = require('leancloud-storage');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, sendText, rejection,
} = require('../lib/clients');

const MASTER_KEY = `e2e-master-${crypto.randomBytes(6).toString('hex')}`;

/** A logged-in AV.User as an app restores it, with the given session token. */
function avUser(objectId, sessionToken) {
  const json = { __type: 'Object', className: '_User', objectId, username: `name-of-${objectId}` };
  if (sessionToken !== undefined) json.sessionToken = sessionToken;
  const user = AV.parseJSON(json);
  assert.ok(user instanceof AV.User, 'an AV.User');
  return user;
}

eachBackend('createIMClient(AV.User)', {
  binary: 'testserver', args: ['-master-key', MASTER_KEY, '-require', 'login'], external: 'needs e2e/testserver -master-key (its UserResolver)',
}, ctx => {
  test('an AV.User logs in as its id with the hub\'s signature, and chats', T, async () => {
    const { u1, u2 } = ids('u1', 'u2');
    const tom = await ctx.login(avUser(u1, `valid-${u1}`));
    assert.equal(tom.id, u1, 'the client id is the user\'s objectId');
    const jerry = await ctx.login(avUser(u2, `valid-${u2}`));
    assert.equal(jerry.id, u2);
    if (ctx.sdk === 'sdk4') {
      assert.ok(ctx.proxy.stats.log.includes('POST /im/1.1/rtm/sign'),
        `4.x asked for the signature over https; proxy saw ${JSON.stringify(ctx.proxy.stats.log)}`);
    }

    const conversation = await tom.createConversation({ members: [u2], name: 'users' });
    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'hello user');
    const sent = await sendText(conversation, 'hello user');
    const [m] = await atJerry;
    assert.equal(m.id, sent.id);
    assert.equal(m.from, u1);

    // Login signatures are required: a plain id without a signatureFactory is refused.
    const { Kate } = ids('Kate');
    const plain = await rejection(ctx.realtime.createIMClient(Kate), 'login by a plain id without a signature');
    assert.equal(plain.code, 4102, `error code (message: ${plain.message})`);
  });

  test('a bad session token fails the login (4102); a user without one is refused by the SDK', T, async () => {
    const { u1, u2 } = ids('u1', 'u2');
    const bad = await rejection(ctx.realtime.createIMClient(avUser(u1, 'not-a-session-token')), 'login with a bad token');
    assert.equal(bad.code, 4102, `error code (message: ${bad.message})`);
    assert.match(bad.message, /^sign error: /, 'it failed at POST /1.1/rtm/sign, before the session open');
    // Another user's token signs for that other user: the session open (as u2) is refused.
    const other = await rejection(ctx.realtime.createIMClient(avUser(u2, `valid-${u1}`)), 'login with another user\'s token');
    assert.equal(other.code, 4102, `error code (message: ${other.message})`);
    const none = await rejection(ctx.realtime.createIMClient(avUser(`${u1}x`)), 'login of a user without a session token');
    assert.match(none.message, /User must be authenticated/);

    const ok = await ctx.login(avUser(u1, `valid-${u1}`));
    assert.equal(ok.id, u1, 'the right token still works');
  });
});
