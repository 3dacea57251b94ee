// The Store contract, run once per implementation. It speaks only the Store interface; every
// backend (embedded PouchDB today, Couch over HTTP next) must pass it unchanged.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SyncError } from '../../common/errors.js';
import { loadConfig } from '../../server/config.js';
import { createStore } from '../../storage/create-store.js';
import type { Store } from '../../storage/store.js';
import { testCouchUrl } from '../support/couch.js';

interface Implementation {
  name: string;
  open(): Promise<{ store: Store; dispose(): Promise<void> }>;
}

const implementations: Implementation[] = [
  {
    name: 'embedded PouchDB',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'syncgate-contract-'));
      const store = createStore(loadConfig({ SYNCGATE_DATA: dir, SYNCGATE_MAX_OPEN_USERS: '2' }));
      return { store, dispose: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'Couch over HTTP',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'syncgate-contract-'));
      const store = createStore(loadConfig({ SYNCGATE_DATA: dir, SYNCGATE_MAX_OPEN_USERS: '2', COUCH_URL: await testCouchUrl() }));
      await store.start();
      return { store, dispose: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
    },
  },
];

const code = (c: string) => (e: unknown) => e instanceof SyncError && e.code === c;
// Random uids: a real CouchDB named by COUCH_URL keeps databases between runs.
const uid = () => String(randomInt(1, 2 ** 31));

for (const impl of implementations) {
  describe(`Store contract: ${impl.name}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    before(async () => ({ store, dispose } = await impl.open()));
    after(() => dispose());

    it('info of a new user is empty with storage timestamp 0', async () => {
      assert.deepEqual(await store.info(uid(), {}), { storage: 0, collections: {} });
    });

    it('post then list and get return the records with the write timestamp', async () => {
      const u = uid();
      const w = await store.post(u, 'tabs', { records: [{ id: 'a', payload: 'A', sortindex: 2 }, { id: 'b', payload: 'B' }], failed: {} }, {});
      assert.deepEqual(w.success, ['a', 'b']);
      const list = await store.list(u, 'tabs', { full: true, sort: 'index' }, {});
      assert.equal(list.lastModified, w.modified);
      assert.deepEqual(list.items, [
        { id: 'a', modified: w.modified, payload: 'A', sortindex: 2 },
        { id: 'b', modified: w.modified, payload: 'B' },
      ]);
      assert.deepEqual(await store.get(u, 'tabs', 'b', {}), { id: 'b', modified: w.modified, payload: 'B' });
      assert.deepEqual((await store.info(u, {})).collections, { tabs: w.modified });
    });

    it('write timestamps strictly increase and are multiples of 10 ms', async () => {
      const u = uid();
      let last = 0;
      for (let i = 0; i < 10; i++) {
        const w = await store.put(u, 'meta', { id: 'global', payload: String(i) }, {});
        assert.ok(w.modified > last);
        assert.equal(w.modified % 10, 0);
        last = w.modified;
      }
    });

    it('preconditions: not-modified for reads, precondition-failed for stale writes', async () => {
      const u = uid();
      const w = await store.put(u, 'meta', { id: 'global', payload: 'x' }, {});
      await assert.rejects(store.info(u, { ifModifiedSince: w.modified }), code('not-modified'));
      await assert.rejects(store.put(u, 'meta', { id: 'global', payload: 'y' }, { ifUnmodifiedSince: 0 }), code('precondition-failed'));
      await assert.rejects(store.get(u, 'meta', 'nope', {}), code('not-found'));
    });

    it('batches stay invisible until commit, then appear with one timestamp', async () => {
      const u = uid();
      const open = await store.openBatch(u, 'history', { records: [{ id: 'h1', payload: '1' }], failed: {} }, {});
      await store.appendBatch(u, 'history', open.batch, { records: [{ id: 'h2', payload: '2' }], failed: {} }, {});
      assert.deepEqual((await store.list(u, 'history', { full: false }, {})).items, []);
      const c = await store.commitBatch(u, 'history', open.batch, { records: [{ id: 'h3', payload: '3' }], failed: {} }, {});
      const items = (await store.list(u, 'history', { full: true, sort: 'oldest' }, {})).items as Array<{ modified: number }>;
      assert.equal(items.length, 3);
      assert.ok(items.every((i) => i.modified === c.modified));
      await assert.rejects(store.commitBatch(u, 'history', open.batch, { records: [], failed: {} }, {}), code('batch-not-found'));
    });

    it('deleteCollection hides every record at once and advances the storage timestamp', async () => {
      const u = uid();
      const records = Array.from({ length: 300 }, (_, i) => ({ id: `r${i}`, payload: 'x' }));
      for (let i = 0; i < 300; i += 100) await store.post(u, 'forms', { records: records.slice(i, i + 100), failed: {} }, {});
      const t = await store.deleteCollection(u, 'forms', {});
      assert.deepEqual(await store.info(u, {}), { storage: t, collections: {} });
      assert.deepEqual((await store.list(u, 'forms', { full: false }, {})).items, []);
      await store.post(u, 'forms', { records: [{ id: 'new', payload: 'n' }], failed: {} }, {});
      assert.deepEqual((await store.list(u, 'forms', { full: false }, {})).items, ['new']);
    });

    it('deleteAll removes every collection and keeps the storage timestamp at the wipe', async () => {
      const u = uid();
      await store.post(u, 'a', { records: [{ id: '1', payload: '' }], failed: {} }, {});
      await store.post(u, 'b', { records: [{ id: '1', payload: '' }], failed: {} }, {});
      const t = await store.deleteAll(u, {});
      assert.deepEqual(await store.info(u, {}), { storage: t, collections: {} });
      const usage = await store.usage(u, {});
      assert.deepEqual(usage.counts, {});
    });

    it('users evicted from the open-database pool keep their data (pool of 2, 5 users)', async () => {
      const users = [uid(), uid(), uid(), uid(), uid()];
      for (const u of users) await store.put(u, 'meta', { id: 'global', payload: u }, {});
      for (const u of users) assert.equal((await store.get(u, 'meta', 'global', {})).payload, u);
    });

    it('usage counts only live records', async () => {
      const u = uid();
      await store.post(u, 'forms', { records: [{ id: 'a', payload: 'xx' }, { id: 'b', payload: 'yyy', ttl: 0 }], failed: {} }, {});
      const usage = await store.usage(u, {});
      assert.deepEqual(usage.counts, { forms: 1 });
      assert.deepEqual(usage.bytes, { forms: 2 });
    });
  });
}
