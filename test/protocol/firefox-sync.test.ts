// Plays what Firefox desktop does (spec 10.1): a first sync from a fresh start on one device,
// then an incremental sync on a second device, checking every response the client relies on.
import assert from 'node:assert/strict';
import type { SyncClient, SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const FX_ACCEPT = 'application/json;q=0.9,*/*;q=0.2';
const TWO_DECIMALS = /^\d+\.\d\d$/;

function lastModified(res: SyncResponse): string {
  const lm = res.header('x-last-modified');
  assert.match(lm ?? '', TWO_DECIMALS, 'every success carries X-Last-Modified');
  assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS);
  assert.ok(Number(res.header('x-weave-timestamp')) >= Number(lm), 'server time is never behind X-Last-Modified');
  return lm as string;
}

/** Firefox's PostQueue: batch=true first, appends, commit on the last, one precondition throughout. */
async function upload(c: SyncClient, collection: string, records: object[], since: string, perPost: number): Promise<string> {
  const posts: object[][] = [];
  for (let i = 0; i < records.length; i += perPost) posts.push(records.slice(i, i + perPost));
  let batch: string | undefined;
  for (const [i, body] of posts.entries()) {
    const last = i === posts.length - 1;
    const q = batch === undefined ? `batch=true${last ? '&commit=true' : ''}` : `batch=${encodeURIComponent(batch)}${last ? '&commit=true' : ''}`;
    const res = await c.request('POST', `/storage/${collection}?${q}`, {
      body,
      contentType: 'text/plain;charset=UTF-8',
      headers: { 'X-If-Unmodified-Since': since },
    });
    if (last) {
      assert.equal(res.status, 200, res.text);
      assert.match(res.text, /"modified":\d+\.\d\d/);
      assert.deepEqual(res.json().failed, {});
      return lastModified(res);
    }
    assert.equal(res.status, 202, res.text);
    const id = res.json().batch;
    assert.ok(typeof id === 'string' && id.length > 0, '202 must carry a batch id');
    if (batch !== undefined) assert.equal(id, batch, 'the batch id never changes');
    batch = id;
    lastModified(res);
  }
  throw new Error('no records');
}

describe('Firefox desktop sync flow (spec 10.1)', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('first sync from a fresh start, then an incremental sync on a second device', async () => {
    const desktop = gw.newUser();
    const laptop = gw.newUser({ uid: desktop.uid });

    // Login check, configuration, meta/global (404 => fresh start).
    let res = await desktop.get('/info/collections');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), {});
    assert.equal(lastModified(res), '0.00');
    res = await desktop.get('/info/configuration');
    assert.equal(res.status, 200);
    lastModified(res);
    const config = res.json();
    res = await desktop.get('/storage/meta/global');
    assert.equal(res.status, 404);
    assert.equal(res.text, '0');

    // Fresh start: wipe, meta/global and crypto/keys create-only.
    res = await desktop.request('DELETE', '/storage', { headers: { 'X-Confirm-Delete': '1' } });
    assert.equal(res.status, 200);
    JSON.parse(res.text);
    res = await desktop.request('PUT', '/storage/meta/global', {
      body: { id: 'global', payload: JSON.stringify({ syncID: 'abc', storageVersion: 5, engines: {} }) },
      contentType: 'text/plain;charset=UTF-8',
      headers: { 'X-If-Unmodified-Since': '0' },
    });
    assert.equal(res.status, 200, res.text);
    const metaModified = lastModified(res);
    assert.equal(res.text, metaModified, 'PUT body is the new timestamp');
    res = await desktop.request('PUT', '/storage/crypto/keys', {
      body: { id: 'keys', payload: JSON.stringify({ ciphertext: 'c', IV: 'aXY=', hmac: 'h' }) },
      contentType: 'text/plain;charset=UTF-8',
      headers: { 'X-If-Unmodified-Since': '0' },
    });
    assert.equal(res.status, 200);
    const keysModified = lastModified(res);
    res = await desktop.get('/info/collections');
    assert.ok(res.json().crypto >= Number(keysModified), 'info/collections lists crypto at or after the PUT');
    res = await desktop.get('/storage/crypto/keys');
    assert.equal(res.status, 200);
    assert.equal(res.json().modified, Number(keysModified));

    // Clients engine, then bookmarks uploaded as a batch of 3 POSTs.
    res = await desktop.request('GET', '/storage/clients?full=1&limit=1000', { headers: { Accept: FX_ACCEPT } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), []);
    const clientsAt = await upload(desktop, 'clients', [{ id: 'desktop1', payload: 'client record' }], lastModified(res), 100);
    const bookmarks = Array.from({ length: 250 }, (_, i) => ({ id: `bm${String(i).padStart(4, '0')}`, payload: `bookmark ${i}`, sortindex: i }));
    const bookmarksAt = await upload(desktop, 'bookmarks', bookmarks, '0.00', Math.min(100, config.max_post_records));
    assert.ok(Number(bookmarksAt) > Number(clientsAt));

    // Deletions at the end of an engine sync.
    res = await desktop.delete('/storage/bookmarks?ids=bm0000,bm0001', { 'X-If-Unmodified-Since': bookmarksAt });
    assert.equal(res.status, 200);
    const afterDelete = lastModified(res);

    // Second device: anything changed? Then incremental download pages of 100, offset-protected.
    res = await laptop.get('/info/collections', { 'X-If-Modified-Since': '0.00' });
    assert.equal(res.status, 200);
    const info = res.json();
    assert.deepEqual(Object.keys(info).sort(), ['bookmarks', 'clients', 'crypto', 'meta']);
    assert.equal(info.bookmarks, Number(afterDelete));
    let url = `/storage/bookmarks?newer=0.00&full=1&limit=100`;
    res = await laptop.request('GET', url, { headers: { Accept: FX_ACCEPT } });
    const firstPageLm = lastModified(res);
    const seen: string[] = (res.json() as Array<{ id: string }>).map((b) => b.id);
    while (res.header('x-weave-next-offset')) {
      res = await laptop.request('GET', `${url}&offset=${encodeURIComponent(res.header('x-weave-next-offset')!)}`, {
        headers: { Accept: FX_ACCEPT, 'X-If-Unmodified-Since': firstPageLm },
      });
      assert.equal(res.status, 200);
      assert.equal(lastModified(res), firstPageLm);
      seen.push(...(res.json() as Array<{ id: string }>).map((b) => b.id));
    }
    assert.equal(seen.length, 248);
    assert.equal(new Set(seen).size, 248);

    // The laptop uploads one change; the desktop's next sync sees exactly it.
    const lastSync = afterDelete;
    const laptopAt = await upload(laptop, 'bookmarks', [{ id: 'bm0100', payload: 'renamed' }], lastSync, 100);
    res = await desktop.get('/info/collections', { 'X-If-Modified-Since': lastSync });
    assert.equal(res.status, 200);
    assert.equal(res.json().bookmarks, Number(laptopAt));
    res = await desktop.request('GET', `/storage/bookmarks?newer=${lastSync}&full=1&limit=1000`, { headers: { Accept: FX_ACCEPT } });
    assert.deepEqual(
      (res.json() as Array<{ id: string; payload: string; sortindex: number }>).map((b) => [b.id, b.payload, b.sortindex]),
      [['bm0100', 'renamed', 100]],
      'the update keeps the sortindex it did not send',
    );
    // Nothing new: the poll is a 304.
    res = await desktop.get('/info/collections', { 'X-If-Modified-Since': laptopAt });
    assert.equal(res.status, 304);
    assert.equal(res.text, '');
  });
});
