// Load shedding: X-Weave-Backoff above the soft limit of requests in flight, 503 with
// Retry-After above the hard limit, health checks always answered.
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
