import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncClient } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

interface Bso {
  id: string;
  modified: number;
  payload: string;
  sortindex?: number;
}

async function ids(u: SyncClient, path: string): Promise<string[]> {
  const res = await u.get(path);
  assert.equal(res.status, 200, res.text);
  return res.json<string[]>().sort();
}

async function fullIds(u: SyncClient, collection: string): Promise<string[]> {
  const res = await u.get(`/storage/${collection}?full=1`);
  assert.equal(res.status, 200, res.text);
  return res
    .json<Bso[]>()
    .map((b) => b.id)
    .sort();
}

async function info<T>(u: SyncClient, what: string): Promise<T> {
  const res = await u.get(`/info/${what}`);
  assert.equal(res.status, 200, res.text);
  return res.json<T>();
}

describe('BSO ttl and expiry', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('a record written with ttl 0 is invisible at once to GET item, listings, ids= and info/*', async () => {
    const u = gw.newUser();
    const post = await u.post('/storage/forms', [
      { id: 'live', payload: 'x'.repeat(1024) },
      { id: 'dead', payload: 'x'.repeat(2048), ttl: 0 },
    ]);
    assert.equal(post.status, 200, post.text);
    assert.deepEqual([...post.json<{ success: string[] }>().success].sort(), ['dead', 'live'], 'ttl 0 is valid');
    const put = await u.put('/storage/forms/deadput', { payload: 'x'.repeat(1024), ttl: 0 });
    assert.equal(put.status, 200, put.text);

    assert.equal((await u.get('/storage/forms/dead')).status, 404);
    assert.equal((await u.get('/storage/forms/deadput')).status, 404);
    assert.deepEqual(await ids(u, '/storage/forms'), ['live']);
    assert.deepEqual(await fullIds(u, 'forms'), ['live']);
    assert.deepEqual(await ids(u, '/storage/forms?ids=dead,deadput,live'), ['live']);
    assert.deepEqual(await ids(u, '/storage/forms?ids=dead'), []);
    assert.deepEqual(await info(u, 'collection_counts'), { forms: 1 });
    assert.deepEqual(await info(u, 'collection_usage'), { forms: 1 });
    assert.deepEqual(await info(u, 'quota'), [1, null]);
  });

  it('a record written with ttl 0 right after a burst of writes by the same user is invisible at once', async () => {
    // A burst of writes pushes each write's timestamp T at least 10 ms past the previous one,
    // so T can run ahead of the clock; ttl 0 still means "already expired" (spec 1.4).
    const u = gw.newUser();
    for (let i = 0; i < 15; i++) assert.equal((await u.put(`/storage/forms/w${i}`, { payload: 'x' })).status, 200);
    const put = await u.put('/storage/forms/dead', { payload: 'x', ttl: 0 });
    assert.equal(put.status, 200, put.text);
    const post = await u.post('/storage/forms', [{ id: 'dead2', payload: 'x', ttl: 0 }]);
    assert.equal(post.status, 200, post.text);
    assert.equal((await u.get('/storage/forms/dead')).status, 404, `PUT at T=${put.text}`);
    assert.equal((await u.get('/storage/forms/dead2')).status, 404);
    assert.deepEqual(await ids(u, '/storage/forms?ids=dead,dead2,w0'), ['w0']);
    assert.deepEqual(await info(u, 'collection_counts'), { forms: 15 });
  });

  it('a record written with ttl 1 is visible, then gone from GET item, listings, ids= and counts once it expires', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/history/viaput', { payload: 'x'.repeat(1024), ttl: 1 });
    assert.equal(put.status, 200, put.text);
    const post = await u.post('/storage/history', [
      { id: 'viapost', payload: 'x'.repeat(1024), ttl: 1 },
      { id: 'forever', payload: 'x'.repeat(1024) },
      { id: 'hour', payload: 'x'.repeat(1024), ttl: 3600 },
    ]);
    assert.equal(post.status, 200, post.text);

    assert.equal((await u.get('/storage/history/viaput')).status, 200);
    assert.equal((await u.get('/storage/history/viapost')).status, 200);
    assert.deepEqual(await ids(u, '/storage/history?ids=viaput,viapost,forever'), ['forever', 'viapost', 'viaput']);
    assert.deepEqual(await info(u, 'collection_counts'), { history: 4 });

    await sleep(1500);

    assert.equal((await u.get('/storage/history/viaput')).status, 404);
    assert.equal((await u.get('/storage/history/viapost')).status, 404);
    assert.deepEqual(await ids(u, '/storage/history'), ['forever', 'hour']);
    assert.deepEqual(await fullIds(u, 'history'), ['forever', 'hour']);
    assert.deepEqual(await ids(u, '/storage/history?ids=viaput,viapost,forever'), ['forever']);
    assert.deepEqual(await info(u, 'collection_counts'), { history: 2 });
    assert.deepEqual(await info(u, 'collection_usage'), { history: 2 });
  });

  it('PUT storage/{c}/{id} over an expired record creates a fresh record: no old sortindex, payload defaults to ""', async () => {
    const u = gw.newUser();
    await u.put('/storage/bookmarks/r1', { payload: 'old', sortindex: 5, ttl: 0 });
    await u.post('/storage/bookmarks', [{ id: 'r2', payload: 'old', sortindex: 6, ttl: 0 }]);

    const r1 = await u.put('/storage/bookmarks/r1', { payload: 'new' });
    assert.equal(r1.status, 200, r1.text);
    assert.deepEqual((await u.get('/storage/bookmarks/r1')).json(), { id: 'r1', modified: Number(r1.text), payload: 'new' });

    const r2 = await u.put('/storage/bookmarks/r2', { sortindex: 7 });
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual((await u.get('/storage/bookmarks/r2')).json(), {
      id: 'r2',
      modified: Number(r2.text),
      payload: '',
      sortindex: 7,
    });
    assert.deepEqual(await info(u, 'collection_counts'), { bookmarks: 2 });
  });

  it('a record that expired after its ttl can be re-created by PUT as a fresh record', async () => {
    const u = gw.newUser();
    await u.put('/storage/bookmarks/r', { payload: 'old', sortindex: 5, ttl: 1 });
    await sleep(1500);
    const put = await u.put('/storage/bookmarks/r', { payload: 'new' });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual((await u.get('/storage/bookmarks/r')).json(), { id: 'r', modified: Number(put.text), payload: 'new' });
  });

  it('a ttl-only update (PUT or POST) keeps the record\'s modified and payload but bumps the collection', async () => {
    const u = gw.newUser();
    const first = await u.put('/storage/forms/a', { payload: 'keep', sortindex: 2 });
    await u.post('/storage/forms', [{ id: 'b', payload: 'keep b' }]);
    const bFirst = (await u.get('/storage/forms/b')).json<Bso>().modified;

    const ttlPut = await u.put('/storage/forms/a', { ttl: 3600 });
    assert.equal(ttlPut.status, 200, ttlPut.text);
    assert.ok(Number(ttlPut.text) > Number(first.text));
    const a = await u.get('/storage/forms/a');
    assert.deepEqual(a.json(), { id: 'a', modified: Number(first.text), payload: 'keep', sortindex: 2 });
    assert.equal(a.header('x-last-modified'), first.text);

    const ttlPost = await u.post('/storage/forms', [{ id: 'b', ttl: 3600 }]);
    assert.equal(ttlPost.status, 200, ttlPost.text);
    const T = ttlPost.json<{ modified: number }>().modified;
    assert.deepEqual((await u.get('/storage/forms/b')).json(), { id: 'b', modified: bFirst, payload: 'keep b' });
    assert.equal((await info<Record<string, number>>(u, 'collections')).forms, T, 'the collection timestamp is bumped');
  });

  it('a ttl-only update sets the expiry from the write: ttl 0 on an existing record expires it', async () => {
    const u = gw.newUser();
    await u.put('/storage/forms/a', { payload: 'x' });
    await u.post('/storage/forms', [{ id: 'b', payload: 'y' }, { id: 'c', payload: 'z' }]);
    assert.equal((await u.put('/storage/forms/a', { ttl: 0 })).status, 200);
    assert.equal((await u.post('/storage/forms', [{ id: 'b', ttl: 0 }])).status, 200);
    assert.equal((await u.get('/storage/forms/a')).status, 404);
    assert.equal((await u.get('/storage/forms/b')).status, 404);
    assert.deepEqual(await ids(u, '/storage/forms'), ['c']);
  });

  it('ttl: null means the record never expires (PUT and POST), and nine-digit ttls are accepted', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/clients/n1', { payload: 'x', ttl: null });
    assert.equal(put.status, 200, put.text);
    const post = await u.post('/storage/clients', [
      { id: 'n2', payload: 'y', ttl: null },
      { id: 'threeyears', payload: 'z', ttl: 3 * 365 * 24 * 3600 },
      { id: 'max', payload: 'w', ttl: 999_999_999 },
    ]);
    assert.equal(post.status, 200, post.text);
    assert.deepEqual(post.json().failed, {});
    await sleep(1100);
    assert.equal((await u.get('/storage/clients/n1')).status, 200);
    assert.equal((await u.get('/storage/clients/n2')).status, 200);
    assert.deepEqual(await ids(u, '/storage/clients'), ['max', 'n1', 'n2', 'threeyears']);
    assert.deepEqual(await info(u, 'collection_counts'), { clients: 4 });
  });

  it('purge() removes expired records from the store and they stay invisible; live records stay', async () => {
    const u = gw.newUser();
    await u.post('/storage/tabs', [
      { id: 'd1', payload: 'x', ttl: 0 },
      { id: 'd2', payload: 'x', ttl: 0 },
      { id: 'live', payload: 'keep', sortindex: 3 },
      { id: 'hour', payload: 'keep', ttl: 3600 },
    ]);
    await u.put('/storage/tabs/d3', { payload: 'x', ttl: 0 });
    const before = (await u.get('/storage/tabs/live')).json<Bso>();

    const removed = await gw.server.store.purge(Date.now() + 5000);
    assert.ok(removed > 0, `purge removed ${removed} documents`);

    for (const id of ['d1', 'd2', 'd3']) assert.equal((await u.get(`/storage/tabs/${id}`)).status, 404, id);
    assert.deepEqual(await ids(u, '/storage/tabs'), ['hour', 'live']);
    assert.deepEqual(await ids(u, '/storage/tabs?ids=d1,d2,d3,live'), ['live']);
    assert.deepEqual((await u.get('/storage/tabs/live')).json(), before);
    assert.deepEqual(await info(u, 'collection_counts'), { tabs: 2 });

    const again = await u.put('/storage/tabs/d1', { payload: 'fresh' });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual((await u.get('/storage/tabs/d1')).json(), { id: 'd1', modified: Number(again.text), payload: 'fresh' });
  });
});

