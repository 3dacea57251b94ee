import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncClient, SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;
const BODY_MODIFIED = /['"]modified['"]:\s*[0-9]+\.[0-9][0-9]\s*[,}]/;

interface Accepted {
  batch: string;
  success: string[];
  failed: Record<string, string>;
}

interface Committed {
  modified: number;
  success: string[];
  failed: Record<string, string>;
}

interface Bso {
  id: string;
  modified: number;
  payload: string;
  sortindex?: number;
}

const q = (id: string): string => encodeURIComponent(id);

function assertAccepted(res: SyncResponse, what = 'batch POST'): Accepted {
  assert.equal(res.status, 202, `${what}: ${res.status} ${res.text}`);
  const body = res.json<Accepted>();
  assert.deepEqual(Object.keys(body).sort(), ['batch', 'failed', 'success'], `${what}: no modified key`);
  assert.equal(typeof body.batch, 'string');
  assert.ok(body.batch.length > 0);
  assert.match(res.header('x-last-modified') ?? '', TWO_DECIMALS, `${what}: X-Last-Modified`);
  assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS, `${what}: X-Weave-Timestamp`);
  return body;
}

function assertCommitted(res: SyncResponse, what = 'commit'): Committed {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text}`);
  const body = res.json<Committed>();
  assert.deepEqual(Object.keys(body).sort(), ['failed', 'modified', 'success'], `${what}: body keys`);
  assert.match(res.text, BODY_MODIFIED);
  assert.equal(res.header('x-last-modified'), body.modified.toFixed(2), `${what}: X-Last-Modified = modified`);
  assert.equal(res.header('x-weave-timestamp'), body.modified.toFixed(2), `${what}: X-Weave-Timestamp = modified`);
  return body;
}

function assertBadBatch(res: SyncResponse, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.text, '0', `${what}: body 0`);
}

async function collections(u: SyncClient): Promise<Record<string, number>> {
  const res = await u.get('/info/collections');
  assert.equal(res.status, 200, res.text);
  return res.json<Record<string, number>>();
}

async function full(u: SyncClient, collection: string): Promise<Bso[]> {
  const res = await u.get(`/storage/${collection}?full=1`);
  assert.equal(res.status, 200, res.text);
  return res.json<Bso[]>().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function ids(u: SyncClient, collection: string): Promise<string[]> {
  const res = await u.get(`/storage/${collection}`);
  assert.equal(res.status, 200, res.text);
  return res.json<string[]>().sort();
}

/** A well-formed batch id that was never issued. */
const unknownId = (): string => randomBytes(16).toString('base64url');

describe('POST storage/{collection} batch uploads', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('POST storage/{c}?batch=true answers 202 {batch, success, failed} with no modified key and X-Last-Modified 0.00 on a new collection', async () => {
    const u = gw.newUser();
    const res = await u.post('/storage/bookmarks?batch=true', [
      { id: 'a', payload: 'pa' },
      { id: 'b', payload: 'pb' },
    ]);
    const body = assertAccepted(res, 'open');
    assert.deepEqual([...body.success].sort(), ['a', 'b']);
    assert.deepEqual(body.failed, {});
    assert.equal(res.header('x-last-modified'), '0.00');
  });

  it('POST storage/{c}?batch=true on an existing collection answers X-Last-Modified = the collection timestamp and changes nothing', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/old', { payload: 'x' });
    const before = await collections(u);
    const res = await u.post('/storage/bookmarks?batch=true', [{ id: 'a', payload: 'pa' }]);
    assertAccepted(res, 'open');
    assert.equal(res.header('x-last-modified'), put.text);
    assert.deepEqual(await collections(u), before, 'the collection timestamp is unchanged');
  });

  it('POST storage/{c}?batch (empty) and ?batch=TRUE also open a batch', async () => {
    const u = gw.newUser();
    const empty = assertAccepted(await u.post('/storage/forms?batch', [{ id: 'a' }]), '?batch');
    const upper = assertAccepted(await u.post('/storage/forms?batch=TRUE', [{ id: 'b' }]), '?batch=TRUE');
    assert.notEqual(empty.batch, upper.batch, 'two opens give two batches');
  });

  it('POST storage/{c}?batch=<id> appends: 202 with the same id and only this request\'s ids in success', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/bookmarks?batch=true', [{ id: 'a', payload: 'pa' }]));
    const res = await u.post(`/storage/bookmarks?batch=${q(open.batch)}`, [
      { id: 'b', payload: 'pb' },
      { id: 'c', payload: 5 },
    ]);
    const append = assertAccepted(res, 'append');
    assert.equal(append.batch, open.batch);
    assert.deepEqual(append.success, ['b']);
    assert.deepEqual(Object.keys(append.failed), ['c']);
    assert.equal(res.header('x-last-modified'), '0.00');
  });

  it('staged records are invisible to GET storage/{c}, GET storage/{c}/{id} and info/* before the commit', async () => {
    const u = gw.newUser();
    await u.put('/storage/history/existing', { payload: 'old' });
    const before = await collections(u);
    const open = assertAccepted(await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'pa' }]));
    assertAccepted(await u.post(`/storage/history?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }, { id: 'existing', payload: 'new' }]));
    assert.equal((await u.get('/storage/history/a')).status, 404);
    assert.equal((await u.get('/storage/history/b')).status, 404);
    assert.equal((await u.get('/storage/history/existing')).json().payload, 'old');
    assert.deepEqual(await ids(u, 'history'), ['existing']);
    assert.deepEqual(await collections(u), before);
    assert.deepEqual((await u.get('/info/collection_counts')).json(), { history: 1 });
  });

  it('POST storage/{c}?batch=<id>&commit=true answers 200 {modified, success, failed} and makes every staged and committed record visible at T', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/bookmarks?batch=true', [{ id: 'a', payload: 'pa', sortindex: 1 }]));
    assertAccepted(await u.post(`/storage/bookmarks?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }]));
    const res = await u.post(`/storage/bookmarks?batch=${q(open.batch)}&commit=true`, [{ id: 'c', payload: 'pc' }]);
    const commit = assertCommitted(res);
    assert.deepEqual(commit.success, ['c'], 'success lists only the commit request\'s ids');
    assert.deepEqual(commit.failed, {});
    const T = commit.modified;
    assert.deepEqual(await full(u, 'bookmarks'), [
      { id: 'a', modified: T, payload: 'pa', sortindex: 1 },
      { id: 'b', modified: T, payload: 'pb' },
      { id: 'c', modified: T, payload: 'pc' },
    ]);
    assert.equal((await collections(u)).bookmarks, T, 'the collection timestamp becomes T');
  });

  it('POST storage/{c}?batch=<id>&commit=true with an empty body commits the staged records', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/bookmarks?batch=true', [{ id: 'a', payload: 'pa' }]));
    const commit = assertCommitted(await u.post(`/storage/bookmarks?batch=${q(open.batch)}&commit=true`, []));
    assert.deepEqual(commit.success, []);
    assert.deepEqual(await full(u, 'bookmarks'), [{ id: 'a', modified: commit.modified, payload: 'pa' }]);
  });

  it('a record in the commit body wins over the staged version of the same id', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/bookmarks?batch=true', [{ id: 'x', payload: 'staged' }]));
    const commit = assertCommitted(
      await u.post(`/storage/bookmarks?batch=${q(open.batch)}&commit=true`, [{ id: 'x', payload: 'committed' }]),
    );
    assert.deepEqual(commit.success, ['x']);
    const got = await u.get('/storage/bookmarks/x');
    assert.equal(got.json().payload, 'committed');
    assert.equal(got.json().modified, commit.modified);
  });

  it('a later append of the same id merges into the staged copy (sortindex kept when omitted)', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/bookmarks?batch=true', [{ id: 'm', payload: 'p1', sortindex: 9 }]));
    assertAccepted(await u.post(`/storage/bookmarks?batch=${q(open.batch)}`, [{ id: 'm', payload: 'p2' }]));
    assertAccepted(await u.post(`/storage/bookmarks?batch=${q(open.batch)}`, [{ id: 'm', sortindex: null }]));
    const commit = assertCommitted(await u.post(`/storage/bookmarks?batch=${q(open.batch)}&commit=true`, []));
    assert.deepEqual((await u.get('/storage/bookmarks/m')).json(), {
      id: 'm',
      modified: commit.modified,
      payload: 'p2',
      sortindex: 9,
    });
  });

  it('batched records merge into existing records: fields not sent (sortindex) are kept', async () => {
    const u = gw.newUser();
    await u.put('/storage/bookmarks/e', { payload: 'old', sortindex: 3 });
    await u.put('/storage/bookmarks/f', { payload: 'keep', sortindex: 4 });
    const open = assertAccepted(await u.post('/storage/bookmarks?batch=true', [{ id: 'e', payload: 'new' }]));
    const commit = assertCommitted(
      await u.post(`/storage/bookmarks?batch=${q(open.batch)}&commit=true`, [{ id: 'f', sortindex: 8 }]),
    );
    assert.deepEqual(await full(u, 'bookmarks'), [
      { id: 'e', modified: commit.modified, payload: 'new', sortindex: 3 },
      { id: 'f', modified: commit.modified, payload: 'keep', sortindex: 8 },
    ]);
  });

  it('POST storage/{c}?batch=true&commit=true behaves as a plain POST: 200 with modified and no batch key', async () => {
    const u = gw.newUser();
    const res = await u.post('/storage/tabs?batch=true&commit=true', [
      { id: 'a', payload: 'pa' },
      { id: 'b', payload: 5 },
    ]);
    const body = assertCommitted(res, 'batch=true&commit=true');
    assert.deepEqual(body.success, ['a']);
    assert.deepEqual(Object.keys(body.failed), ['b']);
    assert.deepEqual(await full(u, 'tabs'), [{ id: 'a', modified: body.modified, payload: 'pa' }]);
    assert.equal((await collections(u)).tabs, body.modified);
  });

  it('POST storage/{c}?commit=true without batch answers 400 and writes nothing', async () => {
    const u = gw.newUser();
    const res = await u.post('/storage/tabs?commit=true', [{ id: 'a', payload: 'pa' }]);
    assert.equal(res.status, 400, res.text);
    assert.equal((await u.get('/storage/tabs/a')).status, 404);
    assert.equal((await collections(u)).tabs, undefined);
  });

  it('POST storage/{c} with commit other than true (false, 1, yes) answers 400 and commits nothing', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/tabs?batch=true', [{ id: 'a', payload: 'pa' }]));
    for (const value of ['false', '1', 'yes', '']) {
      const res = await u.post(`/storage/tabs?batch=${q(open.batch)}&commit=${value}`, [{ id: 'b', payload: 'pb' }]);
      assert.equal(res.status, 400, `commit=${value}: ${res.status} ${res.text}`);
      const shortcut = await u.post(`/storage/tabs?batch=true&commit=${value}`, [{ id: 'c', payload: 'pc' }]);
      assert.equal(shortcut.status, 400, `batch=true&commit=${value}: ${shortcut.status} ${shortcut.text}`);
    }
    assert.deepEqual(await ids(u, 'tabs'), []);
    // The batch is still usable and holds only what was accepted.
    const commit = assertCommitted(await u.post(`/storage/tabs?batch=${q(open.batch)}&commit=TRUE`, []));
    assert.deepEqual(await full(u, 'tabs'), [{ id: 'a', modified: commit.modified, payload: 'pa' }]);
  });

  it('POST storage/{c}?batch=<unknown or garbage id> answers 400 / 0 for append and commit', async () => {
    const u = gw.newUser();
    await u.put('/storage/tabs/x', { payload: 'x' });
    for (const id of [unknownId(), 'garbage!', 'not a batch', '12345', 'MTUzNjE5ODk3NjkyMQ==']) {
      assertBadBatch(await u.post(`/storage/tabs?batch=${q(id)}`, [{ id: 'a', payload: 'pa' }]), `append ${id}`);
      assertBadBatch(await u.post(`/storage/tabs?batch=${q(id)}&commit=true`, [{ id: 'a', payload: 'pa' }]), `commit ${id}`);
    }
    assert.deepEqual(await ids(u, 'tabs'), ['x']);
  });

  it('POST storage/{c}?batch=<id of another user> answers 400 / 0 and leaves both users\' data apart', async () => {
    const alice = gw.newUser();
    const bob = gw.newUser();
    const open = assertAccepted(await alice.post('/storage/tabs?batch=true', [{ id: 'alice', payload: 'a' }]));
    assertBadBatch(await bob.post(`/storage/tabs?batch=${q(open.batch)}`, [{ id: 'bob', payload: 'b' }]), 'append');
    assertBadBatch(await bob.post(`/storage/tabs?batch=${q(open.batch)}&commit=true`, []), 'commit');
    assert.deepEqual(await ids(bob, 'tabs'), []);
    assertCommitted(await alice.post(`/storage/tabs?batch=${q(open.batch)}&commit=true`, []));
    assert.deepEqual(await ids(alice, 'tabs'), ['alice']);
    assert.deepEqual(await ids(bob, 'tabs'), []);
  });

  it('POST storage/{other collection}?batch=<id> answers 400 / 0: a batch belongs to its collection', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/tabs?batch=true', [{ id: 'a', payload: 'pa' }]));
    assertBadBatch(await u.post(`/storage/forms?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }]), 'append');
    assertBadBatch(await u.post(`/storage/forms?batch=${q(open.batch)}&commit=true`, []), 'commit');
    assert.deepEqual(await ids(u, 'forms'), []);
    assert.deepEqual(await ids(u, 'tabs'), []);
  });

  it('POST storage/{c}?batch=<already committed id> answers 400 / 0 and does not resurrect staged records', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/tabs?batch=true', [{ id: 'a', payload: 'pa' }]));
    assertCommitted(await u.post(`/storage/tabs?batch=${q(open.batch)}&commit=true`, []));
    await u.delete('/storage/tabs/a');
    assertBadBatch(await u.post(`/storage/tabs?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }]), 'append');
    assertBadBatch(await u.post(`/storage/tabs?batch=${q(open.batch)}&commit=true`, []), 'commit');
    assert.deepEqual(await ids(u, 'tabs'), []);
  });

  it('a constant X-If-Unmodified-Since keeps working across open, append and commit', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/history/old', { payload: 'x' });
    const since = { 'X-If-Unmodified-Since': put.text };
    const open = assertAccepted(await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'pa' }], since));
    assertAccepted(await u.post(`/storage/history?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }], since));
    assertAccepted(await u.post(`/storage/history?batch=${q(open.batch)}`, [{ id: 'c', payload: 'pc' }], since));
    const commit = assertCommitted(await u.post(`/storage/history?batch=${q(open.batch)}&commit=true`, [], since));
    assert.deepEqual(await ids(u, 'history'), ['a', 'b', 'c', 'old']);
    assert.ok(commit.modified > Number(put.text));
  });

  it('X-If-Unmodified-Since older than the collection on open answers 412 and opens nothing', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/history/old', { payload: 'x' });
    const res = await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'pa' }], {
      'X-If-Unmodified-Since': (Number(put.text) - 0.01).toFixed(2),
    });
    assert.equal(res.status, 412, res.text);
    assert.equal(res.text, '');
    assert.equal(res.header('x-last-modified'), put.text);
  });

  it('another client writing the collection mid-batch makes the next append and the commit answer 412; nothing of the batch is visible', async () => {
    const u = gw.newUser();
    const other = gw.newUser({ uid: u.uid });
    const put = await u.put('/storage/history/old', { payload: 'x' });
    const since = { 'X-If-Unmodified-Since': put.text };
    const open = assertAccepted(await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'pa' }], since));
    assertAccepted(await u.post(`/storage/history?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }], since));

    const race = await other.post('/storage/history', [{ id: 'theirs', payload: 't' }]);
    assert.equal(race.status, 200, race.text);
    const raced = race.header('x-last-modified');

    const append = await u.post(`/storage/history?batch=${q(open.batch)}`, [{ id: 'c', payload: 'pc' }], since);
    assert.equal(append.status, 412, append.text);
    assert.equal(append.header('x-last-modified'), raced);
    const commit = await u.post(`/storage/history?batch=${q(open.batch)}&commit=true`, [{ id: 'd', payload: 'pd' }], since);
    assert.equal(commit.status, 412, commit.text);
    assert.equal(commit.text, '');
    assert.equal(commit.header('x-last-modified'), raced);

    assert.deepEqual(await ids(u, 'history'), ['old', 'theirs']);
    assert.equal((await collections(u)).history, Number(raced));
  });

  it('a commit answering 412 when another client wrote before it commits nothing', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/history/old', { payload: 'x' });
    const since = { 'X-If-Unmodified-Since': put.text };
    const open = assertAccepted(await u.post('/storage/history?batch=true', [{ id: 'a', payload: 'pa' }], since));
    await u.put('/storage/history/old', { payload: 'changed' });
    const commit = await u.post(`/storage/history?batch=${q(open.batch)}&commit=true`, [], since);
    assert.equal(commit.status, 412, commit.text);
    assert.deepEqual(await ids(u, 'history'), ['old']);
  });

  it('items that fail in a batch are not committed while the rest are', async () => {
    const u = gw.newUser();
    const open = assertAccepted(
      await u.post('/storage/forms?batch=true', [
        { id: 'ok', payload: 'x' },
        { id: 'bad', payload: 5 },
      ]),
    );
    assert.deepEqual(open.success, ['ok']);
    assert.deepEqual(Object.keys(open.failed), ['bad']);
    const commit = assertCommitted(
      await u.post(`/storage/forms?batch=${q(open.batch)}&commit=true`, [
        { id: 'ok2', payload: 'y' },
        { id: 'bad2', payload: 'z', sortindex: 'x' },
        { id: 'bad3', payload: 'z', extra: true },
      ]),
    );
    assert.deepEqual(commit.success, ['ok2']);
    assert.deepEqual(Object.keys(commit.failed).sort(), ['bad2', 'bad3']);
    assert.deepEqual(await ids(u, 'forms'), ['ok', 'ok2']);
  });

  it('the ttl of a batched record counts from the commit, not from the upload', async () => {
    const u = gw.newUser();
    const open = assertAccepted(
      await u.post('/storage/forms?batch=true', [
        { id: 'short', payload: 'x', ttl: 2 },
        { id: 'long', payload: 'x', ttl: 3600 },
        { id: 'dead', payload: 'x', ttl: 0 },
      ]),
    );
    await sleep(2500); // longer than the ttl of "short"
    const commit = assertCommitted(await u.post(`/storage/forms?batch=${q(open.batch)}&commit=true`, []));
    const short = await u.get('/storage/forms/short');
    assert.equal(short.status, 200, 'a record staged with ttl 2 s more than 2 s ago is alive right after the commit');
    assert.equal(short.json().modified, commit.modified);
    assert.equal((await u.get('/storage/forms/long')).status, 200);
    assert.equal((await u.get('/storage/forms/dead')).status, 404, 'ttl 0 is expired at the commit');
    assert.deepEqual(await ids(u, 'forms'), ['long', 'short']);
  });

  it('X-Weave-Total-Records / X-Weave-Total-Bytes over the limits answer 400 / 17; equal is accepted', async () => {
    const u = gw.newUser();
    const { max_total_records: records, max_total_bytes: bytes } = (await u.get('/info/configuration')).json<{
      max_total_records: number;
      max_total_bytes: number;
    }>();
    const item = [{ id: 'a', payload: 'x' }];
    const overRecords = await u.post('/storage/forms?batch=true', item, { 'X-Weave-Total-Records': String(records + 1) });
    assert.equal(overRecords.status, 400, overRecords.text);
    assert.equal(overRecords.text, '17');
    const overBytes = await u.post('/storage/forms?batch=true', item, { 'X-Weave-Total-Bytes': String(bytes + 1) });
    assert.equal(overBytes.status, 400, overBytes.text);
    assert.equal(overBytes.text, '17');
    assert.deepEqual(await collections(u), {}, 'nothing is written');

    const open = assertAccepted(
      await u.post('/storage/forms?batch=true', item, {
        'X-Weave-Total-Records': String(records),
        'X-Weave-Total-Bytes': String(bytes),
      }),
    );
    const appendOver = await u.post(`/storage/forms?batch=${q(open.batch)}`, [{ id: 'b' }], {
      'X-Weave-Total-Records': String(records + 1),
    });
    assert.equal(appendOver.status, 400, appendOver.text);
    assert.equal(appendOver.text, '17');
    const commitOver = await u.post(`/storage/forms?batch=${q(open.batch)}&commit=true`, [{ id: 'c' }], {
      'X-Weave-Total-Bytes': String(bytes + 1),
    });
    assert.equal(commitOver.status, 400, commitOver.text);
    assert.equal(commitOver.text, '17');
    assertCommitted(
      await u.post(`/storage/forms?batch=${q(open.batch)}&commit=true`, [], {
        'X-Weave-Total-Records': String(records),
        'X-Weave-Total-Bytes': String(bytes),
      }),
    );
    assert.deepEqual(await ids(u, 'forms'), ['a']);
  });

  it('DELETE storage/{c} ends an open batch of that collection: a later append or commit answers 400', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/tabs?batch=true', [{ id: 'a', payload: 'pa' }]));
    const del = await u.delete('/storage/tabs');
    assert.equal(del.status, 200, del.text);
    assert.equal((await u.post(`/storage/tabs?batch=${q(open.batch)}`, [{ id: 'b', payload: 'pb' }])).status, 400);
    assert.equal((await u.post(`/storage/tabs?batch=${q(open.batch)}&commit=true`, [])).status, 400);
    assert.deepEqual(await ids(u, 'tabs'), []);
  });

  it('DELETE storage ends every open batch of the user', async () => {
    const u = gw.newUser();
    const tabs = assertAccepted(await u.post('/storage/tabs?batch=true', [{ id: 'a', payload: 'pa' }]));
    const forms = assertAccepted(await u.post('/storage/forms?batch=true', [{ id: 'b', payload: 'pb' }]));
    const del = await u.delete('/storage');
    assert.equal(del.status, 200, del.text);
    assert.equal((await u.post(`/storage/tabs?batch=${q(tabs.batch)}&commit=true`, [])).status, 400);
    assert.equal((await u.post(`/storage/forms?batch=${q(forms.batch)}&commit=true`, [])).status, 400);
    assert.deepEqual(await ids(u, 'tabs'), []);
    assert.deepEqual(await ids(u, 'forms'), []);
  });

  it('two users using batches at the same time get separate data', async () => {
    const users = [gw.newUser(), gw.newUser()];
    const opens = await Promise.all(
      users.map((u, n) => u.post('/storage/bookmarks?batch=true', [{ id: 'same', payload: `open-${n}` }, { id: `only-${n}` }])),
    );
    const batches = opens.map((r) => assertAccepted(r).batch);
    const appends = await Promise.all(
      users.map((u, n) => u.post(`/storage/bookmarks?batch=${q(batches[n]!)}`, [{ id: 'appended', payload: `append-${n}` }])),
    );
    appends.forEach((r) => assertAccepted(r));
    const commits = await Promise.all(
      users.map((u, n) => u.post(`/storage/bookmarks?batch=${q(batches[n]!)}&commit=true`, [{ id: `commit-${n}`, payload: 'c' }])),
    );
    for (let n = 0; n < 2; n++) {
      const T = assertCommitted(commits[n]!).modified;
      assert.deepEqual(await full(users[n]!, 'bookmarks'), [
        { id: 'appended', modified: T, payload: `append-${n}` },
        { id: `commit-${n}`, modified: T, payload: 'c' },
        { id: `only-${n}`, modified: T, payload: '' },
        { id: 'same', modified: T, payload: `open-${n}` },
      ]);
    }
  });
});

describe('POST storage/{collection} batch totals', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_MAX_TOTAL_RECORDS: '5' })));
  after(() => gw.close());

  const items = (...ids: string[]) => ids.map((id) => ({ id, payload: id }));

  it('POST storage/{c}?batch=<id> appending past max_total_records staged records answers 400 / 17', async () => {
    const u = gw.newUser();
    const open = assertAccepted(await u.post('/storage/history?batch=true', items('a', 'b', 'c')));
    assertAccepted(await u.post(`/storage/history?batch=${q(open.batch)}`, items('d', 'e')), 'append up to exactly 5');
    const over = await u.post(`/storage/history?batch=${q(open.batch)}`, items('f'));
    assert.equal(over.status, 400, over.text);
    assert.equal(over.text, '17');
    const commitOver = await u.post(`/storage/history?batch=${q(open.batch)}&commit=true`, items('g'));
    assert.equal(commitOver.status, 400, commitOver.text);
    assert.equal(commitOver.text, '17');
    assert.deepEqual(await ids(u, 'history'), [], 'nothing is visible');
  });

  it('X-Weave-Total-Records equal to max_total_records is accepted, one more answers 400 / 17', async () => {
    const u = gw.newUser();
    assertAccepted(await u.post('/storage/history?batch=true', items('a'), { 'X-Weave-Total-Records': '5' }));
    const over = await u.post('/storage/history?batch=true', items('a'), { 'X-Weave-Total-Records': '6' });
    assert.equal(over.status, 400, over.text);
    assert.equal(over.text, '17');
  });
});
