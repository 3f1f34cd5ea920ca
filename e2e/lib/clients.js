'use strict';
// Helpers for driving the unmodified leancloud-realtime SDK (4.x or 5.x, lib/sdk.js) from
// node:test. A server object says which SDK talks to it (server.sdk) and what that SDK's
// `server` option is (server.sdkServer); lib/suite.js fills both in.

const crypto = require('node:crypto');
const path = require('node:path');
const { fork } = require('node:child_process');
const { EventEmitter } = require('node:events');
const { RUN_ID } = require('./server');
const { loadSdk, loadedSdks, sdkOf } = require('./sdk');

// Event names are the same strings in 4.x and 5.x (newRealtime checks it), so tests use one.
const { Event } = loadSdk('sdk5');

/** Default bound for every wait: a broken server fails the test instead of hanging it. */
const WAIT_MS = Number(process.env.E2E_WAIT_MS || 10000);

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

let idSeq = 0;
/**
 * Client ids unique to this run and call: the PostgreSQL database is shared across runs, and
 * the SDK merges conversations with the same members (unique: true), so every scenario needs
 * fresh ids. ids('Tom', 'Jerry') -> {Tom: 'Tom-3-ab12cd34', Jerry: 'Jerry-3-ab12cd34'}.
 */
function ids(...names) {
  idSeq += 1;
  const suffix = `${idSeq}-${RUN_ID}${crypto.randomBytes(2).toString('hex')}`;
  const out = {};
  for (const n of names) out[n] = `${n}-${suffix}`;
  return out;
}

/**
 * The Realtime options that point an SDK at the server. 5.x: `server` is the http base + '/im'.
 * 4.x: `server` is a host[/path] without scheme that 4.x always reaches over https, so it is
 * the TLS proxy in front of the app (lib/tls-proxy.js): '127.0.0.1:PROXYPORT/im'.
 */
function realtimeOptions(server, { noBinary = false } = {}) {
  const sdk = server.sdk || 'sdk5';
  if (sdk === 'sdk4' && !server.sdkServer) throw new Error('SDK 4.x needs server.sdkServer (the TLS proxy host + /im)');
  return {
    appId: server.appId,
    appKey: server.appKey,
    server: server.sdkServer || server.imServer,
    noBinary,
  };
}

/**
 * A Realtime of the server's SDK (server.sdk, default sdk5). SDK 5.x allows one Realtime per
 * appId per process (4.x does not check); the harness gives every server its own appId, so
 * call this once per server. `extra` are further Realtime options (e.g. 4.x
 * pushOfflineMessages).
 */
