// The chat page: plain browser JavaScript on the official LeanCloud realtime
// SDK (window.AV from im-browser.min.js), talking to the Hub mounted at /im.
'use strict';

(function () {
  // Without the SDK bundle (no local copy and the CDN blocked or offline)
  // the page would do nothing: say so, and how to fix it.
  if (typeof AV === 'undefined' || !AV.Realtime) {
    document.getElementById('sdk-missing').hidden = false;
    document.getElementById('login-button').disabled = true;
    console.error('leancloud-realtime SDK bundle not loaded: cd e2e && npm ci, allow the CDN, or -sdk-dir');
    return;
  }
  const { Realtime, TextMessage, TypedMessage, RecalledMessage, Event, MessageStatus, messageType, messageField } = AV;

  // "Tom is typing..." travels as a custom typed message, sent transient so
  // the server neither stores it nor counts it as unread.
  class TypingMessage extends TypedMessage {}
  messageType(101)(TypingMessage);
  messageField(['typing'])(TypingMessage);

  const TYPING_SEND_EVERY = 2000; // ms between two typing notices while typing
  const TYPING_SHOW_FOR = 4000; // ms a notice stays without a new one
  const KEYWORD_FILTERED = -4408; // patch reason code of the keyword filter
  const PAGE = 50; // messages per history page

  const state = {
    realtime: null,
    client: null,
    me: '',
    convs: new Map(), // conversation id -> Conversation
    watched: new WeakSet(), // conversations whose receipt events we listen to
    messages: new Map(), // conversation id -> [Message], oldest first
    loaded: new Set(), // conversation ids whose history was fetched
    older: new Set(), // conversation ids that may have older history to load
    current: null, // id of the open conversation
    typing: new Map(), // conversation id -> Map(client id -> timer)
    notes: new Map(), // message id -> 'edited' | 'filtered'
    earlyPatches: new Map(), // message id -> patched message that beat its send's ack
    editing: null, // the message being edited
    lastTypingSent: 0,
  };

  const $ = (id) => document.getElementById(id);

  // ---------- helpers ----------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function showStatus(text) {
    const s = $('status');
    s.textContent = text || '';
    s.hidden = !text;
  }

  function time(date) {
    if (!date) return '';
    return new Date(date).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function ms(date) {
    return date ? new Date(date).getTime() : 0;
  }

  function others(conv) {
    return (conv.members || []).filter((m) => m !== state.me);
  }

  function convTitle(conv) {
    const rest = others(conv);
    if (conv.members && conv.members.length > 2 && conv.name) return conv.name;
    return rest.join(', ') || conv.name || '(just you)';
  }

  function messageText(msg) {
    if (msg instanceof RecalledMessage) return 'This message was recalled';
    if (msg instanceof TextMessage) return msg.getText() || '';
    if (typeof msg.content === 'string') return msg.content;
    return '[unsupported message]';
  }

  // Mentions are written as @name in the text; names that are members of
  // the conversation go into the mention list, and @all mentions everyone.
  function mentionsIn(text, conv) {
    const list = new Set();
    let all = false;
    for (const [, name] of text.matchAll(/@([^\s@,.!?;:]+)/g)) {
      if (name === 'all') all = true;
      else if (name !== state.me && (conv.members || []).includes(name)) list.add(name);
    }
    return { list: [...list], all };
  }

  function textMessage(text, conv) {
    const msg = new TextMessage(text);
    const { list, all } = mentionsIn(text, conv);
    if (list.length) msg.setMentionList(list);
    if (all) msg.mentionAll();
    return msg;
  }

  // The text with @mentions wrapped in spans; built from DOM nodes so no
  // message text is ever parsed as HTML.
  function richText(text) {
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(/@[^\s@,.!?;:]+/g)) {
      frag.append(text.slice(last, m.index), el('span', { class: 'mention' }, m[0]));
      last = m.index + m[0].length;
    }
    frag.append(text.slice(last));
    return frag;
  }

  // ---------- conversations ----------

  function addConv(conv) {
    if (!conv || conv.transient) return;
    state.convs.set(conv.id, conv);
    if (!state.watched.has(conv)) {
      state.watched.add(conv);
      const rerender = () => { if (state.current === conv.id) renderMessages(); };
      conv.on(Event.LAST_DELIVERED_AT_UPDATE, rerender);
      conv.on(Event.LAST_READ_AT_UPDATE, rerender);
      conv.on(Event.MEMBERS_JOINED, () => { renderConvs(); renderHeader(); });
      conv.on(Event.MEMBERS_LEFT, () => { renderConvs(); renderHeader(); });
    }
  }

  function sortedConvs() {
    return [...state.convs.values()].sort((a, b) =>
      ms(b.lastMessageAt || b.createdAt) - ms(a.lastMessageAt || a.createdAt));
  }

  function renderConvs() {
    const total = [...state.convs.values()]
      .reduce((n, c) => n + (c.id === state.current ? 0 : c.unreadMessagesCount || 0), 0);
    document.title = (total ? `(${total}) ` : '') + state.me + ' \u2014 LeanMessage chat';
    const list = $('convs');
    list.replaceChildren(...sortedConvs().map((conv) => {
      const last = conv.lastMessage && !(conv.lastMessage instanceof TypingMessage)
        ? (conv.lastMessage.from === state.me ? 'You: ' : conv.lastMessage.from + ': ') + messageText(conv.lastMessage)
        : 'No messages yet';
      const unread = conv.id === state.current ? 0 : conv.unreadMessagesCount;
      return el('li', {
        class: 'conv' + (conv.id === state.current ? ' active' : ''),
        dataset: { id: conv.id, title: convTitle(conv) },
        onclick: () => openConv(conv.id),
      },
      el('span', { class: 'conv-name' }, convTitle(conv)),
      el('span', { class: 'conv-last' }, last),
      el('span', { class: 'conv-badges' },
        unread && conv.unreadMessagesMentioned ? el('span', { class: 'mention-flag', title: 'You were mentioned' }, '@') : null,
        unread ? el('span', { class: 'unread', title: unread + ' unread' }, String(unread)) : null));
    }));
  }

  function renderHeader() {
    const conv = state.convs.get(state.current);
    $('conv-title').textContent = conv ? convTitle(conv) : 'No conversation open';
    $('conv-members').textContent = conv ? 'Members: ' + (conv.members || []).join(', ') : '';
    $('composer').hidden = !conv;
    // In groups, one click writes a mention.
    const bar = $('mention-bar');
    bar.hidden = !conv || (conv.members || []).length <= 2;
    bar.replaceChildren(...(bar.hidden ? [] : ['Mention:', ...[...others(conv), 'all'].map((name) =>
      el('button', { type: 'button', class: 'chip', dataset: { name }, onclick: () => insertMention(name) }, '@' + name))]));
  }

  function insertMention(name) {
    const input = $('text');
    const at = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, at);
    const token = (before && !/\s$/.test(before) ? ' ' : '') + '@' + name + ' ';
    input.value = before + token + input.value.slice(input.selectionEnd ?? at);
    input.focus();
    input.setSelectionRange(at + token.length, at + token.length);
    sendTyping();
  }

  async function openConv(id) {
    state.current = id;
    cancelEdit();
    renderConvs();
    renderHeader();
    renderMessages();
    renderTyping();
    if (!state.loaded.has(id)) await loadHistory(id);
    markRead(state.convs.get(id));
    $('text').focus();
  }

  // loadHistory fetches the newest messages and merges them with what the
  // page has: the server's copy wins (edits and recalls made while this page
  // was away), messages still being sent stay at the end.
  async function loadHistory(id) {
    const conv = state.convs.get(id);
    state.loaded.add(id);
    try {
      const history = await conv.queryMessages({ limit: PAGE });
      // a full page that reaches back past what we hold: there may be more
      const held = messagesOf(id).find((m) => m.id);
      if (history.length === PAGE && (!held || ms(history[0].timestamp) <= ms(held.timestamp))) state.older.add(id);
      const byId = new Map();
      const pending = [];
      for (const m of messagesOf(id)) (m.id ? byId.set(m.id, m) : pending.push(m));
      for (const m of history) byId.set(m.id, m);
      const merged = [...byId.values()].sort((a, b) => ms(a.timestamp) - ms(b.timestamp));
      state.messages.set(id, merged.concat(pending));
      // receipts that arrived while we were away
      await conv.fetchReceiptTimestamps().catch(() => {});
    } catch (err) {
      state.loaded.delete(id);
      showStatus('Could not load history: ' + err.message);
    }
    if (state.current === id) renderMessages();
  }

  // loadOlder fetches the page of history before the oldest message shown,
  // keeping the view where it was.
  async function loadOlder() {
    const id = state.current;
    const conv = state.convs.get(id);
    const oldest = messagesOf(id).find((m) => m.id);
    if (!conv || !oldest) return;
    try {
      const older = await conv.queryMessages({ startTime: oldest.timestamp, startMessageId: oldest.id, limit: PAGE });
      if (older.length < PAGE) state.older.delete(id);
      const list = messagesOf(id);
      const ids = new Set(list.map((m) => m.id));
      state.messages.set(id, older.filter((m) => !ids.has(m.id)).concat(list));
    } catch (err) {
      showStatus('Could not load older messages: ' + err.message);
      return;
    }
    if (state.current !== id) return;
    const box = $('messages');
    const fromBottom = box.scrollHeight - box.scrollTop;
    renderMessages();
    box.scrollTop = box.scrollHeight - fromBottom;
  }

  function markRead(conv) {
    if (!conv || conv.id !== state.current || document.visibilityState !== 'visible') return;
    if (conv.unreadMessagesCount > 0) conv.read().catch(() => {});
  }

  // ---------- messages ----------

  function messagesOf(id) {
    if (!state.messages.has(id)) state.messages.set(id, []);
    return state.messages.get(id);
  }

  function addMessage(conv, msg) {
    const list = messagesOf(conv.id);
    if (msg.id && list.some((m) => m.id === msg.id)) return;
    list.push(msg);
  }

  // replaceMessage swaps in an edited or recalled copy (same id).
  function replaceMessage(convId, msg) {
    const list = messagesOf(convId);
    const i = list.findIndex((m) => m.id === msg.id);
    if (i < 0) return false;
    list[i] = msg;
    return true;
  }

  function receiptState(msg, conv) {
    if (msg.status === MessageStatus.SENDING || msg.status === MessageStatus.NONE) return 'sending';
    if (msg.status === MessageStatus.FAILED) return 'failed';
    const ts = ms(msg.timestamp);
    if (ms(conv.lastReadAt) >= ts) return 'read';
    if (ms(conv.lastDeliveredAt) >= ts || msg.status === MessageStatus.DELIVERED) return 'delivered';
    return 'sent';
  }

  const RECEIPT_MARK = { sending: '\u25F7', sent: '\u2713', delivered: '\u2713\u2713', read: '\u2713\u2713', failed: 'failed' };
  const RECEIPT_TITLE = { sending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };

  function renderMessage(msg, conv) {
    const mine = !msg.from || msg.from === state.me; // no sender yet: ours, being sent
    const recalled = msg instanceof RecalledMessage;
    // an edit made while this page was away shows as updatedAt from history
    const edited = !recalled && ms(msg.updatedAt) > ms(msg.timestamp);
    const note = state.notes.get(msg.id) || (edited ? 'edited' : null);
    const classes = ['msg'];
    if (mine) classes.push('mine');
    if (recalled) classes.push('recalled');
    if (!mine && msg.mentioned) classes.push('mentioned');
    const receipt = mine && !recalled && (conv.members || []).length === 2 ? receiptState(msg, conv) : null;
    const canChange = mine && !recalled && msg.id && (msg.status === MessageStatus.SENT || msg.status === MessageStatus.DELIVERED);
    return el('li', { class: classes.join(' '), dataset: { id: msg.id || '', from: msg.from || state.me } },
      el('div', { class: 'meta' },
        el('span', { class: 'from' }, mine ? 'You' : msg.from),
        el('time', {}, time(msg.timestamp)),
        note ? el('span', { class: 'note ' + note }, note) : null),
      el('div', { class: 'bubble' }, recalled ? messageText(msg) : richText(messageText(msg))),
      mine ? el('div', { class: 'foot' },
        canChange ? el('button', { type: 'button', class: 'edit', onclick: () => startEdit(msg) }, 'Edit') : null,
        canChange ? el('button', { type: 'button', class: 'recall', onclick: () => recall(msg) }, 'Recall') : null,
        receipt ? el('span', { class: 'ticks', dataset: { receipt }, title: RECEIPT_TITLE[receipt] }, RECEIPT_MARK[receipt]) : null) : null);
  }

  function renderMessages() {
    const box = $('messages');
    const conv = state.convs.get(state.current);
    if (!conv) { box.replaceChildren(); return; }
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const items = messagesOf(conv.id).map((m) => renderMessage(m, conv));
    if (state.older.has(conv.id)) {
      items.unshift(el('li', { class: 'older' },
        el('button', { type: 'button', id: 'load-older', class: 'link', onclick: loadOlder }, 'Load older messages')));
    }
    box.replaceChildren(...items);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  async function send(text) {
    const conv = state.convs.get(state.current);
    if (!conv || !text.trim()) return;
    const msg = textMessage(text, conv);
    addMessage(conv, msg);
    state.lastTypingSent = 0;
    renderMessages();
    $('messages').scrollTop = $('messages').scrollHeight;
    try {
      // receipts exist for 1:1 conversations only
      await conv.send(msg, { receipt: (conv.members || []).length === 2 });
      const early = state.earlyPatches.get(msg.id);
      if (early) {
        state.earlyPatches.delete(msg.id);
        const list = messagesOf(conv.id);
        list[list.indexOf(msg)] = early;
      }
    } catch (err) {
      showStatus('Not sent: ' + err.message);
    }
    renderMessages();
    renderConvs();
  }

  function startEdit(msg) {
    state.editing = msg;
    $('edit-banner').hidden = false;
    $('text').value = messageText(msg);
    $('send').textContent = 'Save';
    $('text').focus();
  }

  function cancelEdit() {
    if (!state.editing) return;
    state.editing = null;
    $('edit-banner').hidden = true;
    $('text').value = '';
    $('send').textContent = 'Send';
  }

  async function saveEdit(text) {
    const conv = state.convs.get(state.current);
    const old = state.editing;
    cancelEdit();
    if (!conv || !old || !text.trim() || text === messageText(old)) return;
    try {
      const updated = await conv.update(old, textMessage(text, conv));
      replaceMessage(conv.id, updated);
      state.notes.set(updated.id, 'edited');
    } catch (err) {
      showStatus('Could not edit: ' + err.message);
    }
    renderMessages();
    renderConvs();
  }

  async function recall(msg) {
    const conv = state.convs.get(state.current);
    if (!conv) return;
    if (state.editing === msg) cancelEdit();
    try {
      const recalled = await conv.recall(msg);
      replaceMessage(conv.id, recalled);
      state.notes.delete(recalled.id);
    } catch (err) {
      showStatus('Could not recall: ' + err.message);
    }
    renderMessages();
    renderConvs();
  }

  // ---------- typing ----------

  // sendTyping tells the others we are typing (at most every
  // TYPING_SEND_EVERY ms), or that we stopped: the text was cleared unsent.
  function sendTyping(typing = true) {
    const conv = state.convs.get(state.current);
    const now = Date.now();
    if (!conv || state.editing) return;
    if (typing ? now - state.lastTypingSent < TYPING_SEND_EVERY : !state.lastTypingSent) return;
    state.lastTypingSent = typing ? now : 0;
    const notice = new TypingMessage();
    notice.typing = typing;
    conv.send(notice, { transient: true }).catch(() => {});
  }

  function onTyping(from, convId) {
    if (from === state.me) return;
    const who = state.typing.get(convId) || new Map();
    state.typing.set(convId, who);
    clearTimeout(who.get(from));
    who.set(from, setTimeout(() => stopTyping(from, convId), TYPING_SHOW_FOR));
    renderTyping();
  }

  function stopTyping(from, convId) {
    const who = state.typing.get(convId);
    if (!who || !who.has(from)) return;
    clearTimeout(who.get(from));
    who.delete(from);
    renderTyping();
  }

  function renderTyping() {
    const names = [...(state.typing.get(state.current) || new Map()).keys()];
    $('typing').textContent = names.length === 0 ? ''
      : names.join(', ') + (names.length === 1 ? ' is typing\u2026' : ' are typing\u2026');
  }

  // Typing notices are taken out before the SDK dispatches them, so they
  // never count as unread nor become a conversation's last message.
  const typingPlugin = {
    name: 'chat-typing',
    messageClasses: [TypingMessage],
    beforeMessageDispatch(message, conversation) {
      if (!(message instanceof TypingMessage)) return true;
      if (message.typing) onTyping(message.from, conversation.id);
      else stopTyping(message.from, conversation.id);
      return false;
    },
  };

  // ---------- client ----------

  function listen(client) {
    client.on(Event.MESSAGE, (msg, conv) => {
      addConv(conv);
      stopTyping(msg.from, conv.id);
      addMessage(conv, msg);
      if (conv.id === state.current) {
        renderMessages();
        markRead(conv);
      }
      renderConvs();
    });
    client.on(Event.MESSAGE_UPDATE, (msg, conv, reason) => {
      addConv(conv);
      state.notes.set(msg.id, reason && reason.code === KEYWORD_FILTERED ? 'filtered' : 'edited');
      if (!replaceMessage(conv.id, msg) && msg.from === state.me) state.earlyPatches.set(msg.id, msg);
      if (conv.id === state.current) renderMessages();
      renderConvs();
    });
    client.on(Event.MESSAGE_RECALL, (msg, conv, reason) => {
      addConv(conv);
      if (reason && reason.code === KEYWORD_FILTERED) state.notes.set(msg.id, 'filtered');
      else state.notes.delete(msg.id);
      if (!replaceMessage(conv.id, msg) && msg.from === state.me) state.earlyPatches.set(msg.id, msg);
      if (conv.id === state.current) renderMessages();
      renderConvs();
    });
    client.on(Event.UNREAD_MESSAGES_COUNT_UPDATE, (convs) => {
      convs.forEach(addConv);
      const open = convs.find((c) => c.id === state.current);
      if (open) markRead(open);
      renderConvs();
    });
    client.on(Event.INVITED, (payload, conv) => { addConv(conv); renderConvs(); });
    client.on(Event.KICKED, (payload, conv) => {
      state.convs.delete(conv.id);
      if (state.current === conv.id) { state.current = null; renderHeader(); renderMessages(); }
      renderConvs();
    });
    client.on(Event.DISCONNECT, () => showStatus('Disconnected, reconnecting\u2026'));
    client.on(Event.RECONNECT, () => {
      showStatus('');
      // Messages sent while we were offline reach us as unread counts
      // only; fetch the open conversation's history again.
      state.loaded.clear();
      if (state.current) loadHistory(state.current).then(() => markRead(state.convs.get(state.current)));
    });
    client.on(Event.CONFLICT, () => {
      showStatus('You logged in somewhere else; this window is signed out.');
      showLogin();
    });
  }

  async function login(name) {
    if (!state.realtime) {
      const config = await fetch('config.json').then((r) => {
        if (!r.ok) throw new Error('config.json: HTTP ' + r.status);
        return r.json();
      });
      // One Realtime per app id and page; it is reused for later logins.
      state.realtime = new Realtime({
        appId: config.appId,
        appKey: config.appKey || '',
        server: location.origin + '/im',
        plugins: [typingPlugin],
      });
    }
    // The tag makes it single sign-on per name, LeanCloud style: logging
    // in as the same name in another window signs this one out (CONFLICT).
    const client = await state.realtime.createIMClient(name, { tag: 'Web' });
    state.client = client;
    state.me = client.id;
    listen(client);
    const convs = await client.getQuery()
      .containsMembers([state.me])
      .withLastMessagesRefreshed(true)
      .limit(100)
      .find();
    convs.forEach(addConv);
    localStorage.setItem('chat-name', name);
    showApp();
  }

  function reset() {
    state.convs.clear();
    state.messages.clear();
    state.loaded.clear();
    state.older.clear();
    state.notes.clear();
    state.earlyPatches.clear();
    state.typing.forEach((who) => who.forEach((t) => clearTimeout(t)));
    state.typing.clear();
    state.current = null;
    state.editing = null;
    state.watched = new WeakSet();
  }

  function showApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('me').textContent = state.me;
    renderConvs();
    renderHeader();
    renderMessages();
  }

  function showLogin() {
    state.client = null;
    reset();
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-button').disabled = false;
    document.title = 'LeanMessage chat';
  }

  // ---------- wiring ----------

  $('login-name').value = localStorage.getItem('chat-name') || '';

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('login-name').value.trim();
    if (!name) return;
    $('login-button').disabled = true;
    $('login-error').hidden = true;
    try {
      await login(name);
    } catch (err) {
      $('login-error').textContent = 'Could not log in: ' + err.message;
      $('login-error').hidden = false;
      $('login-button').disabled = false;
    }
  });

  $('logout').addEventListener('click', async () => {
    const client = state.client;
    showLogin();
    if (client) await client.close().catch(() => {});
  });

  $('new-chat').addEventListener('submit', async (e) => {
    e.preventDefault();
    const members = $('new-members').value.split(/[\s,]+/).filter((m) => m && m !== state.me);
    if (!members.length) return;
    const name = $('new-name').value.trim() || [state.me, ...members].join(' & ');
    $('new-chat-button').disabled = true;
    try {
      const conv = await state.client.createConversation({ members, name, unique: true });
      addConv(conv);
      $('new-members').value = '';
      $('new-name').value = '';
      await openConv(conv.id);
    } catch (err) {
      showStatus('Could not start the chat: ' + err.message);
    }
    $('new-chat-button').disabled = false;
  });

  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('text').value;
    if (state.editing) {
      saveEdit(text);
      return;
    }
    $('text').value = '';
    send(text);
  });

  $('text').addEventListener('input', () => sendTyping($('text').value !== ''));
  $('text').addEventListener('keydown', (e) => { if (e.key === 'Escape') cancelEdit(); });
  $('edit-cancel').addEventListener('click', cancelEdit);

  document.addEventListener('visibilitychange', () => markRead(state.convs.get(state.current)));
})();
