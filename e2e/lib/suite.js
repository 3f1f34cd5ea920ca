'use strict';
// Runs a scenario group once per database: describe("<title> [sqlite]"), "[postgres]" (skipped
// with the reason when REALTIME_TEST_POSTGRES_DSN is unset), or "[external]" with E2E_SERVER_URL.

const { describe, before, after, afterEach } = require('node:test');
const { startServer, backends } = require('./server');
const { newRealtime, login, closeQuietly, ChildClient } = require('./clients');

/** Per-test options: every test is bounded so a broken server fails fast. */
const T = { timeout: Number(process.env.E2E_TEST_TIMEOUT_MS || 30000) };

/**
 * @param {string} title
 * @param {object} opts {args: extra app flags, realtime: newRealtime options, binary: 'chat'
 *   (default) or 'testserver', external: why the group cannot run against E2E_SERVER_URL}
 * @param {(ctx: object) => void} body declares the tests; ctx is filled in before() and has
 *   server, realtime, login(id, opts), child(opts).
 */
function eachBackend(title, opts, body) {
  for (const backend of backends()) {
    const skip = backend.name === 'external' && opts.external ? opts.external : backend.skip;
    describe(`${title} [${backend.name}]`, { skip }, () => {
      const ctx = { backend: backend.name, clients: [], children: [] };
      ctx.login = async (id, loginOpts) => {
        const c = await login(ctx.realtime, id, loginOpts);
        ctx.clients.push(c);
        return c;
      };
      ctx.child = childOpts => {
        const ch = new ChildClient(ctx.server, childOpts);
        ctx.children.push(ch);
        return ch;
      };
      before(async () => {
        ctx.server = await startServer({ db: backend.name, args: opts.args || [], binary: opts.binary });
        ctx.realtime = newRealtime(ctx.server, opts.realtime || {});
      });
      afterEach(async () => {
        const clients = ctx.clients.splice(0);
        const children = ctx.children.splice(0);
        await Promise.all(children.map(ch => ch.shutdown()));
        await closeQuietly(...clients);
      });
      after(async () => {
        // Closing the last client closes the SDK's socket; _close() (SDK internal) is the safety
        // net when a close failed, so no reconnect timer keeps the test process alive.
        if (ctx.realtime) ctx.realtime._close();
        if (ctx.server) await ctx.server.stop();
      });
      body(ctx);
    });
  }
}

module.exports = { eachBackend, T };
