'use strict';
// A client in its own process, driven over IPC by lib/clients.js (ChildClient). SDK 5.x allows
// one Realtime per appId per process, so a user's second device, or a client whose process is
// SIGKILLed (will messages), lives here. `init` says which SDK (sdk4 | sdk5, lib/sdk.js) and
// the Realtime options (lib/clients.js realtimeOptions).
//
// Requests: {id, op, args} -> {id, ok, result} | {id, ok: false, error: {message, code}}.
// Events:   {event, data}: message, unread, conflict, close, update, recall, delivered, read,
//           reconnect, disconnect.

const { loadSdk } = require('./sdk');
const { trustTestCertificates } = require('./tls-proxy');

// Set by init: the chosen SDK's classes.
let Realtime;
let Event;
let TextMessage;
let MessageQueryDirection;

let realtime;
let client;
const conversations = new Map();
const sentMessages = new Map(); // id -> Message sent from this process, for update/recall

function serializeMessage(m) {
  if (!m) return null;
  return {
    id: m.id,
    cid: m.cid,
    from: m.from,
    timestamp: m.timestamp instanceof Date ? m.timestamp.getTime() : m.timestamp,
    updatedAt: m.updatedAt instanceof Date ? m.updatedAt.getTime() : m.updatedAt,
    type: m.type,
    text: m.text,
    attributes: typeof m.getAttributes === 'function' ? m.getAttributes() : undefined,
    mentionList: m.mentionList,
    mentionedAll: m.mentionedAll,
    mentioned: m.mentioned,
    className: m.constructor && m.constructor.name,
  };
}

function serializeConversation(c) {
  return {
    id: c.id,
    name: c.name,
    members: c.members,
    unreadMessagesCount: c.unreadMessagesCount,
    unreadMessagesMentioned: c.unreadMessagesMentioned,
    lastMessage: serializeMessage(c.lastMessage),
    lastDeliveredAt: c.lastDeliveredAt ? c.lastDeliveredAt.getTime() : null,
    lastReadAt: c.lastReadAt ? c.lastReadAt.getTime() : null,
  };
}

function emit(event, data) {
  if (process.connected) process.send({ event, data });
}

function track(conversation) {
  if (conversations.has(conversation.id)) return conversation;
  conversations.set(conversation.id, conversation);
  conversation.on(Event.LAST_DELIVERED_AT_UPDATE, () => emit('delivered', serializeConversation(conversation)));
  conversation.on(Event.LAST_READ_AT_UPDATE, () => emit('read', serializeConversation(conversation)));
  return conversation;
}

async function conversation(cid) {
  if (conversations.has(cid)) return conversations.get(cid);
  const c = await client.getConversation(cid);
  if (!c) throw new Error(`conversation ${cid} not found`);
  return track(c);
}

/** Forwards the SDK's client events to the parent; called from the IMClient constructor. */
function attach(c) {
  c.on(Event.MESSAGE, (m, conv) => { track(conv); emit('message', serializeMessage(m)); });
  c.on(Event.UNREAD_MESSAGES_COUNT_UPDATE, convs => {
    convs.forEach(track);
    emit('unread', convs.map(serializeConversation));
  });
  c.on(Event.CONFLICT, payload => emit('conflict', payload || {}));
  c.on(Event.CLOSE, payload => emit('close', payload || {}));
  c.on(Event.MESSAGE_UPDATE, (m, conv, reason) => emit('update', { message: serializeMessage(m), cid: conv.id, reason: reason || null }));
  c.on(Event.MESSAGE_RECALL, (m, conv, reason) => emit('recall', { message: serializeMessage(m), cid: conv.id, reason: reason || null }));
  c.on(Event.RECONNECT, () => emit('reconnect', {}));
  c.on(Event.DISCONNECT, () => emit('disconnect', {}));
}

const ops = {
  async init({ sdk, options }) {
    ({ Realtime, Event, TextMessage, MessageQueryDirection } = loadSdk(sdk));
    // SDK 4.x reaches the app through the TLS proxy and its self-signed certificate.
    if (sdk === 'sdk4') trustTestCertificates();
    // Handlers attach in the IMClient constructor (a plugin hook), before the session opens,
    // so the unread sync pushed right after login is forwarded too.
    realtime = new Realtime({ ...options, plugins: [{ name: 'e2e-child', onIMClientCreate: attach }] });
    return true;
  },
  async login({ clientId, tag, isReconnect }) {
    const opts = {};
    if (tag !== undefined) opts.tag = tag;
    if (isReconnect !== undefined) opts.isReconnect = isReconnect;
    client = await realtime.createIMClient(clientId, opts);
    return client.id;
  },
  async createConversation({ members, name, unique }) {
    const opts = { members, name };
    if (unique !== undefined) opts.unique = unique;
    const c = await client.createConversation(opts);
    return serializeConversation(track(c));
  },
  async getConversation({ cid }) {
    return serializeConversation(await conversation(cid));
  },
  async send({ cid, text, options, mentionList, mentionAll, attributes }) {
    const c = await conversation(cid);
    const m = new TextMessage(text);
    if (mentionList) m.setMentionList(mentionList);
    if (mentionAll) m.mentionAll();
    if (attributes) m.setAttributes(attributes);
    const sent = await c.send(m, options || {});
    if (sent.id) sentMessages.set(sent.id, sent);
    return serializeMessage(sent);
  },
  async update({ cid, mid, text }) {
    const c = await conversation(cid);
    const old = sentMessages.get(mid);
    if (!old) throw new Error(`message ${mid} was not sent from this process`);
    const updated = await c.update(old, new TextMessage(text));
    sentMessages.set(mid, updated);
    return serializeMessage(updated);
  },
  async recall({ cid, mid }) {
    const c = await conversation(cid);
    const old = sentMessages.get(mid);
    if (!old) throw new Error(`message ${mid} was not sent from this process`);
    return serializeMessage(await c.recall(old));
  },
  async pause() {
    realtime.pause();
    return true;
  },
  async resume() {
    realtime.resume();
    return true;
  },
  async read({ cid }) {
    const c = await conversation(cid);
    await c.read();
    return serializeConversation(c);
  },
  async queryMessages({ cid, ...query }) {
    const c = await conversation(cid);
    if (query.direction === 'OLD_TO_NEW') query.direction = MessageQueryDirection.OLD_TO_NEW;
    for (const k of ['startTime', 'endTime', 'beforeTime', 'afterTime']) {
      if (query[k] !== undefined) query[k] = new Date(query[k]);
    }
    return (await c.queryMessages(query)).map(serializeMessage);
  },
  async fetchReceiptTimestamps({ cid }) {
    const c = await conversation(cid);
    await c.fetchReceiptTimestamps();
    return serializeConversation(c);
  },
  async close() {
    await client.close();
    return true;
  },
  async exit() {
    if (client) {
      try { await client.close(); } catch (_) { /* already closed */ }
    }
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on('message', async ({ id, op, args }) => {
  try {
    if (!ops[op]) throw new Error(`unknown op ${op}`);
    const result = await ops[op](args || {});
    process.send({ id, ok: true, result });
  } catch (err) {
    process.send({ id, ok: false, error: { message: String(err && err.message || err), code: err && err.code } });
  }
});
process.on('disconnect', () => process.exit(0));
