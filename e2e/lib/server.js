'use strict';
// Harness: builds the example chat app (examples/chat), or the test-only e2e/testserver, once
// per process and starts one instance per scenario, on SQLite (a fresh temp file) or PostgreSQL
// (REALTIME_TEST_POSTGRES_DSN).
// E2E_SERVER_URL=http://127.0.0.1:PORT skips building and starting: the tests then talk to
// whatever server listens there (the reference stub, or an app started by hand).

const { spawn, execFile, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '../..');
const BUILD_TIMEOUT_MS = 5 * 60 * 1000;
const START_TIMEOUT_MS = 20 * 1000;

/** A short random string that makes client ids and conversations unique per run. */
const RUN_ID = crypto.randomBytes(4).toString('hex');

/** The Go mains startServer can run, by the `binary` option: name -> package path. */
const BINARIES = {
  chat: './examples/chat',
  testserver: './e2e/testserver', // test-only: hooks the tests provoke and POST /sign
};

const buildPromises = new Map();

let pgDSN; // this process's own schema on REALTIME_TEST_POSTGRES_DSN's database (see postgresDSN)

/**
 * The DSN the apps of this test process use: a schema of its own (created with psql, dropped
 * when the process exits), so that runs and branches with other migrations never share
 * tables. Without psql it is the DSN as given.
 */
