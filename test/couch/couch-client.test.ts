// The one outbound Couch client (storage/couch/couch-client.ts), against the real test Couch
// and against tiny stand-in servers on 127.0.0.1 that misbehave on purpose: errors are
// CouchErrors with a status and no credentials, reads are retried after network errors,
// timeouts and 5xx, writes are never retried (a retried write could apply twice), and a node
// that never answers fails after timeoutMs instead of hanging the gateway.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { CouchClient, CouchError, scrubUrl } from '../../storage/couch/couch-client.js';
import { testCouchUrl } from '../support/couch.js';

const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;

/** A port nothing listens on: bound once by the OS, then released. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function listen(server: NetServer | HttpServer): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as { port: number }).port;
}

/** The rejection of p, which must be a CouchError. */
async function couchError(p: Promise<unknown>): Promise<CouchError> {
  const e = await p.then(
    (v) => assert.fail(`expected a CouchError, got ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
  assert.ok(e instanceof CouchError, `expected a CouchError, got ${String(e)}`);
  return e;
}

function assertNoCredentials(e: CouchError, password: string): void {
  const text = `${e.message} ${e.reason} ${e.error} ${e.stack ?? ''}`;
  assert.ok(!text.includes(password), `the password appears in the error: ${text}`);
  assert.doesNotMatch(text, /\/\/[^/\s]*@/, `user info appears in the error: ${text}`);
}

describe('Couch client (storage/couch/couch-client.ts)', function () {
  this.timeout(30_000);

  describe('against the test Couch', () => {
    let url: string;
    let client: CouchClient;
    const db = `syncgate_client_test_${randomBytes(4).toString('hex')}`;

    before(async () => {
      url = await testCouchUrl();
      client = new CouchClient(url, { timeoutMs: 5000, readRetries: 2 });
      await client.request({ method: 'PUT', db });
    });
    after(async () => {
      await client.request({ method: 'DELETE', db }).catch(() => {});
    });

    it('a missing document is a CouchError with statusCode 404 and no credentials in its message', async () => {
      const e = await couchError(client.request({ method: 'GET', db, doc: 'no-such-doc' }));
      assert.equal(e.statusCode, 404);
      assert.equal(e.error, 'not_found');
      assert.match(e.message, /^couch 404 not_found/);
      assertNoCredentials(e, new URL(url).password);
    });

    it('a missing database is a CouchError with statusCode 404 and no credentials in its message', async () => {
      const e = await couchError(client.request({ method: 'GET', db: `${db}_missing` }));
      assert.equal(e.statusCode, 404);
      assertNoCredentials(e, new URL(url).password);
    });

    it('a wrong password is a CouchError with statusCode 401 whose message carries neither password', async () => {
      const u = new URL(url);
      u.password = PASSWORD;
      const wrong = new CouchClient(u.toString(), { timeoutMs: 5000, readRetries: 2 });
      const e = await couchError(wrong.request({ method: 'GET', path: '_session' }));
      assert.equal(e.statusCode, 401);
      assertNoCredentials(e, PASSWORD);
      assertNoCredentials(e, new URL(url).password);
    });

    it('a successful request returns the parsed JSON body', async () => {
      const put = await client.request<{ ok: boolean; rev: string }>({ method: 'PUT', db, doc: 'd1', body: { v: 1 } });
      assert.equal(put.ok, true);
      const doc = await client.request<{ _id: string; v: number }>({ method: 'GET', db, doc: 'd1' });
      assert.equal(doc._id, 'd1');
      assert.equal(doc.v, 1);
    });
  });

  describe('against a node that cannot be reached', () => {
    it('a GET to a closed port fails with statusCode 0 "unreachable" after its retries, without the password in the message', async () => {
      const port = await closedPort();
      const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
      const e = await couchError(client.request({ method: 'GET' }));
      assert.equal(e.statusCode, 0);
      assert.equal(e.error, 'unreachable');
      assertNoCredentials(e, PASSWORD);
    });

    it('a GET whose connections are dropped is tried 1 + readRetries times; a POST exactly once', async () => {
      let connections = 0;
      const sockets = new Set<Socket>();
      const server = createNetServer((socket) => {
        connections++;
        socket.destroy();
      });
      server.on('connection', (s) => sockets.add(s));
      const port = await listen(server);
      try {
        const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
        const get = await couchError(client.request({ method: 'GET', db: 'x', doc: 'y' }));
        assert.equal(get.statusCode, 0);
        assertNoCredentials(get, PASSWORD);
        assert.equal(connections, 3, 'GET: one attempt and two retries');

        connections = 0;
        const post = await couchError(client.request({ method: 'POST', db: 'x', path: '_bulk_docs', body: { docs: [] } }));
        assert.equal(post.statusCode, 0);
        assert.equal(connections, 1, 'POST: never retried');
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      }
    });

    it('a node that accepts the connection and never answers fails after timeoutMs with statusCode 0 "timed out"', async () => {
      const sockets = new Set<Socket>();
      const server = createNetServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        // read the request, never answer
        socket.resume();
      });
      const port = await listen(server);
      try {
        const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 200, readRetries: 0 });
        const get = await couchError(client.request({ method: 'GET', db: 'x', doc: 'y' }));
        assert.equal(get.statusCode, 0);
        assert.match(get.reason, /timed out/, `reason: ${get.reason}`);
        assertNoCredentials(get, PASSWORD);

        const post = await couchError(client.request({ method: 'POST', db: 'x', path: '_bulk_docs', body: { docs: [] } }));
        assert.equal(post.statusCode, 0);
        assert.match(post.reason, /timed out/, `reason: ${post.reason}`);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      }
    });
  });

  describe('against a node that answers 503', () => {
    let server: HttpServer;
    let port: number;
    let requests: Array<{ method: string; url: string }>;
    /** Status codes to answer, in order; 200 {"ok":true} once they run out. */
    let script: number[];

    beforeEach(async () => {
      requests = [];
      script = [];
      server = createHttpServer((req, res) => {
        requests.push({ method: req.method ?? '', url: req.url ?? '' });
        req.resume();
        const status = script.shift() ?? 200;
        const body = status === 200 ? { ok: true } : { error: 'service_unavailable', reason: 'try later' };
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      });
      port = await listen(server);
    });
    afterEach(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it('a GET answered 503 is retried and succeeds on the second request', async () => {
      script = [503];
      const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
      const res = await client.request<{ ok: boolean }>({ method: 'GET', db: 'somedb', doc: 'doc' });
      assert.deepEqual(res, { ok: true });
      assert.equal(requests.length, 2);
      assert.deepEqual(
        requests.map((r) => `${r.method} ${r.url}`),
        ['GET /somedb/doc', 'GET /somedb/doc'],
      );
    });

    it('a GET answered 503 every time gives up after 1 + readRetries requests with statusCode 503', async () => {
      script = [503, 503, 503, 503, 503];
      const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
      const e = await couchError(client.request({ method: 'GET', db: 'somedb' }));
      assert.equal(e.statusCode, 503);
      assert.equal(requests.length, 3);
      assertNoCredentials(e, PASSWORD);
    });

    it('a POST answered 503 is NOT retried: exactly one request, and the 503 is reported', async () => {
      script = [503];
      const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
      const e = await couchError(client.request({ method: 'POST', db: 'somedb', path: '_bulk_docs', body: { docs: [] } }));
      assert.equal(e.statusCode, 503);
      assert.equal(requests.length, 1);
      assert.equal(requests[0]?.method, 'POST');
    });

    it('a PUT answered 503 is NOT retried either', async () => {
      script = [503];
      const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
      const e = await couchError(client.request({ method: 'PUT', db: 'somedb', doc: 'd', body: { v: 1 } }));
      assert.equal(e.statusCode, 503);
      assert.equal(requests.length, 1);
    });

    it('a GET answered 404 is not retried (a 4xx is an answer, not a failure)', async () => {
      script = [404];
      const client = new CouchClient(`http://admin:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 2000, readRetries: 2 });
      const e = await couchError(client.request({ method: 'GET', db: 'somedb', doc: 'missing' }));
      assert.equal(e.statusCode, 404);
      assert.equal(requests.length, 1);
    });
  });

  describe('scrubUrl', () => {
    it('removes user and password, keeps scheme, host, port and path', () => {
      assert.equal(scrubUrl(`http://admin:${PASSWORD}@127.0.0.1:5984`), 'http://127.0.0.1:5984');
      assert.equal(scrubUrl(`https://sync-gw:${PASSWORD}@couch.example.org/prefix/`), 'https://couch.example.org/prefix');
      assert.equal(scrubUrl('http://onlyuser@127.0.0.1:5984'), 'http://127.0.0.1:5984');
      assert.equal(scrubUrl('http://127.0.0.1:5984'), 'http://127.0.0.1:5984');
    });

    it('removes a percent-encoded password and never echoes an unparsable URL', () => {
      const scrubbed = scrubUrl('http://admin:p%40ss%3Aword@127.0.0.1:5984');
      assert.equal(scrubbed, 'http://127.0.0.1:5984');
      const bad = scrubUrl(`admin${PASSWORD} not a url`);
      assert.ok(!bad.includes(PASSWORD), bad);
    });
  });
});
