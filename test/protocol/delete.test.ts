import assert from 'node:assert/strict';
import type { SyncClient } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;

const lastModified = (res: { header(n: string): string | null }): string => {
  const v = res.header('x-last-modified');
  assert.ok(v !== null, 'X-Last-Modified present');
  assert.match(v, TWO_DECIMALS);
  return v;
};

const ids = async (u: SyncClient, collection: string): Promise<string[]> => {
  const res = await u.get(`/storage/${collection}`);
  assert.equal(res.status, 200);
  return (res.json() as string[]).sort();
};

describe('DELETE storage/*', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('DELETE storage/{c} answers 200, removes the collection from info/collections, and GET answers []', async () => {
    const u = gw.newUser();
    await u.post('/storage/history', [{ id: 'a', payload: 'x' }, { id: 'b', payload: 'y' }]);
    await u.put('/storage/meta/global', { payload: 'm' });
    const del = await u.delete('/storage/history');
    assert.equal(del.status, 200);
    del.json();
    const ic = await u.get('/info/collections');
    assert.deepEqual(Object.keys(ic.json()), ['meta']);
    const get = await u.get('/storage/history');
    assert.equal(get.status, 200);
    assert.deepEqual(get.json(), []);
    assert.equal((await u.get('/storage/history/a')).status, 404);
    assert.deepEqual((await u.get('/info/collection_counts')).json(), { meta: 1 });
  });

  it('DELETE storage/{c} advances the storage timestamp so info/collections with X-If-Modified-Since answers 200, not 304 (bug 1370136)', async () => {
    const u = gw.newUser();
    await u.put('/storage/meta/global', { payload: 'm' });
    const w = await u.post('/storage/bookmarks', [{ id: 'a', payload: 'x' }]);
    const before = lastModified(await u.get('/info/collections'));
    assert.equal(before, lastModified(w));
    const del = await u.delete('/storage/bookmarks');
    assert.equal(del.status, 200);
    const T = Number(lastModified(del));
    assert.ok(T > Number(before), `delete T ${T} after ${before}`);
    const ic = await u.get('/info/collections');
    assert.equal(Number(lastModified(ic)), T);
    const poll = await u.get('/info/collections', { 'X-If-Modified-Since': before });
    assert.equal(poll.status, 200);
    assert.deepEqual(Object.keys(poll.json()), ['meta']);
    // And once caught up, the poll is quiet again.
    assert.equal((await u.get('/info/collections', { 'X-If-Modified-Since': lastModified(ic) })).status, 304);
  });

  it('DELETE storage/{c} of the only collection still advances the storage timestamp', async () => {
    const u = gw.newUser();
    const w = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }]);
    const before = lastModified(w);
    await u.delete('/storage/tabs');
    const ic = await u.get('/info/collections');
    assert.deepEqual(ic.json(), {});
    assert.ok(Number(lastModified(ic)) > Number(before));
    assert.equal((await u.get('/info/collections', { 'X-If-Modified-Since': before })).status, 200);
  });

  it('DELETE storage/{c} of a collection that does not exist answers 200', async () => {
    const u = gw.newUser();
    const res = await u.delete('/storage/nothing');
    assert.equal(res.status, 200);
    res.json();
    assert.deepEqual((await u.get('/info/collections')).json(), {});
  });

  it('DELETE storage/{c}?ids=a,b deletes those records only; the collection stays with timestamp T', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [
      { id: 'a', payload: '1' },
      { id: 'b', payload: '2' },
      { id: 'c', payload: '3' },
    ]);
    const del = await u.delete('/storage/forms?ids=a,b');
    assert.equal(del.status, 200);
    const T = lastModified(del);
    assert.deepEqual(await ids(u, 'forms'), ['c']);
    const ic = await u.get('/info/collections');
    assert.equal(ic.json().forms, Number(T));
    assert.equal((await u.get('/storage/forms/c')).json().payload, '3');
  });

  it('DELETE storage/{c}?ids= with no existing id still sets the collection timestamp to T', async () => {
    const u = gw.newUser();
    const w = await u.post('/storage/forms', [{ id: 'keep', payload: '1' }]);
    const del = await u.delete('/storage/forms?ids=nope1,nope2');
    assert.equal(del.status, 200);
    const T = lastModified(del);
    assert.ok(Number(T) > Number(lastModified(w)));
    assert.deepEqual(await ids(u, 'forms'), ['keep']);
    assert.equal((await u.get('/info/collections')).json().forms, Number(T));
    assert.equal(lastModified(await u.get('/storage/forms')), T);
  });

  it('DELETE storage/{c}?ids= on a missing collection does not create it', async () => {
    const u = gw.newUser();
    await u.put('/storage/meta/global', { payload: 'm' });
    const res = await u.delete('/storage/forms?ids=a,b');
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys((await u.get('/info/collections')).json()), ['meta']);
    assert.deepEqual(await ids(u, 'forms'), []);
  });

  it('DELETE storage/{c}?ids= with more than 100 ids answers 400 and deletes nothing', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'i0', payload: '1' }]);
    const many = Array.from({ length: 101 }, (_, i) => `i${i}`).join(',');
    const res = await u.delete(`/storage/forms?ids=${many}`);
    assert.equal(res.status, 400);
    assert.equal(res.text, '0');
    assert.deepEqual(await ids(u, 'forms'), ['i0']);
    const hundred = Array.from({ length: 100 }, (_, i) => `i${i}`).join(',');
    assert.equal((await u.delete(`/storage/forms?ids=${hundred}`)).status, 200);
    assert.deepEqual(await ids(u, 'forms'), []);
  });

  it('DELETE storage/{c}?ids= with X-If-Unmodified-Since older than the collection answers 412 even if the listed records are unchanged', async () => {
    const u = gw.newUser();
    const first = await u.post('/storage/forms', [{ id: 'a', payload: '1' }]);
    const aTime = lastModified(first);
    const second = await u.post('/storage/forms', [{ id: 'b', payload: '2' }]);
    const res = await u.delete('/storage/forms?ids=a', { 'X-If-Unmodified-Since': aTime });
    assert.equal(res.status, 412);
    assert.equal(res.text, '');
    assert.equal(res.header('x-last-modified'), lastModified(second));
    assert.deepEqual(await ids(u, 'forms'), ['a', 'b']);
    const ok = await u.delete('/storage/forms?ids=a', { 'X-If-Unmodified-Since': lastModified(second) });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ids(u, 'forms'), ['b']);
  });

  it('DELETE storage/{c} with X-If-Unmodified-Since older than the collection answers 412 and keeps it', async () => {
    const u = gw.newUser();
    const w = await u.post('/storage/forms', [{ id: 'a', payload: '1' }]);
    const stale = (Number(lastModified(w)) - 0.01).toFixed(2);
    assert.equal((await u.delete('/storage/forms', { 'X-If-Unmodified-Since': stale })).status, 412);
    assert.deepEqual(await ids(u, 'forms'), ['a']);
  });

  for (const [name, path] of [
    ['DELETE storage', '/storage'],
    ['DELETE on the endpoint URL', ''],
    ['DELETE on the endpoint URL with a trailing slash', '/'],
  ] as const) {
    it(`${name} answers 200 with JSON, removes every collection, and PUT meta/global with X-If-Unmodified-Since: 0 then succeeds`, async () => {
      const u = gw.newUser();
      await u.put('/storage/meta/global', { payload: 'm' });
      await u.put('/storage/crypto/keys', { payload: 'k' });
      await u.post('/storage/history', [{ id: 'h', payload: 'x' }]);
      const res = await u.request('DELETE', path, { headers: { 'X-Confirm-Delete': '1' } });
      assert.equal(res.status, 200);
      assert.match(res.header('content-type') ?? '', /application\/json/);
      res.json(); // valid JSON, as Android parses it
      assert.deepEqual((await u.get('/info/collections')).json(), {});
      assert.deepEqual(await ids(u, 'history'), []);
      assert.equal((await u.get('/storage/meta/global')).status, 404);
      assert.deepEqual((await u.get('/info/collection_counts')).json(), {});
      const put = await u.put('/storage/meta/global', { payload: 'new' }, { 'X-If-Unmodified-Since': '0' });
      assert.equal(put.status, 200);
      const keys = await u.put('/storage/crypto/keys', { payload: 'k2' }, { 'X-If-Unmodified-Since': '0' });
      assert.equal(keys.status, 200);
      assert.equal((await u.get('/storage/meta/global')).json().payload, 'new');
    });
  }

  it('DELETE storage then re-creating a collection does not resurrect old records', async () => {
    const u = gw.newUser();
    await u.post('/storage/history', [
      { id: 'old1', payload: 'x' },
      { id: 'old2', payload: 'y' },
    ]);
    assert.equal((await u.delete('/storage')).status, 200);
    await u.post('/storage/history', [{ id: 'new', payload: 'z' }]);
    assert.deepEqual(await ids(u, 'history'), ['new']);
    assert.equal((await u.get('/storage/history/old1')).status, 404);
    assert.deepEqual((await u.get('/info/collection_counts')).json(), { history: 1 });
  });

  it('DELETE storage/{c} then re-creating the collection does not resurrect old records', async () => {
    const u = gw.newUser();
    await u.post('/storage/history', [{ id: 'old', payload: 'x' }]);
    await u.delete('/storage/history');
    await u.put('/storage/history/new', { payload: 'z' });
    assert.deepEqual(await ids(u, 'history'), ['new']);
    assert.equal((await u.get('/storage/history/old')).status, 404);
  });

  it('DELETE storage with X-If-Unmodified-Since older than the storage timestamp answers 412 and deletes nothing', async () => {
    const u = gw.newUser();
    const a = await u.put('/storage/meta/global', { payload: 'm' });
    const b = await u.post('/storage/history', [{ id: 'h', payload: 'x' }]);
    // Older than storage (b) though not older than the meta collection (a): storage is what counts.
    const res = await u.delete('/storage', { 'X-If-Unmodified-Since': lastModified(a) });
    assert.equal(res.status, 412);
    assert.equal(res.text, '');
    assert.deepEqual(Object.keys((await u.get('/info/collections')).json()).sort(), ['history', 'meta']);
    const endpoint = await u.request('DELETE', '', { headers: { 'X-If-Unmodified-Since': lastModified(a) } });
    assert.equal(endpoint.status, 412);
    const ok = await u.delete('/storage', { 'X-If-Unmodified-Since': lastModified(b) });
    assert.equal(ok.status, 200);
    assert.deepEqual((await u.get('/info/collections')).json(), {});
  });
});