function postgresDSN() {
  if (pgDSN) return pgDSN;
  const base = process.env.REALTIME_TEST_POSTGRES_DSN;
  if (!base) throw new Error('db "postgres" needs REALTIME_TEST_POSTGRES_DSN');
  const schema = `e2e_${RUN_ID}_${process.pid}`;
  try {
    execFileSync('psql', [base, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE SCHEMA ${schema}`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
  } catch (err) {
    process.stderr.write(`e2e: cannot create a schema with psql (${err.message.split('\n')[0]}); using the database's default schema\n`);
    pgDSN = base;
    return pgDSN;
  }
  process.on('exit', () => {
    try {
      execFileSync('psql', [base, '-qc', `DROP SCHEMA IF EXISTS ${schema} CASCADE`], { stdio: 'ignore', timeout: 30000 });
    } catch (_) {
      // best effort
    }
  });
  const u = new URL(base);
  u.searchParams.set('search_path', schema);
  pgDSN = u.toString();
  return pgDSN;
}

/**
 * Builds a Go main (default ./examples/chat) into a temp dir once per process; resolves to the
 * binary path.
 * @param {string} [name] a key of BINARIES
 */
function buildApp(name = 'chat') {
  const pkg = BINARIES[name];
  if (!pkg) return Promise.reject(new Error(`unknown binary ${name}; known: ${Object.keys(BINARIES).join(', ')}`));
  if (!buildPromises.has(name)) {
    buildPromises.set(name, new Promise((resolve, reject) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realtime-e2e-bin-'));
      const bin = path.join(dir, name);
      execFile('go', ['build', '-o', bin, pkg],
        { cwd: REPO_ROOT, timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          if (err) {
            reject(new Error(`go build ${pkg} failed: ${err.message}\n${stderr}`));
            return;
          }
          resolve(bin);
        });
    }));
  }
  return buildPromises.get(name);
}

/**
 * The databases each scenario runs on. With E2E_SERVER_URL set there is one, "external".
 * Each entry: {name, skip}: skip is false or a string saying why.
 */
function backends() {
  if (process.env.E2E_SERVER_URL) return [{ name: 'external', skip: false }];
  return [
    { name: 'sqlite', skip: false },
    {
      name: 'postgres',
      skip: process.env.REALTIME_TEST_POSTGRES_DSN
        ? false
        : 'REALTIME_TEST_POSTGRES_DSN is not set, PostgreSQL run skipped',
    },
  ];
}

let appSeq = 0;

/**
 * Starts the example app (or attaches to E2E_SERVER_URL) and resolves to
 * {base, imServer, appId, appKey, backend, logs(), stop()}.
 * imServer is the SDK's `server` option (base + '/im').
 *
 * @param {object} opts
 * @param {string} opts.db 'sqlite' | 'postgres' | 'external'
 * @param {string[]} [opts.args] extra command-line flags for the app
 * @param {string} [opts.binary] which Go main to run: 'chat' (examples/chat, the default) or
 *   'testserver' (e2e/testserver: test hooks and POST /sign)
 * @param {string} [opts.masterKey] passed as -master-key (turns on the REST API v2) and
 *   returned as masterKey
 */
async function startServer({ db = 'sqlite', args = [], binary = 'chat', appId: fixedAppId, appIdFlag = true, masterKey } = {}) {
  appSeq += 1;
  // One Realtime per appId per process in SDK 5.x: every server in a process gets its own id.
  const appId = fixedAppId || process.env.E2E_APP_ID || `e2e${RUN_ID}${process.pid}x${appSeq}`;
  const appKey = process.env.E2E_APP_KEY || 'e2e-app-key';
  if (process.env.E2E_SERVER_URL || db === 'external') {
    const base = (process.env.E2E_SERVER_URL || '').replace(/\/+$/, '');
    if (!base) throw new Error('db "external" needs E2E_SERVER_URL');
    return {
      base, imServer: base + '/im', appId, appKey, masterKey: process.env.E2E_MASTER_KEY || masterKey,
      backend: 'external', logs: () => '', stop: async () => {},
    };
  }

  const bin = await buildApp(binary);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realtime-e2e-'));
  let dbArg;
  if (db === 'sqlite') {
    dbArg = path.join(dir, 'chat.db');
  } else if (db === 'postgres') {
    dbArg = postgresDSN();
  } else {
    throw new Error(`unknown db ${db}`);
  }

  const argv = ['-addr', '127.0.0.1:0', '-db', dbArg, ...(appIdFlag ? ['-app-id', appId] : []),
    ...(masterKey ? ['-master-key', masterKey] : []), ...args];
  const child = spawn(bin, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = chunk => {
    output += chunk.toString();
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  if (process.env.E2E_SERVER_LOG) {
    // The app logs to stderr; show it, tagged, for debugging a failing scenario.
    child.stderr.on('data', chunk => process.stderr.write(chunk.toString().replace(/^(?=.)/gm, `[${db} app] `)));
  }
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })));

  const base = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      if (err) reject(err); else resolve(value);
    };
    let seen = '';
    const onData = chunk => {
      seen += chunk.toString();
      const m = /http:\/\/\S+/.exec(seen);
      if (m) finish(null, m[0].replace(/[/.,;)"']+$/, ''));
    };
    child.stdout.on('data', onData);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`example app printed no http:// URL within ${START_TIMEOUT_MS} ms; output:\n${output}`));
    }, START_TIMEOUT_MS);
    exited.then(({ code, signal }) =>
      finish(new Error(`example app exited early (code ${code}, signal ${signal}); args ${argv.join(' ')}; output:\n${output}`)));
  });

  let stopped = false;
  return {
    child,
    base,
    imServer: base + '/im',
    appId,
    appKey,
    masterKey,
    backend: db,
    dir,
    logs: () => output,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Several nodes (E2E_NODES > 1): the number of app processes a cluster group starts, and the
 * broker that joins them (E2E_BROKER: nats, the default, or postgres).
 */
function clusterMode() {
  const nodes = Number(process.env.E2E_NODES || 1);
  if (nodes <= 1) return null;
  const broker = process.env.E2E_BROKER || 'nats';
  if (!['nats', 'postgres'].includes(broker)) throw new Error(`E2E_BROKER=${broker}: want nats or postgres`);
  return { nodes, broker };
}

/**
 * Starts `nodes` app processes on one PostgreSQL database joined by a broker, and resolves to
 * {nodes: [server...], base, imServer, appId, appKey, backend, logs(), stop()}; the fields
 * of the first node stand for the cluster. The nodes serve any app id (no -app-id): SDK 5.x
 * allows one Realtime per app id in a process, so the harness gives each node's Realtime an
 * app id of its own (one deployment serves them all alike).
 */
async function startCluster({ nodes = 3, broker = 'nats', args = [], binary = 'chat' } = {}) {
  appSeq += 1;
  const appId = `e2e${RUN_ID}${process.pid}x${appSeq}`;
  const brokerArg = broker === 'nats' ? (process.env.E2E_NATS_URL || 'nats://127.0.0.1:4222') : 'postgres';
  const started = [];
  try {
    for (let i = 0; i < nodes; i++) {
      started.push(await startServer({
        db: 'postgres', binary, appIdFlag: false, appId: `${appId}n${i}`,
        args: ['-broker', brokerArg, '-node', `${appId}-node${i}`, '-node-lease', '2s', ...args],
      }));
    }
  } catch (err) {
    await Promise.all(started.map(n => n.stop()));
    throw err;
  }
  const first = started[0];
  return {
    ...first,
    nodes: started,
    backend: `postgres, ${nodes} nodes, ${broker}`,
    logs: () => started.map((n, i) => `--- node ${i}\n${n.logs()}`).join('\n'),
    async stop() { await Promise.all(started.map(n => n.stop())); },
  };
}

module.exports = { startServer, startCluster, clusterMode, backends, buildApp, RUN_ID, REPO_ROOT };
