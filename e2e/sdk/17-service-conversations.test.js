'use strict';
// Service (system) conversations (seed: "Hooks and System Conversations"; spec A.6): only the
// application creates them (here e2e/testserver's POST /service/conversations, which calls
// hub.CreateConversation with System). Through the SDK: getServiceConversationQuery() (where
// {"sys": true}) finds them as ServiceConversation; subscribe() (ServiceConversation#subscribe,
// in 4.3.1 as in 5.x: a join) subscribes; the application's broadcasts (POST /service/messages,
// hub.Send with SendOptions.System) arrive as MESSAGE, a message to one subscriber
// (Message.To) reaches only it, a subscriber's own message goes to the service only;
// unsubscribe() stops them; queryMessages shows each subscriber its broadcasts and its own
// messages, not another's.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, expectNoEvent, sendText, rejection, withTimeout, WAIT_MS,
} = require('../lib/clients');
const { createServiceConversation, serviceSend } = require('../lib/testserver');

eachBackend('service conversations', { binary: 'testserver', external: 'needs e2e/testserver (its service endpoints)' }, ctx => {
  const { ServiceConversation, TextMessage } = ctx.SDK;

  /** Finds the service conversation `id` with getServiceConversationQuery(). */
  async function findService(client, id) {
    // The PostgreSQL database is shared with other runs, which have service conversations too:
    // newest first, so this run's is on the first page.
    const found = await withTimeout(client.getServiceConversationQuery().descending('createdAt').limit(100).find(),
      WAIT_MS, 'getServiceConversationQuery().find()');
    for (const c of found) {
      assert.ok(c instanceof ServiceConversation, `every result is a ServiceConversation, got ${c.constructor.name} ${c.id}`);
      assert.equal(c.system, true);
    }
    const mine = found.find(c => c.id === id);
    assert.ok(mine, `the query finds service conversation ${id} among ${found.length}`);
    return mine;
  }

  test('subscribe, broadcasts, a message to one subscriber, unsubscribe, history', T, async () => {
    const { Tom, Jerry, news } = ids('Tom', 'Jerry', 'news');
    const svc = await createServiceConversation(ctx.server, { name: news });
    assert.match(svc.id, /^[0-9a-f]{24}$/);
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);

    const tomSvc = await findService(tom, svc.id);
    assert.equal(tomSvc.name, news);
    const jerrySvc = await findService(jerry, svc.id);
    assert.equal(await withTimeout(tomSvc.subscribe(), WAIT_MS, 'subscribe'), tomSvc, 'subscribe() resolves with the conversation');
    await withTimeout(jerrySvc.subscribe(), WAIT_MS, 'subscribe');

    const atTom = waitFor(tom, Event.MESSAGE, m => m.text === 'breaking news');
    const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'breaking news');
    const broadcast = await serviceSend(ctx.server, { convId: svc.id, text: 'breaking news' });
    for (const [m, c] of [await atTom, await atJerry]) {
      assert.ok(m instanceof TextMessage, `a TextMessage, got ${m.constructor.name}`);
      assert.equal(m.id, broadcast.id);
      assert.equal(m.from, 'system');
      assert.equal(m.cid, svc.id);
      assert.equal(c.id, svc.id);
      assert.ok(c instanceof ServiceConversation);
    }

    const neverAtJerry = expectNoEvent(jerry, Event.MESSAGE, m => m.text === 'just for Tom', 1500);
    const forTom = waitFor(tom, Event.MESSAGE, m => m.text === 'just for Tom');
    const direct = await serviceSend(ctx.server, { convId: svc.id, text: 'just for Tom', to: [Tom] });
    assert.equal((await forTom)[0].id, direct.id);
    await neverAtJerry;

    // A subscriber writes to the service: acked, but it reaches no other subscriber.
    const notAtJerry = expectNoEvent(jerry, Event.MESSAGE, m => m.text === 'hello service', 1500);
    const upstream = await sendText(tomSvc, 'hello service');
    assert.ok(upstream.id, 'the subscriber\'s message is acked');
    await notAtJerry;

    const jerryHistory = (await withTimeout(jerrySvc.queryMessages({ limit: 20 }), WAIT_MS, 'queryMessages')).map(m => m.text);
    assert.deepEqual(jerryHistory, ['breaking news'], 'Jerry\'s history: the broadcast only');
    const tomHistory = (await withTimeout(tomSvc.queryMessages({ limit: 20 }), WAIT_MS, 'queryMessages')).map(m => m.text);
    assert.ok(tomHistory.includes('breaking news') && tomHistory.includes('just for Tom'),
      `Tom's history has the broadcast and his message: ${JSON.stringify(tomHistory)}`);

    assert.equal(await withTimeout(jerrySvc.unsubscribe(), WAIT_MS, 'unsubscribe'), jerrySvc);
    const gone = expectNoEvent(jerry, Event.MESSAGE, m => m.text === 'after Jerry left', 1500);
    const stillTom = waitFor(tom, Event.MESSAGE, m => m.text === 'after Jerry left');
    await serviceSend(ctx.server, { convId: svc.id, text: 'after Jerry left' });
    await stillTom;
    await gone;

    // Subscribed again, Jerry gets the next broadcast.
    await withTimeout(jerrySvc.subscribe(), WAIT_MS, 'subscribe again');
    const back = waitFor(jerry, Event.MESSAGE, m => m.text === 'welcome back');
    await serviceSend(ctx.server, { convId: svc.id, text: 'welcome back' });
    await back;
  });

  test('a subscriber cannot subscribe others (4308)', T, async () => {
    const { Tom, Jerry, news } = ids('Tom', 'Jerry', 'news');
    const svc = await createServiceConversation(ctx.server, { name: news });
    const tom = await ctx.login(Tom);
    await ctx.login(Jerry);
    const tomSvc = await findService(tom, svc.id);
    await tomSvc.subscribe();
    const err = await rejection(tomSvc.add([Jerry]), 'add to a service conversation');
    assert.equal(err.code, 4308, `error code (message: ${err.message})`);
  });
});
