'use strict';
// Conversation queries as LeanCloud apps write them (beginner guide "对话的查询"; spec A.5):
// client.getQuery() with equalTo('name'), equalTo('attr.type') for a custom attribute given at
// creation, contains('name') ($regex with \Q..\E quoting), greaterThan('lm', date),
// containsMembers ($all), withMembers ($size + $all), ConversationQuery.or/and (5.x only),
// ascending('name'), sorting by a custom attribute, and queries the hub refuses with 4310
// (CONVERSATION_QUERY_FAILED).
//
// The PostgreSQL database is shared with other runs: every condition here is scoped to this
// test's unique names or members.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eachBackend, T } = require('../lib/suite');
const {
  ids, sendText, rejection, sleep, withTimeout, WAIT_MS,
} = require('../lib/clients');

const sorted = a => [...a].sort();
const idsOf = convs => sorted(convs.map(c => c.id));
const find = (query, what) => withTimeout(query.find(), WAIT_MS, what);

eachBackend('conversation queries', { binary: 'testserver', external: 'needs e2e/testserver' }, ctx => {
  /** Tom plus members, and a unique tag for names and attributes. */
  async function setup(...others) {
    const names = ids('Tom', ...others, 'tag');
    const tom = await ctx.login(names.Tom);
    return { ...names, tom };
  }

  test('equalTo(\'name\', ...)', T, async () => {
    const { Jerry, tag, tom } = await setup('Jerry');
    const alpha = await tom.createConversation({ members: [Jerry], name: `${tag} alpha`, unique: false });
    await tom.createConversation({ members: [Jerry], name: `${tag} beta`, unique: false });
    const found = await find(tom.getQuery().equalTo('name', `${tag} alpha`), 'equalTo name');
    assert.deepEqual(idsOf(found), [alpha.id]);
    assert.equal(found[0].name, `${tag} alpha`);
  });

  test('equalTo(\'attr.type\', ...) for a conversation created with a custom attribute type', T, async () => {
    const { Jerry, tag, tom } = await setup('Jerry');
    const priv = await tom.createConversation({ members: [Jerry], name: 'private one', type: `private-${tag}`, unique: false });
    await tom.createConversation({ members: [Jerry], name: 'public one', type: `public-${tag}`, unique: false });
    const found = await find(tom.getQuery().equalTo('attr.type', `private-${tag}`), 'equalTo attr.type');
    assert.deepEqual(idsOf(found), [priv.id]);
  });

  test('contains(\'name\', ...) matches a literal substring', T, async () => {
    const { Jerry, tag, tom } = await setup('Jerry');
    // Regex metacharacters in the name: the SDK quotes the substring (\Q..\E).
    const dotted = await tom.createConversation({ members: [Jerry], name: `fruit a.b (${tag}) apple`, unique: false });
    await tom.createConversation({ members: [Jerry], name: `fruit axb (${tag}) apple`, unique: false });
    await tom.createConversation({ members: [Jerry], name: `fruit a.b [${tag}] pear`, unique: false });
    const found = await find(tom.getQuery().contains('name', `a.b (${tag})`), 'contains name');
    assert.deepEqual(idsOf(found), [dotted.id]);
  });

  test('greaterThan(\'lm\', date) finds the conversations with a later last message', T, async () => {
    const { Tom, Jerry, tom } = await setup('Jerry');
    const early = await tom.createConversation({ members: [Jerry], name: 'early', unique: false });
    const late = await tom.createConversation({ members: [Jerry], name: 'late', unique: false });
    const first = await sendText(early, 'first');
    await sleep(20);
    await sendText(late, 'second');
    const found = await find(tom.getQuery().containsMembers([Tom]).greaterThan('lm', first.timestamp), 'greaterThan lm');
    assert.deepEqual(idsOf(found), [late.id]);
    const both = await find(tom.getQuery().containsMembers([Tom]).greaterThan('lm', new Date(first.timestamp.getTime() - 1)), 'greaterThan lm - 1');
    assert.deepEqual(idsOf(both), sorted([early.id, late.id]));
  });

  test('containsMembers and withMembers', T, async () => {
    const { Tom, Jerry, Kate, tom } = await setup('Jerry', 'Kate');
    const trio = await tom.createConversation({ members: [Jerry, Kate], name: 'trio', unique: false });
    const pair = await tom.createConversation({ members: [Jerry], name: 'pair', unique: false });
    assert.deepEqual(idsOf(await find(tom.getQuery().containsMembers([Jerry, Kate]), 'containsMembers')), [trio.id]);
    assert.deepEqual(idsOf(await find(tom.getQuery().containsMembers([Jerry]), 'containsMembers')), sorted([trio.id, pair.id]));
    // withMembers(ids, includeSelf): exactly these members.
    assert.deepEqual(idsOf(await find(tom.getQuery().withMembers([Jerry], true), 'withMembers')), [pair.id]);
    assert.deepEqual(idsOf(await find(tom.getQuery().withMembers([Jerry, Kate, Tom]), 'withMembers')), [trio.id]);
  });

  test('ascending(\'name\') and descending(\'name\')', T, async () => {
    const { Tom, Jerry, tom } = await setup('Jerry');
    for (const name of ['charlie', 'alpha', 'bravo']) {
      await tom.createConversation({ members: [Jerry], name, unique: false });
    }
    const up = await find(tom.getQuery().containsMembers([Tom]).ascending('name'), 'ascending name');
    assert.deepEqual(up.map(c => c.name), ['alpha', 'bravo', 'charlie']);
    const down = await find(tom.getQuery().containsMembers([Tom]).descending('name'), 'descending name');
    assert.deepEqual(down.map(c => c.name), ['charlie', 'bravo', 'alpha']);
  });

  if (ctx.sdk === 'sdk5') {
    // ConversationQuery.and/or exist in 5.x only (5.0.0-rc.3).
    test('ConversationQuery.and (5.x)', T, async () => {
      const { Jerry, Kate, tom } = await setup('Jerry', 'Kate');
      const { ConversationQuery } = ctx.SDK;
      const trio = await tom.createConversation({ members: [Jerry, Kate], name: 'and trio', unique: false });
      await tom.createConversation({ members: [Jerry], name: 'and pair', unique: false });
      const q = ConversationQuery.and(tom.getQuery().containsMembers([Jerry]), tom.getQuery().containsMembers([Kate]));
      assert.deepEqual(idsOf(await find(q, 'and')), [trio.id]);
    });

    test('ConversationQuery.or (5.x)', T, async () => {
      const { Jerry, Kate, William, tom } = await setup('Jerry', 'Kate', 'William');
      const { ConversationQuery } = ctx.SDK;
      const withKate = await tom.createConversation({ members: [Kate], name: 'or Kate', unique: false });
      const withWilliam = await tom.createConversation({ members: [William], name: 'or William', unique: false });
      await tom.createConversation({ members: [Jerry], name: 'or Jerry', unique: false });
      const q = ConversationQuery.or(tom.getQuery().containsMembers([Kate]), tom.getQuery().containsMembers([William]));
      assert.deepEqual(idsOf(await find(q, 'or')), sorted([withKate.id, withWilliam.id]));
    });
  }

  test('sorting by a custom attribute is accepted; too many ids are refused with 4310', T, async () => {
    const { Tom, Jerry, tom } = await setup('Jerry');
    // Any attribute can be a sort key (LeanCloud's _Conversation is schemaless); those
    // without it are still found.
    const b = await tom.createConversation({ members: [Jerry], name: 'b', rank: 2, unique: false });
    const a = await tom.createConversation({ members: [Jerry], name: 'a', rank: 1, unique: false });
    const none = await tom.createConversation({ members: [Jerry], name: 'none', unique: false });
    const byRank = await find(tom.getQuery().containsMembers([Tom]).ascending('rank'), 'sort by rank');
    assert.deepEqual(byRank.map(c => c.id).filter(id => id !== none.id), [a.id, b.id]);
    assert.deepEqual(idsOf(byRank), sorted([a.id, b.id, none.id]));
    const many = Array.from({ length: 1001 }, (_, i) => i.toString(16).padStart(24, '0'));
    const tooMany = await rejection(tom.getQuery().containedIn('objectId', many).find(), '1001 ids');
    assert.equal(tooMany.code, 4310, `error code (message: ${tooMany.message})`);
  });

  test('an unknown operator is refused with 4310', T, async () => {
    const { Tom, tom } = await setup();
    // equalTo passes any value through: a raw where the SDK does not check.
    const onName = await rejection(tom.getQuery().equalTo('name', { $frobnicate: 'x' }).find(), 'unknown operator on name');
    assert.equal(onName.code, 4310, `error code (message: ${onName.message})`);
    const onMembers = await rejection(tom.getQuery().equalTo('m', { $frobnicate: [Tom] }).find(), 'unknown operator on m');
    assert.equal(onMembers.code, 4310, `error code (message: ${onMembers.message})`);
  });
});
