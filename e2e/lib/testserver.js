'use strict';
// What the test-only app e2e/testserver offers besides the hub, as an app's own server would:
// POST /sign (signatures for the SDK's signature factories) and the service-conversation
// back office (POST /service/conversations, POST /service/messages) that goes through the
// hub's Go API. See e2e/testserver/main.go.

const { withTimeout, WAIT_MS } = require('./clients');

async function postJSON(server, path, body) {
  const res = await withTimeout(fetch(`${server.base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }), WAIT_MS, `POST ${path}`);
  const json = await res.json();
  if (!res.ok) {
    const err = new Error(`${path} ${res.status}: ${JSON.stringify(json)}`);
    err.code = json.code;
    throw err;
  }
  return json;
}

/** Asks the testserver's /sign for {signature, timestamp, nonce}. */
function sign(server, body) {
  return postJSON(server, '/sign', body);
}

/** A signature that is well-formed but wrong: the last hex digit changed. */
function spoil(result) {
  const s = result.signature;
  return { ...result, signature: s.slice(0, -1) + (s.endsWith('0') ? '1' : '0') };
}

/** Creates a service (system) conversation through the Go API; resolves to {id, createdAt}. */
function createServiceConversation(server, { name, attrs } = {}) {
  return postJSON(server, '/service/conversations', { name, attrs });
}

/**
 * Sends a TextMessage to a service conversation as the application (hub.Send with System):
 * a broadcast to every subscriber, or with `to` a message to those subscribers only.
 * Resolves to {id, timestamp}.
 */
function serviceSend(server, { convId, text, from, to }) {
  return postJSON(server, '/service/messages', { convId, text, from, to });
}

module.exports = { sign, spoil, createServiceConversation, serviceSend };
