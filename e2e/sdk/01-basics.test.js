'use strict';
// Basics: login, one-to-one and group messaging, history paging both ways, conversation
// queries, and a dropped socket that the SDK recovers from without losing messages.
// Runs over both websocket subprotocols (binary protobuf, and base64 text with noBinary).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const { eachBackend, T } = require('../lib/suite');
const {
  Event, ids, waitFor, sendText, dropSocket, Recorder, waitUnread, WAIT_MS,
} = require('../lib/clients');

for (const noBinary of [false, true]) {
  eachBackend(`basics (${noBinary ? 'noBinary base64' : 'binary'})`, { realtime: { noBinary }, cluster: true }, ctx => {
    const { TextMessage, MessageQueryDirection } = ctx.SDK;
    test('Tom creates a conversation with Jerry and Jerry receives his text', T, async () => {
      const { Tom, Jerry } = ids('Tom', 'Jerry');
      const tom = await ctx.login(Tom);
      const jerry = await ctx.login(Jerry);
      const received = waitFor(jerry, Event.MESSAGE);

      const conversation = await tom.createConversation({ members: [Jerry], name: 'Tom & Jerry' });
      assert.ok(conversation.id, 'conversation has an id');
      assert.deepEqual([...conversation.members].sort(), [Jerry, Tom].sort());
      const sent = await sendText(conversation, 'Get up, Jerry!');
      assert.ok(sent.id, 'sent message got an id from the server');
      assert.ok(sent.timestamp instanceof Date && sent.timestamp.getTime() > 0, 'sent message got a server timestamp');

      const [message, jerryConversation] = await received;
      assert.ok(message instanceof TextMessage, `received a TextMessage, got ${message && message.constructor.name}`);
      assert.equal(message.text, 'Get up, Jerry!');
      assert.equal(message.from, Tom);
      assert.equal(message.id, sent.id);
      assert.equal(message.cid, conversation.id);
      assert.equal(message.timestamp.getTime(), sent.timestamp.getTime());
      assert.equal(jerryConversation.id, conversation.id);
      assert.equal(jerryConversation.name, 'Tom & Jerry');
    });

    // Only SDK 4.x is fronted by the TLS proxy (5.x takes the http:// server as it is).
    if (ctx.sdk === 'sdk4') test('SDK 4.x finds the websocket through the router over https and connects over wss', T, async () => {
      const { Tom } = ids('Tom');
      await ctx.login(Tom);
      const { stats, url, host, cert } = ctx.proxy;
      // What 4.3.1 asked: https://{server}/v1/route?appId=..&secure=true&_t=..
      const routed = stats.log.find(l => l.startsWith('GET /im/v1/route?'));
      assert.ok(routed, `the SDK asked the router through the proxy; proxy saw ${JSON.stringify(stats.log)}`);
      const query = new URL(routed.slice(4), url).searchParams;
      assert.equal(query.get('appId'), ctx.server.appId);
      assert.equal(query.get('secure'), 'true');
      assert.ok(stats.log.includes('UPGRADE /im/ws'), `the websocket went through the proxy; proxy saw ${JSON.stringify(stats.log)}`);

      // The router's answer to that query, fetched over verified TLS (the proxy's own
      // certificate as the only CA): wss:// back through the proxy, because the proxy says
      // X-Forwarded-Proto: https.
      const answer = await new Promise((resolve, reject) => {
        const req = https.get(`${url}${routed.slice(4)}`, { ca: cert, rejectUnauthorized: true, timeout: WAIT_MS }, res => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', d => { body += d; });
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('timeout', () => req.destroy(new Error('router request timed out')));
        req.on('error', reject);
      });
      assert.equal(answer.status, 200, answer.body);
      const route = JSON.parse(answer.body);
      assert.equal(route.server, `wss://${host}/im/ws`);
      assert.ok(route.ttl > 0, `ttl ${route.ttl}`);
    });

    test('a group of three: everyone but the sender receives each message', T, async () => {
      const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
      const tom = await ctx.login(Tom);
      const jerry = await ctx.login(Jerry);
      const kate = await ctx.login(Kate);
      const group = await tom.createConversation({ members: [Jerry, Kate], name: 'Trio' });
      assert.deepEqual([...group.members].sort(), [Jerry, Kate, Tom].sort());

      const atJerry = waitFor(jerry, Event.MESSAGE, m => m.text === 'hello group');
      const atKate = waitFor(kate, Event.MESSAGE, m => m.text === 'hello group');
      const tomGotOwn = new Recorder(tom, [Event.MESSAGE]);
      const sent = await sendText(group, 'hello group');
      for (const [m, c] of [await atJerry, await atKate]) {
        assert.equal(m.id, sent.id);
        assert.equal(m.from, Tom);
        assert.equal(c.id, group.id);
      }

      const jerryGroup = await jerry.getConversation(group.id);
      const atTom = waitFor(tom, Event.MESSAGE, m => m.text === 'hi from Jerry');
      const atKate2 = waitFor(kate, Event.MESSAGE, m => m.text === 'hi from Jerry');
      const reply = await sendText(jerryGroup, 'hi from Jerry');
      assert.equal((await atTom)[0].id, reply.id);
      assert.equal((await atKate2)[0].from, Jerry);
      assert.equal(tomGotOwn.all(Event.MESSAGE).filter(([m]) => m.id === sent.id).length, 0,
        'the sender does not receive its own message back on the sending client');
      tomGotOwn.stop();
    });

    test('queryMessages pages history back in time and old-to-new without gaps or duplicates', T, async () => {
      const { Tom, Jerry } = ids('Tom', 'Jerry');
      const tom = await ctx.login(Tom);
      const jerry = await ctx.login(Jerry);
      const conversation = await tom.createConversation({ members: [Jerry], name: 'history' });
      const sent = [];
      for (let i = 0; i < 25; i++) sent.push(await sendText(conversation, `msg ${i}`));
      const sentIds = sent.map(m => m.id);
      assert.equal(new Set(sentIds).size, 25, 'every message has a distinct id');
      for (let i = 1; i < sent.length; i++) {
        assert.ok(sent[i].timestamp.getTime() > sent[i - 1].timestamp.getTime(),
          `timestamps strictly increase within a conversation (msg ${i - 1} -> ${i})`);
      }

      const history = await jerry.getConversation(conversation.id);

      // Default direction: newest page first, each page in ascending time order.
      const pages = [];
      let page = await history.queryMessages({ limit: 10 });
      while (page.length) {
        pages.unshift(page);
        assert.ok(pages.length <= 4, 'paging back terminates');
        const oldest = page[0];
        page = await history.queryMessages({ limit: 10, beforeTime: oldest.timestamp, beforeMessageId: oldest.id });
      }
      assert.deepEqual(pages.map(p => p.length), [5, 10, 10]);
      const back = pages.flat();
      assert.deepEqual(back.map(m => m.id), sentIds);
      assert.deepEqual(back.map(m => m.text), sent.map(m => m.text));
      for (const m of back) {
        assert.ok(m instanceof TextMessage);
        assert.equal(m.from, Tom);
        assert.equal(m.cid, conversation.id);
      }
      assert.deepEqual(back.map(m => m.timestamp.getTime()), sent.map(m => m.timestamp.getTime()));

      // The same with the current option names.
      const newest = await history.queryMessages({ limit: 10 });
      const older = await history.queryMessages({ limit: 10, startTime: newest[0].timestamp, startMessageId: newest[0].id });
      assert.deepEqual([...older, ...newest].map(m => m.id), sentIds.slice(5));

      // OLD_TO_NEW from the first message (included), then exclusive cursors.
      const forward = [];
      page = await history.queryMessages({
        limit: 10, direction: MessageQueryDirection.OLD_TO_NEW, startTime: sent[0].timestamp, startClosed: true,
      });
      while (page.length) {
        forward.push(...page);
        assert.ok(forward.length <= 25, 'paging forward terminates');
        const last = page[page.length - 1];
        page = await history.queryMessages({
          limit: 10, direction: MessageQueryDirection.OLD_TO_NEW, startTime: last.timestamp, startMessageId: last.id,
        });
      }
      assert.deepEqual(forward.map(m => m.id), sentIds);

      // A closed time range: start < end implies old-to-new.
      const range = await history.queryMessages({
        startTime: sent[3].timestamp, startClosed: true, endTime: sent[7].timestamp, endClosed: true, limit: 20,
      });
      assert.deepEqual(range.map(m => m.id), sentIds.slice(3, 8));
      const openRange = await history.queryMessages({
        startTime: sent[3].timestamp, endTime: sent[7].timestamp, limit: 20,
      });
      assert.deepEqual(openRange.map(m => m.id), sentIds.slice(4, 7));

      // The SDK's iterator walks the same history back in time.
      const iterator = history.createMessagesIterator({ limit: 10 });
      const walked = [];
      for (let step = 0; step < 5; step++) {
        const { value, done } = await iterator.next();
        if (value && value.length) walked.unshift(...value);
        if (done) break;
      }
      assert.deepEqual(walked.map(m => m.id), sentIds);
    });

    test('getQuery(): containsMembers and equalTo objectId find the conversation', T, async () => {
      const { Tom, Jerry, Kate } = ids('Tom', 'Jerry', 'Kate');
      const tom = await ctx.login(Tom);
      const jerry = await ctx.login(Jerry);
      const withTom = await tom.createConversation({ members: [Jerry], name: 'with Tom' });
      const withoutTom = await jerry.createConversation({ members: [Kate], name: 'without Tom' });
      await sendText(withTom, 'last words');

      const found = await jerry.getQuery().containsMembers([Tom, Jerry]).find();
      const foundIds = found.map(c => c.id);
      assert.ok(foundIds.includes(withTom.id), `containsMembers finds ${withTom.id}, got ${foundIds}`);
      assert.ok(!foundIds.includes(withoutTom.id), 'containsMembers excludes a conversation without Tom');

      const byId = await jerry.getQuery().equalTo('objectId', withTom.id).find();
      assert.equal(byId.length, 1);
      const [c] = byId;
      assert.equal(c.id, withTom.id);
      assert.equal(c.name, 'with Tom');
      assert.deepEqual([...c.members].sort(), [Jerry, Tom].sort());
      assert.ok(c.lastMessage, 'query result carries the last message');
      assert.equal(c.lastMessage.text, 'last words');
      assert.equal(c.lastMessage.from, Tom);
    });

    test('paused connection: messages sent meanwhile arrive via unread sync and history', T, async () => {
      const { Tom, Jerry } = ids('Tom', 'Jerry');
      const tom = await ctx.login(Tom);
      // Jerry runs in a child process: his own socket, unaffected by Tom's pause.
      const jerry = ctx.child({ noBinary });
      await jerry.login(Jerry);
      const conv = await jerry.call('createConversation', { members: [Tom], name: 'pause' });
      const first = waitFor(tom, Event.MESSAGE, m => m.text === 'before');
      await jerry.call('send', { cid: conv.id, text: 'before' });
      const [, tomConv] = await first;
      await tomConv.read();
      // The SDK throttles read() (at most one a second, shared by its
      // clients): wait until the server has it (Jerry's read receipt)
      // before going offline, or the read may still be pending.
      await jerry.events.wait('read', c => c.id === conv.id);

      const offline = waitFor(tom, Event.DISCONNECT);
      ctx.realtime.pause();
      await offline;
      const during = [];
      for (const text of ['while away 1', 'while away 2', 'while away 3']) {
        during.push(await jerry.call('send', { cid: conv.id, text }));
      }

      const reconnected = waitFor(tom, Event.RECONNECT);
      ctx.realtime.resume();
      await reconnected;
      const c = await waitUnread(tom, conv.id, n => n === 3);
      assert.equal(c.unreadMessagesCount, 3);
      assert.ok(c.lastMessage, 'unread notification carries the last message');
      assert.equal(c.lastMessage.id, during[2].id);
      assert.equal(c.lastMessage.text, 'while away 3');

      const history = await c.queryMessages({ limit: 10 });
      assert.deepEqual(history.map(m => m.text), ['before', 'while away 1', 'while away 2', 'while away 3']);
    });

    test('dropped socket: the SDK re-logs in and nothing sent meanwhile is lost', T, async () => {
      const { Tom, Jerry } = ids('Tom', 'Jerry');
      const tom = await ctx.login(Tom);
      const jerry = ctx.child({ noBinary });
      await jerry.login(Jerry);
      const conv = await jerry.call('createConversation', { members: [Tom], name: 'drop' });
      const live = new Recorder(tom, [Event.MESSAGE]);
      await jerry.call('send', { cid: conv.id, text: 'before drop' });
      await live.wait(Event.MESSAGE, m => m.text === 'before drop');

      const disconnected = waitFor(tom, Event.DISCONNECT);
      const reconnected = waitFor(tom, Event.RECONNECT, () => true, WAIT_MS + 5000);
      dropSocket(tom);
      await disconnected;
      const gap = [];
      for (const text of ['gap 1', 'gap 2']) gap.push(await jerry.call('send', { cid: conv.id, text }));
      await reconnected;

      const after = await jerry.call('send', { cid: conv.id, text: 'after reconnect' });
      const [m] = await live.wait(Event.MESSAGE, x => x.text === 'after reconnect');
      assert.equal(m.id, after.id);

      const tomConv = await tom.getConversation(conv.id);
      const history = await tomConv.queryMessages({ limit: 10 });
      assert.deepEqual(history.map(x => x.text), ['before drop', 'gap 1', 'gap 2', 'after reconnect']);
      const liveIds = live.all(Event.MESSAGE).map(([x]) => x.id);
      assert.equal(new Set(liveIds).size, liveIds.length, 'no message delivered twice live');
      live.stop();
    });
  });
}