function newRealtime(server, { noBinary = false, plugins = [], messageClasses = [], extra = {} } = {}) {
  const sdk = server.sdk || 'sdk5';
  const SDK = loadSdk(sdk);
  if (JSON.stringify(SDK.Event) !== JSON.stringify(Event)) throw new Error(`${sdk} has other Event names than sdk5`);
  const realtime = new SDK.Realtime({
    ...realtimeOptions(server, { noBinary }),
    ...extra,
    plugins: [recordingPlugin(sdk), ...plugins],
  });
  if (messageClasses.length) realtime.register(messageClasses);
  return realtime;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The client events every IMClient records from its creation on (see eventsOf). */
const CLIENT_EVENTS = [
  Event.MESSAGE, Event.UNREAD_MESSAGES_COUNT_UPDATE, Event.CONFLICT, Event.CLOSE,
  Event.MESSAGE_UPDATE, Event.MESSAGE_RECALL, Event.DISCONNECT, Event.RECONNECT, Event.RECONNECT_ERROR,
];

/**
 * An SDK plugin that attaches a Recorder to each IMClient in its constructor, before the
 * session opens: the unread sync pushed right after login is then never missed.
 */
function recordingPlugin(sdk) {
  return {
    name: 'e2e-recorder',
    onIMClientCreate(client) {
      Object.defineProperty(client, '__e2eEvents', { value: new Recorder(client, CLIENT_EVENTS) });
      Object.defineProperty(client, '__e2eSdk', { value: sdk });
    },
  };
}

/** The Recorder of a client created through newRealtime(): every event since creation. */
function eventsOf(client) {
  if (!client.__e2eEvents) throw new Error('client was not created through newRealtime()');
  return client.__e2eEvents;
}

/**
 * Waits until the client's recorded UNREAD_MESSAGES_COUNT_UPDATE events include conversation
 * `cid` with a count satisfying `countOk`; resolves with that Conversation. On timeout the
 * error lists every count seen for `cid`, which tells "no sync" from "wrong count".
 */
async function waitUnread(client, cid, countOk = () => true, ms = WAIT_MS) {
  const events = eventsOf(client);
  const match = convs => convs.some(c => c.id === cid && countOk(c.unreadMessagesCount));
  try {
    const [convs] = await events.wait(Event.UNREAD_MESSAGES_COUNT_UPDATE, match, ms);
    return convs.find(c => c.id === cid && countOk(c.unreadMessagesCount));
  } catch (err) {
    const seen = events.all(Event.UNREAD_MESSAGES_COUNT_UPDATE)
      .map(([convs]) => convs.filter(c => c.id === cid).map(c => c.unreadMessagesCount))
      .flat();
    err.message += `; unread counts seen for ${cid}: [${seen.join(', ')}]`;
    throw err;
  }
}

/** Logs a client in with a timeout. */
function login(realtime, id, opts = {}) {
  return withTimeout(realtime.createIMClient(id, opts), WAIT_MS, `login of ${id}`);
}

/**
 * Waits for `event` on `emitter` whose arguments satisfy `predicate(...args)`; resolves with
 * the argument array. Attach it BEFORE triggering the action that causes the event.
 */
function waitFor(emitter, event, predicate = () => true, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      let ok;
      try {
        ok = predicate(...args);
      } catch (err) {
        cleanup();
        reject(err);
        return;
      }
      if (ok) {
        cleanup();
        resolve(args);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for event "${event}"`));
    }, ms);
    const cleanup = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
    };
    emitter.on(event, onEvent);
  });
}

/**
 * Resolves after `ms` if no `event` satisfying `predicate` happened; rejects with the offending
 * arguments otherwise. Used for "must not be delivered" checks (a bounded wait, not a timing
 * threshold: the assertion is about absence).
 */
function expectNoEvent(emitter, event, predicate = () => true, ms = 2000) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      if (!predicate(...args)) return;
      cleanup();
      reject(new Error(`unexpected event "${event}": ${describe(args[0])}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve();
    }, ms);
    const cleanup = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
    };
    emitter.on(event, onEvent);
  });
}

/**
 * Records every listed event of an emitter, so that a test can assert on events that may have
 * arrived before it started waiting (e.g. the unread sync right after login).
 */
class Recorder {
  constructor(emitter, events) {
    this.emitter = emitter;
    this.entries = [];
    this.bus = new EventEmitter();
    this.handlers = events.map(event => {
      const h = (...args) => {
        this.entries.push({ event, args });
        this.bus.emit(event, ...args);
      };
      emitter.on(event, h);
      return [event, h];
    });
  }

  /** Resolves with the args of the first recorded (or future) `event` matching `predicate`. */
  wait(event, predicate = () => true, ms = WAIT_MS) {
    const hit = this.entries.find(e => e.event === event && predicate(...e.args));
    if (hit) return Promise.resolve(hit.args);
    return waitFor(this.bus, event, predicate, ms);
  }

  all(event) {
    return this.entries.filter(e => e.event === event).map(e => e.args);
  }

  clear() {
    this.entries = [];
  }

  stop() {
    for (const [event, h] of this.handlers) this.emitter.off(event, h);
  }
}

/** A one-line description of a message for failure output. */
function describe(m) {
  if (!m || typeof m !== 'object') return String(m);
  if (loadedSdks().some(SDK => m instanceof SDK.Message)) {
    return JSON.stringify({ id: m.id, from: m.from, cid: m.cid, type: m.type, text: m.text, content: m.content });
  }
  return String(m);
}

/** Sends a TextMessage (of the conversation's SDK) and returns the sent message. */
function sendText(conversation, text, options) {
  const { TextMessage } = loadSdk(sdkOf(conversation));
  return withTimeout(conversation.send(new TextMessage(text), options), WAIT_MS, `send of "${text}"`);
}

/**
 * Simulates the server (or the network) dropping the socket under the SDK: terminates the
 * underlying ws without a close handshake. The SDK sees an abnormal close and reconnects with
 * session open r:true. Uses SDK internals (acceptable in tests only).
 */
function dropSocket(client) {
  const connection = client._connection;
  const ws = connection && connection._ws;
  if (!ws) throw new Error('no underlying websocket to drop (SDK internals changed?)');
  if (typeof ws.terminate === 'function') ws.terminate();
  else ws.close();
}

/**
 * Records every command the server sends on a client's socket from now on, decoded with the
 * SDK's own protobuf classes (5.x exports them as Protocols, 4.x as Protocals, sic). SDK
 * internals, tests only: for what the SDK does not expose (an ack's appMsg) or does on its own
 * (4.x and 5.x raise UNREAD_MESSAGES_COUNT_UPDATE for every live message, so only the wire
 * tells whether the server sent an unread notification). The socket is shared by every client
 * of the Realtime. Returns {commands, stop()}.
 */
