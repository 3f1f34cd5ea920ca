'use strict';
// Runs a scenario group once per SDK version and database: describe("<title> [sdk4 sqlite]"),
// "[sdk5 postgres]" (skipped with the reason when REALTIME_TEST_POSTGRES_DSN is unset), or
// "[sdk5 external]" with E2E_SERVER_URL. E2E_SDK=4|5|all (default all) picks the versions.
// SDK 4.x groups reach the app through a TLS proxy (lib/tls-proxy.js) started next to it.

const { describe, before, after, afterEach } = require('node:test');
const { startServer, backends } = require('./server');
const { newRealtime, login, closeQuietly, ChildClient } = require('./clients');
const { sdks, loadSdk } = require('./sdk');
const { startTlsProxy, trustTestCertificates } = require('./tls-proxy');

/** Per-test options: every test is bounded so a broken server fails fast. */
const T = { timeout: Number(process.env.E2E_TEST_TIMEOUT_MS || 30000) };

/**
 * @param {string} title
 * @param {object} opts {args: extra app flags, realtime: newRealtime options, or a function
 *   (SDK, sdkName) -> options, binary: 'chat' (default) or 'testserver', external: why the
 *   group cannot run against E2E_SERVER_URL, sdks: ['sdk4'] to declare the group only for
 *   the SDKs that have the feature (e.g. 4.x pushOfflineMessages)}
 * @param {(ctx: object) => void} body declares the tests; called once per group with ctx.sdk
 *   ('sdk4' | 'sdk5') and ctx.SDK (that SDK's module: TextMessage, RecalledMessage, ...) set;
 *   ctx.server, ctx.realtime are filled in before(); ctx.login(id, opts), ctx.child(opts).
 */
function eachBackend(title, opts, body) {
  for (const sdk of sdks()) {
    if (opts.sdks && !opts.sdks.includes(sdk.name)) continue;
    for (const backend of backends()) {
      const skip = backend.name === 'external' && opts.external ? opts.external : backend.skip;
      describe(`${title} [${sdk.name} ${backend.name}]`, { skip }, () => {
        const SDK = loadSdk(sdk.name);
        const ctx = {
          sdk: sdk.name, major: sdk.major, SDK, backend: backend.name, clients: [], children: [],
        };
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
          const server = await startServer({ db: backend.name, args: opts.args || [], binary: opts.binary });
          server.sdk = sdk.name;
          server.sdkServer = server.imServer;
          ctx.server = server;
          if (sdk.name === 'sdk4') {
            // 4.x takes a host[/path] and always uses https://{server}/v1/route and /1.1/...
            trustTestCertificates();
            ctx.proxy = await startTlsProxy(server.base);
            server.proxy = ctx.proxy;
            server.sdkServer = `${ctx.proxy.host}/im`;
          }
          const realtimeOpts = typeof opts.realtime === 'function' ? opts.realtime(SDK, sdk.name) : opts.realtime;
          ctx.realtime = newRealtime(server, realtimeOpts || {});
        });
        afterEach(async () => {
          const clients = ctx.clients.splice(0);
          const children = ctx.children.splice(0);
          await Promise.all(children.map(ch => ch.shutdown()));
          await closeQuietly(...clients);
        });
        after(async () => {
          // Closing the last client closes the SDK's socket; _close() (SDK internal) is the
          // safety net when a close failed, so no reconnect timer keeps the process alive.
          if (ctx.realtime) ctx.realtime._close();
          if (ctx.proxy) await ctx.proxy.close();
          if (ctx.server) await ctx.server.stop();
        });
        body(ctx);
      });
    }
  }
}

module.exports = { eachBackend, T };
