import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;

describe('GET info/*', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('GET info/collections on empty storage answers {} with X-Last-Modified 0.00 and X-Weave-Records 0', async () => {
    const res = await gw.newUser().get('/info/collections');
    assert.equal(res.status, 200);
    assert.match(res.header('content-type') ?? '', /application\/json/);
    assert.deepEqual(res.json(), {});
    assert.equal(res.header('x-last-modified'), '0.00');
    assert.equal(res.header('x-weave-records'), '0');
    assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS);
  });

  it('GET info/collections lists each collection with its two-decimal timestamp', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/meta/global', { payload: 'm' });
    const post = await u.post('/storage/tabs', [{ id: 't1', payload: 'x' }]);
    const res = await u.get('/info/collections');
    assert.equal(res.status, 200);
    assert.match(res.text, /"meta":\d+\.\d\d/);
    assert.deepEqual(res.json(), { meta: Number(put.header('x-last-modified')), tabs: Number(post.header('x-last-modified')) });
    assert.equal(res.header('x-last-modified'), post.header('x-last-modified'));
    assert.equal(res.header('x-weave-records'), '2');
  });

  it('GET info/collections with X-If-Modified-Since at the storage timestamp answers 304 with no body', async () => {
    const u = gw.newUser();
    const w = await u.put('/storage/meta/global', { payload: 'm' });
    const lm = w.header('x-last-modified') as string;
    const res = await u.get('/info/collections', { 'X-If-Modified-Since': lm });
    assert.equal(res.status, 304);
    assert.equal(res.text, '');
    assert.equal(res.header('x-last-modified'), lm);
    assert.ok(res.header('x-weave-timestamp'));
    const older = await u.get('/info/collections', { 'X-If-Modified-Since': (Number(lm) - 0.01).toFixed(2) });
    assert.equal(older.status, 200);
  });

  it('GET info/quota answers [used KB, null] with quotas off', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x'.repeat(512) }]);
    const res = await u.get('/info/quota');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), [0.5, null]);
  });

  it('GET info/collection_usage and info/collection_counts count live records only', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [
      { id: 'a', payload: 'x'.repeat(1024) },
      { id: 'b', payload: 'x'.repeat(1024) },
      { id: 'gone', payload: 'x'.repeat(1024), ttl: 0 },
    ]);
    await u.put('/storage/meta/global', { payload: '' });
    const usage = await u.get('/info/collection_usage');
    assert.deepEqual(usage.json(), { forms: 2, meta: 0 });
    const counts = await u.get('/info/collection_counts');
    assert.deepEqual(counts.json(), { forms: 2, meta: 1 });
    assert.equal(counts.header('x-weave-records'), '2');
  });

  it('GET info/configuration publishes the limits with X-Last-Modified 0.00', async () => {
    const res = await gw.newUser().get('/info/configuration');
    assert.equal(res.status, 200);
    assert.equal(res.header('x-last-modified'), '0.00');
    assert.deepEqual(res.json(), {
      max_post_bytes: 2621440,
      max_post_records: 100,
      max_record_payload_bytes: 2621440,
      max_request_bytes: 2625536,
      max_total_bytes: 262144000,
      max_total_records: 10000,
      max_quota_limit: 2097152000,
    });
  });
});