function tapCommands(client) {
  const SDK = loadSdk(sdkOf(client));
  const { GenericCommand } = SDK.Protocols || SDK.Protocals;
  const ws = client._connection && client._connection._ws;
  if (!ws || typeof ws.on !== 'function') throw new Error('no underlying ws to observe (SDK internals changed?)');
  const commands = [];
  const onMessage = data => {
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data);
      commands.push(GenericCommand.decode(bytes));
    } catch (_) {
      // not a command we can decode: ignore
    }
  };
  ws.on('message', onMessage);
  return { commands, stop: () => ws.off('message', onMessage) };
}

/**
 * Resolves with the error `promise` rejects with (bounded); fails the test if it resolves.
 * For refusals: `const err = await rejection(conv.join(), 'join'); assert.equal(err.code, 4308)`.
 */
function rejection(promise, what, ms = WAIT_MS) {
  return withTimeout(Promise.resolve(promise), ms, what).then(
    v => {
      let shown = v;
      if (Array.isArray(v)) shown = `${v.length} results: ${v.map(x => (x && x.id) || x).join(', ')}`;
      else if (v && typeof v === 'object') shown = v.id || JSON.stringify(v);
      throw new Error(`${what} resolved (${shown}); expected a rejection`);
    },
    e => {
      if (e && /^timed out after/.test(e.message)) throw e;
      return e;
    },
  );
}

/** Closes clients and the realtime, ignoring errors (for after() hooks). */
async function closeQuietly(...things) {
  for (const t of things) {
    if (!t) continue;
    try {
      await withTimeout(Promise.resolve(t.close()), 5000, 'close');
    } catch (_) {
      // best effort: the server may already be gone
    }
  }
}

// ---------------------------------------------------------------------------
// Child processes: a second device of a user, or a client whose process gets killed.

/**
 * A client running in a child process (lib/child.js), driven over IPC. Its SDK events arrive
 * as plain objects ('message', 'unread', 'conflict', 'update', 'recall', 'close', ...);
 * `.events` is a Recorder over them.
 */
class ChildClient extends EventEmitter {
  constructor(server, { noBinary = false, extra = {} } = {}) {
    super();
    this.proc = fork(path.join(__dirname, 'child.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env },
    });
    this.seq = 0;
    this.pending = new Map();
    this.exited = new Promise(resolve => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.proc.on('message', msg => {
      if (msg.event) {
        this.emit(msg.event, msg.data);
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else {
        const err = new Error(msg.error.message);
        err.code = msg.error.code;
        p.reject(err);
      }
    });
    this.exited.then(({ code, signal }) => {
      for (const p of this.pending.values()) p.reject(new Error(`child exited (code ${code}, signal ${signal})`));
      this.pending.clear();
    });
    this.events = new Recorder(this, ['message', 'unread', 'conflict', 'close', 'update', 'recall', 'delivered', 'read', 'reconnect', 'disconnect']);
    this.sdk = server.sdk || 'sdk5';
    this.ready = this.call('init', { sdk: this.sdk, options: { ...realtimeOptions(server, { noBinary }), ...extra } });
  }

  call(op, args = {}, ms = WAIT_MS) {
    const id = ++this.seq;
    const p = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (!this.proc.connected) {
        this.pending.delete(id);
        reject(new Error('child is not connected'));
        return;
      }
      this.proc.send({ id, op, args });
    });
    return withTimeout(p, ms, `child op ${op}`);
  }

  /** Logs in; resolves with the client id. */
  async login(clientId, opts = {}) {
    await this.ready;
    return this.call('login', { clientId, ...opts });
  }

  /** SIGKILLs the process: its socket drops without a logout. */
  async kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** Closes the client (logout) and ends the process. */
  async shutdown() {
    try {
      if (this.proc.connected) await this.call('exit', {}, 5000);
    } catch (_) {
      // fall through to kill
    }
    await withTimeout(this.exited, 5000, 'child exit').catch(() => this.kill());
  }
}

module.exports = {
  Event,
  WAIT_MS,
  ids,
  newRealtime,
  realtimeOptions,
  login,
  eventsOf,
  waitUnread,
  waitFor,
  expectNoEvent,
  Recorder,
  sendText,
  dropSocket,
  tapCommands,
  closeQuietly,
  withTimeout,
  rejection,
  sleep,
  describe,
  ChildClient,
};
