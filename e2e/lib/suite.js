'use strict';
// Runs a scenario group once per SDK version and database: describe("<title> [sdk4 sqlite]"),
// "[sdk5 postgres]" (skipped with the reason when REALTIME_TEST_POSTGRES_DSN is unset), or
// "[sdk5 external]" with E2E_SERVER_URL. E2E_SDK=4|5|all (default all) picks the versions.
// SDK 4.x groups reach the app through a TLS proxy (lib/tls-proxy.js) started next to it.

const { describe, before, after, afterEach } = require('node:test');
const { startServer, startCluster, clusterMode, backends } = require('./server');
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
 *   the SDKs that have the feature (e.g. 4.x pushOfflineMessages), cluster: true to run the
 *   group on several nodes too (E2E_NODES > 1: only such groups run, on PostgreSQL, with the
 *   clients spread over the nodes), masterKey: start the app with -master-key (the REST API v2)}
 * @param {(ctx: object) => void} body declares the tests; called once per group with ctx.sdk
 *   ('sdk4' | 'sdk5') and ctx.SDK (that SDK's module: TextMessage, RecalledMessage, ...) set;
 *   ctx.server, ctx.realtime are filled in before(); ctx.login(id, opts), ctx.child(opts).
 */
function eachBackend(title, opts, body) {
  const cluster = clusterMode();
  if (cluster && !opts.cluster) return;
  for (const sdk of sdks()) {
    if (opts.sdks && !opts.sdks.includes(sdk.name)) continue;
    for (const backend of cluster ? [clusterBackend(cluster)] : backends()) {
      const skip = backend.name === 'external' && opts.external ? opts.external : backend.skip;
      describe(`${title} [${sdk.name} ${backend.name}]`, { skip }, () => {
        const SDK = loadSdk(sdk.name);
        const ctx = {
          sdk: sdk.name, major: sdk.major, SDK, backend: backend.name, clients: [], children: [],
        };
        let logins = 0;
        let childs = 0;
        ctx.login = async (id, loginOpts) => {
          // On several nodes, successive logins go to successive nodes.
          const realtime = ctx.realtimes ? ctx.realtimes[logins++ % ctx.realtimes.length] : ctx.realtime;
          const c = await login(realtime, id, loginOpts);
          ctx.clients.push(c);
          return c;
        };
        ctx.child = childOpts => {
          // On several nodes, children start on the second node and go round.
          const nodes = ctx.server.nodes;
          const server = nodes ? nodes[(1 + childs++) % nodes.length] : ctx.server;
          const ch = new ChildClient(server, childOpts);
          ctx.children.push(ch);
          return ch;
        };
        if (cluster) {
          before(async () => {
            const server = await startCluster({ nodes: cluster.nodes, broker: cluster.broker, args: opts.args || [], binary: opts.binary });
            ctx.server = server;
            const realtimeOpts = typeof opts.realtime === 'function' ? opts.realtime(SDK, sdk.name) : opts.realtime;
            ctx.proxies = [];
            ctx.realtimes = [];
            for (const node of server.nodes) {
              node.sdk = sdk.name;
              node.sdkServer = node.imServer;
              if (sdk.name === 'sdk4') {
                trustTestCertificates();
                const proxy = await startTlsProxy(node.base);
                ctx.proxies.push(proxy);
                node.proxy = proxy;
                node.sdkServer = `${proxy.host}/im`;
              }
              ctx.realtimes.push(newRealtime(node, realtimeOpts || {}));
            }
            server.sdk = sdk.name;
            server.sdkServer = server.nodes[0].sdkServer;
            server.proxy = ctx.proxy = ctx.proxies[0]; // the first login's node
            // What a test does to "the" Realtime (pause, resume) it does to every node's.
            ctx.realtime = {
              pause: () => ctx.realtimes.forEach(r => r.pause()),
              resume: () => ctx.realtimes.forEach(r => r.resume()),
              _close: () => ctx.realtimes.forEach(r => r._close()),
            };
          });
          afterEach(async () => {
            const clients = ctx.clients.splice(0);
            const children = ctx.children.splice(0);
            await Promise.all(children.map(ch => ch.shutdown()));
            await closeQuietly(...clients);
          });
          after(async () => {
            if (ctx.realtime) ctx.realtime._close();
            await Promise.all((ctx.proxies || []).map(p => p.close()));
            ctx.proxy = undefined;
            if (ctx.server) await ctx.server.stop();
          });
          body(ctx);
          return;
        }
        before(async () => {
          const server = await startServer({ db: backend.name, args: opts.args || [], binary: opts.binary, masterKey: opts.masterKey });
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

/** The one "backend" of a run on several nodes: PostgreSQL, required. */
function clusterBackend(cluster) {
  return {
    name: `postgres ${cluster.nodes} nodes ${cluster.broker}`,
    skip: process.env.REALTIME_TEST_POSTGRES_DSN ? false : 'several nodes need PostgreSQL: REALTIME_TEST_POSTGRES_DSN is not set',
  };
}

module.exports = { eachBackend, T };
