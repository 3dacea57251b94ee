// A Couch that refuses syncgate's design document, as Apache CouchDB refused the named
// functions of design version 1 (400 compilation_error, "Expression does not eval to a
// function"). A proxy in front of the test Couch answers exactly that to every PUT of the
// design document while `refusing` is on; everything else goes through untouched.
//   - `syncgate serve` on it stops at start with one line naming the design document;
//   - the admin API refuses it as a node, with the reason;
//   - a gateway whose node starts refusing after it started answers 503 + Retry-After to a new
//     user whose database cannot be set up, never a 500; once the node takes the design
//     document again it is installed (in the background) and the user is served.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testCouchUrl, basicAuth } from '../support/couch.js';
import { startGateway } from '../support/gateway.js';

const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));
const REFUSAL = { error: 'compilation_error', reason: 'Expression does not eval to a function. (function byModifiedMap(doc) {...})' };

/** The test Couch behind a proxy that can refuse the design document; its URL carries the same credentials. */
async function refusingProxy(target: URL): Promise<{ url: string; refusing: { on: boolean }; close(): Promise<void> }> {
  const refusing = { on: true };
  const server: Server = createServer((req, res) => {
    if (refusing.on && req.method === 'PUT' && /\/_design\/syncgate(\?|$)/.test(decodeURIComponent(req.url ?? ''))) {
      req.resume();
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify(REFUSAL));
      return;
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = new URL(target.href);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.href.replace(/\/$/, ''),
    refusing,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('a Couch that refuses the design document', function () {
  this.timeout(60_000);
  let proxy: Awaited<ReturnType<typeof refusingProxy>>;
  let dir: string;
  before(async () => {
    proxy = await refusingProxy(new URL(await testCouchUrl()));
    dir = await mkdtemp(join(tmpdir(), 'syncgate-design-refused-'));
  });
  after(async () => {
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('syncgate serve stops at start with one line saying the design document was refused', async () => {
    proxy.refusing.on = true;
    const { COUCH_URL: _inherited, ...inherited } = process.env;
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...inherited, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', SYNCGATE_DATA: dir, COUCH_URL: proxy.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    assert.notEqual(code, 0);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${stderr}`);
    assert.match(lines[0] ?? '', /refused syncgate's design document: .*compilation_error/);
    assert.ok(!stderr.includes(new URL(proxy.url).password), 'no password on stderr');
  });

  it('the admin API refuses it as a node (422), with the reason', async () => {
    proxy.refusing.on = true;
    const token = randomBytes(24).toString('hex');
    const gw = await startGateway({ SYNCGATE_ADMIN_TOKEN: token });
    try {
      const call = (method: string, path: string, body: unknown) =>
        fetch(`${gw.url}/__admin__${path}`, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal((await call('POST', '/operators', { name: 'op' })).status, 201);
      const res = await call('POST', '/nodes', { name: 'refuser', operator: 'op', url: proxy.url, capacity: 10 });
      const text = await res.text();
      assert.equal(res.status, 422, text);
      assert.match(text, /refused syncgate's design document/);
    } finally {
      await gw.close();
    }
  });

  it('a node that starts refusing after the gateway started costs a new user 503 + Retry-After, never a 500; the design document is installed once the node takes it', async () => {
    proxy.refusing.on = false;
    const gw = await startGateway({ COUCH_URL: proxy.url });
    try {
      proxy.refusing.on = true;
      const u = gw.newUser();
      // Reads of a user with no database create none: the first write creates it (and the design document).
      assert.equal((await u.get('/info/collections')).status, 200);
      const first = await u.put('/storage/history/first', { payload: 'x' });
      assert.equal(first.status, 503, first.text);
      assert.ok(first.header('retry-after'));
      assert.equal(first.text, '0', 'nothing of the Couch error reaches the client');
      for (let i = 0; i < 5; i++) {
        const res = await u.put(`/storage/history/r${i}`, { payload: 'x' });
        assert.ok(res.status === 200 || (res.status === 503 && res.header('retry-after')), `${res.status} ${res.text}`);
      }
      proxy.refusing.on = false;
      const couch = new URL(await testCouchUrl());
      const auth = basicAuth(couch);
      let installed = false;
      for (let i = 0; i < 50 && !installed; i++) {
        assert.equal((await u.put('/storage/history/after', { payload: 'y' })).status, 200, 'served once the node takes it');
        installed = (await fetch(`${couch.origin}/sync_${u.uid}/_design/syncgate`, { headers: { Authorization: auth } })).status === 200;
        if (!installed) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(installed, 'the design document was installed in the background');
    } finally {
      await gw.close();
    }
  });
});
