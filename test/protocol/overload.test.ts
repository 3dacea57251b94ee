// Load shedding: X-Weave-Backoff above the soft limit of requests in flight, 503 with
// Retry-After above the hard limit, health checks always answered; beyond the requests that
// may run at once, a queue whose waits end in 503 + Retry-After, and nothing acknowledged lost.
import assert from 'node:assert/strict';
import { request } from 'node:http';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';
import type { SyncClient } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/** Starts a signed PUT whose body never finishes, so the request stays in flight until aborted. */
function hangingRequest(u: SyncClient, path: string): () => void {
  const url = u.url(path);
  const { header } = Hawk.client.header(url, 'PUT', { credentials: { id: u.creds.id, key: u.creds.key, algorithm: 'sha256' } });
  const req = request(url, {
    method: 'PUT',
    headers: { Authorization: header, 'Content-Type': 'application/json', 'Content-Length': '1000' },
  });
  req.on('error', () => {});
  req.write('{"payload":"');
  return () => req.destroy();
}

describe('overload', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_BACKOFF_INFLIGHT: '1', SYNCGATE_MAX_INFLIGHT: '3', SYNCGATE_BACKOFF_SECONDS: '45' })));
  after(() => gw.close());

  it('GET info/collections answers without X-Weave-Backoff when the gateway is idle', async () => {
    const res = await gw.newUser().get('/info/collections');
    assert.equal(res.status, 200);
    assert.equal(res.header('x-weave-backoff'), null);
  });

  it('requests above the soft limit carry X-Weave-Backoff; above the hard limit they get 503 + Retry-After; __lbheartbeat__ still answers', async () => {
    const u = gw.newUser();
    const hung = [hangingRequest(u, '/storage/meta/global')];
    try {
      await new Promise((r) => setTimeout(r, 100));
      const busy = await u.get('/info/collections');
      assert.equal(busy.status, 200);
      assert.equal(busy.header('x-weave-backoff'), '45');
      hung.push(hangingRequest(u, '/storage/meta/a'), hangingRequest(u, '/storage/meta/b'));
      await new Promise((r) => setTimeout(r, 100));
      const shed = await u.get('/info/collections');
      assert.equal(shed.status, 503);
      assert.equal(shed.text, '0');
      assert.equal(shed.header('retry-after'), '45');
      assert.equal(shed.header('x-weave-backoff'), '45');
      const lb = await fetch(`${gw.url}/__lbheartbeat__`);
      assert.equal(lb.status, 200);
    } finally {
      for (const abort of hung) abort();
    }
    await new Promise((r) => setTimeout(r, 100));
    const calm = await u.get('/info/collections');
    assert.equal(calm.status, 200);
    assert.equal(calm.header('x-weave-backoff'), null);
  });
});

describe('overload: the admission queue', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_MAX_CONCURRENT: '1', SYNCGATE_QUEUE_TIMEOUT_MS: '300', SYNCGATE_BACKOFF_INFLIGHT: '0', SYNCGATE_MAX_INFLIGHT: '0', SYNCGATE_BACKOFF_SECONDS: '20' })));
  after(() => gw.close());

  it('a request that cannot run waits, and is shed with 503, Retry-After and X-Weave-Backoff when its wait runs out; once the slot frees requests run again', async () => {
    const u = gw.newUser();
    assert.equal((await u.get('/info/collections')).status, 200);
    const abort = hangingRequest(u, '/storage/meta/global');
    try {
      await new Promise((r) => setTimeout(r, 100));
      const shed = await u.get('/info/collections');
      assert.equal(shed.status, 503);
      assert.equal(shed.header('retry-after'), '20');
      assert.equal(shed.header('x-weave-backoff'), '20');
      assert.equal((await fetch(`${gw.url}/__lbheartbeat__`)).status, 200, 'health checks do not queue');
    } finally {
      abort();
    }
    await new Promise((r) => setTimeout(r, 100));
    const calm = await u.get('/info/collections');
    assert.equal(calm.status, 200);
    assert.equal(calm.header('x-weave-backoff'), null);
  });
});

describe('overload: nothing acknowledged is lost while requests are shed', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_MAX_CONCURRENT: '2', SYNCGATE_QUEUE_TIMEOUT_MS: '20', SYNCGATE_BACKOFF_INFLIGHT: '0', SYNCGATE_MAX_INFLIGHT: '0' })));
  after(() => gw.close());

  it('of 150 uploads at once some are shed with 503 + Retry-After; every one answered 200 is stored, and no shed one is', async () => {
    const u = gw.newUser();
    const answers = await Promise.all(
      Array.from({ length: 150 }, (_, i) => u.post('/storage/bookmarks', [{ id: `r${i}`, payload: `p${i}` }]).then((res) => ({ i, res }))),
    );
    const ok = answers.filter((a) => a.res.status === 200);
    const shed = answers.filter((a) => a.res.status === 503);
    assert.equal(ok.length + shed.length, 150, `other statuses: ${answers.filter((a) => a.res.status !== 200 && a.res.status !== 503).map((a) => a.res.status).join(',')}`);
    assert.ok(ok.length > 0 && shed.length > 0, `${ok.length} stored, ${shed.length} shed`);
    assert.ok(shed.every((a) => a.res.header('retry-after') !== null && a.res.header('x-weave-backoff') !== null));
    const listing = await u.get('/storage/bookmarks?full=1');
    assert.equal(listing.status, 200);
    const stored = new Map((JSON.parse(listing.text) as Array<{ id: string; payload: string }>).map((b) => [b.id, b.payload]));
    for (const a of ok) assert.equal(stored.get(`r${a.i}`), `p${a.i}`, `acknowledged r${a.i} is stored`);
    for (const a of shed) assert.equal(stored.has(`r${a.i}`), false, `shed r${a.i} was not stored`);
  });
});
