// Per-user quota (off by default): usage reported by info/quota, writes over it refused with
// 403 / 14 as production does (spec 6.4), batches refused at once (spec 5.5).
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway.js';

const QUOTA = 4096;

describe('per-user quota (SYNCGATE_QUOTA_BYTES=4096)', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_QUOTA_BYTES: String(QUOTA) })));
  after(() => gw.close());

  it('GET info/quota answers [used KB, quota KB] and info/configuration advertises the quota', async () => {
    const u = gw.newUser();
    await u.put('/storage/prefs/p', { payload: 'x'.repeat(1024) });
    assert.deepEqual((await u.get('/info/quota')).json(), [1, 4]);
    assert.equal((await u.get('/info/configuration')).json().max_quota_limit, QUOTA);
  });

  it('PUT within the quota answers 200 with X-Weave-Quota-Remaining in KB', async () => {
    const u = gw.newUser();
    const res = await u.put('/storage/prefs/p', { payload: 'x'.repeat(1024) });
    assert.equal(res.status, 200);
    assert.equal(res.header('x-weave-quota-remaining'), '3.00');
  });

  it('POST storage/{c} that would pass the quota answers 403 with body 14 and writes nothing', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x'.repeat(3000) }]);
    const res = await u.post('/storage/forms', [{ id: 'b', payload: 'x'.repeat(2000) }]);
    assert.equal(res.status, 403);
    assert.equal(res.text, '14');
    assert.deepEqual((await u.get('/storage/forms')).json(), ['a']);
    const put = await u.put('/storage/forms/c', { payload: 'x'.repeat(2000) });
    assert.equal(put.status, 403);
    assert.equal(put.text, '14');
  });

  it('POST ?batch=true and appends over the quota answer 403 / 14 at once, not per-item failures', async () => {
    const u = gw.newUser();
    const tooBig = await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'x'.repeat(5000) }]);
    assert.equal(tooBig.status, 403);
    assert.equal(tooBig.text, '14');
    const open = await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'x'.repeat(3000) }]);
    assert.equal(open.status, 202);
    const append = await u.post(`/storage/history?batch=${open.json().batch}`, [{ id: 'b', payload: 'x'.repeat(3000) }]);
    assert.equal(append.status, 403);
    assert.equal(append.text, '14');
  });

  it('PUT replacing a record near the quota counts only the growth: same-size update passes, bigger one is refused', async () => {
    const u = gw.newUser();
    assert.equal((await u.put('/storage/forms/a', { payload: 'x'.repeat(4000) })).status, 200);
    assert.equal((await u.put('/storage/forms/a', { payload: 'y'.repeat(4000) })).status, 200);
    assert.equal((await u.put('/storage/forms/a', { payload: 'z'.repeat(4097) })).status, 403);
    assert.equal((await u.get('/storage/forms/a')).json().payload, 'y'.repeat(4000));
  });

  it('deleting records frees quota for new writes', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x'.repeat(4000) }]);
    assert.equal((await u.put('/storage/forms/b', { payload: 'x'.repeat(500) })).status, 403);
    assert.equal((await u.delete('/storage/forms/a')).status, 200);
    assert.equal((await u.put('/storage/forms/b', { payload: 'x'.repeat(500) })).status, 200);
  });

  it('without SYNCGATE_QUOTA_BYTES quotas are off: info/quota answers null and large writes pass', async () => {
    const free = await startGateway();
    try {
      const u = free.newUser();
      const res = await u.put('/storage/forms/a', { payload: 'x'.repeat(100_000) });
      assert.equal(res.status, 200);
      assert.equal(res.header('x-weave-quota-remaining'), null);
      assert.equal((await u.get('/info/quota')).json()[1], null);
    } finally {
      await free.close();
    }
  });
});