describe('BSO expiry with the background purge running', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_PURGE_INTERVAL: '1' })));
  after(() => gw.close());

  it('records with ttl 1 stay invisible after the background purge ran, and live records are untouched', async () => {
    const u = gw.newUser();
    await u.post('/storage/history', [
      { id: 'e1', payload: 'x', ttl: 1 },
      { id: 'e2', payload: 'x', ttl: 1, sortindex: 4 },
      { id: 'live', payload: 'keep', sortindex: 1 },
    ]);
    await u.put('/storage/history/e3', { payload: 'x', ttl: 1 });
    const live = (await u.get('/storage/history/live')).json<Bso>();
    assert.deepEqual(await ids(u, '/storage/history'), ['e1', 'e2', 'e3', 'live']);

    await sleep(3000);

    for (const id of ['e1', 'e2', 'e3']) assert.equal((await u.get(`/storage/history/${id}`)).status, 404, id);
    assert.deepEqual(await ids(u, '/storage/history'), ['live']);
    assert.deepEqual(await ids(u, '/storage/history?ids=e1,e2,e3,live'), ['live']);
    assert.deepEqual((await u.get('/storage/history/live')).json(), live);
    assert.deepEqual(await info(u, 'collection_counts'), { history: 1 });
    assert.equal(await gw.server.store.purge(Date.now() + 5000), 0, 'the background purge already removed them');

    const again = await u.post('/storage/history', [{ id: 'e2', payload: 'fresh' }]);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual((await u.get('/storage/history/e2')).json(), {
      id: 'e2',
      modified: again.json<{ modified: number }>().modified,
      payload: 'fresh',
    });
  });
});
