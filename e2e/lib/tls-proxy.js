'use strict';
// A small HTTPS + WSS reverse proxy for SDK 4.x, which always speaks https to its `server`
// option (`https://{server}/v1/route`, `https://{server}/1.1/...`) and so cannot reach the
// plain-http test app directly. One proxy fronts one started app:
//
//   SDK 4.x --https/wss--> 127.0.0.1:PROXYPORT (this) --http/ws--> the app's http:// base
//
// Every request and websocket Upgrade is forwarded with the client's Host header untouched and
// `X-Forwarded-Proto: https`, so the hub's router answers `wss://127.0.0.1:PROXYPORT/im/ws`
// (hub/routes.go websocketURL) and the SDK connects back through the proxy.
//
// The certificate is self-signed for IP 127.0.0.1, made once per process with `openssl req
// -x509` in a temp dir. The test processes trust it by NODE_TLS_REJECT_UNAUTHORIZED=0 (see
// trustTestCertificates): NODE_EXTRA_CA_CERTS is read only when a process starts, and the
// certificate is made later, inside the test process.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

let certificate; // {key, cert, dir}

/** A self-signed key and certificate for 127.0.0.1, made once per process. */
function testCertificate() {
  if (certificate) return certificate;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realtime-e2e-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl could not make the test certificate (is openssl installed?): ${err.stderr || err.message}`);
  }
  certificate = { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), dir };
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return certificate;
}

/**
 * Makes this process, and the processes it starts with its environment (lib/child.js), accept
 * the self-signed certificate: both clients SDK 4.x uses in Node (axios over node:https for
 * the router and REST, `ws` over node:tls for the websocket) follow it. Only test processes
 * call this, and only for the SDK 4.x groups; the proxy listens on 127.0.0.1 only.
 */
function trustTestCertificates() {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  if (trustTestCertificates.quiet) return;
  trustTestCertificates.quiet = true;
  // Node warns once per process that TLS verification is off (that is the point here), and
  // `ws` 5 (4.x's websocket client) sets the TLS servername to the proxy's IP address
  // (DEP0123). Both would repeat for every test process; nothing else is silenced.
  const emit = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    const text = String((warning && warning.message) || warning);
    const code = rest.find(r => typeof r === 'string' && /^DEP\d+$/.test(r)) || (rest[0] && rest[0].code);
    if (text.includes('NODE_TLS_REJECT_UNAUTHORIZED') || code === 'DEP0123') return undefined;
    return emit.call(this, warning, ...rest);
  };
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
]);

/**
 * Starts the proxy in front of `target` (an http://host:port base). Resolves to
 * {host: '127.0.0.1:PORT', url: 'https://127.0.0.1:PORT', cert, stats, close()}; stats
 * ({requests, upgrades, log: ['GET /im/v1/route?..', 'UPGRADE /im/ws', ...], the latest 200})
 * tell a test what the SDK asked for through it.
 */
async function startTlsProxy(target) {
  const upstream = new URL(target);
  if (upstream.protocol !== 'http:') throw new Error(`the TLS proxy fronts an http:// server, got ${target}`);
  const upstreamPort = Number(upstream.port || 80);
  const { key, cert } = testCertificate();
  const sockets = new Set();
  const stats = { requests: 0, upgrades: 0, log: [] };
  const note = line => {
    stats.log.push(line);
    if (stats.log.length > 200) stats.log.shift();
  };

  const server = https.createServer({ key, cert }, (req, res) => {
    stats.requests += 1;
    note(`${req.method} ${req.url}`);
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers['x-forwarded-proto'] = 'https';
    const out = http.request({
      host: upstream.hostname, port: upstreamPort, method: req.method, path: req.url, headers,
    }, up => {
      if (process.env.E2E_SERVER_LOG) process.stderr.write(`[tls-proxy] ${req.method} ${req.url} -> ${up.statusCode}\n`);
      const back = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) back[k] = v;
      res.writeHead(up.statusCode, up.statusMessage, back);
      up.pipe(res);
    });
    out.on('error', err => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`e2e TLS proxy: upstream error: ${err.message}`);
    });
    req.pipe(out);
  });

  // Websocket Upgrade: replay the request head to the app with X-Forwarded-Proto added, then
  // splice the two sockets. Either side ending or failing ends the other, so a client that
  // drops (or is SIGKILLed) is seen by the hub as a dropped socket, as it would be directly.
  server.on('upgrade', (req, client, head) => {
    stats.upgrades += 1;
    note(`UPGRADE ${req.url}`);
    client.pause(); // until spliced: nothing the client sends early is lost
    const app = net.connect(upstreamPort, upstream.hostname);
    sockets.add(app);
    const end = () => {
      client.destroy();
      app.destroy();
    };
    client.on('error', end).on('close', end);
    app.on('error', end).on('close', () => {
      sockets.delete(app);
      end();
    });
    app.once('connect', () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i].toLowerCase() === 'x-forwarded-proto') continue;
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      lines.push('X-Forwarded-Proto: https');
      app.write(lines.join('\r\n') + '\r\n\r\n');
      if (head && head.length) app.write(head);
      client.pipe(app);
      app.pipe(client);
    });
  });
  server.on('connection', s => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {}); // a client giving up mid-handshake is not our failure

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  return {
    host: `127.0.0.1:${port}`,
    url: `https://127.0.0.1:${port}`,
    cert,
    stats,
    close() {
      return new Promise(resolve => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

module.exports = { startTlsProxy, trustTestCertificates, testCertificate };
