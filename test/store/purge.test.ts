// The background purge sweeps every open user each interval; an idle user with nothing to
// purge must cost it no database request (else the sweep is a load that grows with the number
// of users), while expired records, deleted collections and dead batches still go. The
// backend is the real embedded one; the only addition is a count of the calls made on it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../server/config.js';
import { createStore } from '../../storage/create-store.js';
import type { DocDb } from '../../storage/doc-db.js';
import type { Backend } from '../../storage/engine/backend.js';
import type { SyncStore } from '../../storage/engine/sync-store.js';
import { PouchBackend } from '../../storage/pouch/pouch-backend.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The embedded backend, its DocDb calls counted. */
function counted(inner: Backend): { backend: Backend; calls: () => number } {
  let calls = 0;
  const wrap = (db: DocDb): DocDb =>
    new Proxy(db, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          calls++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  const backend: Backend = {
    exclusive: inner.exclusive,
    open: async (uid) => wrap(await inner.open(uid)),
    close: (uid, db) => inner.close(uid, db),
    destroy: (uid) => inner.destroy(uid),
    exists: (uid) => inner.exists(uid),
    check: () => inner.check(),
    verify: () => inner.verify(),
    shutdown: () => inner.shutdown(),
  };
  return { backend, calls: () => calls };
}

describe('background purge of idle users', () => {
  let dir: string;
  let store: SyncStore;
  let calls: () => number;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'syncgate-purge-'));
    const c = counted(new PouchBackend(dir));
    calls = c.calls;
    store = createStore(loadConfig({ SYNCGATE_DATA: dir }), c.backend);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a user with nothing to purge costs the sweep no request, until it writes again', async () => {
    await store.put('1', 'tabs', { id: 'a', payload: 'x' }, {});
    await store.purge();
    const before = calls();
    await store.purge();
    await store.purge();
    assert.equal(calls() - before, 0, 'the idle user was read by the sweep');
    await store.put('1', 'tabs', { id: 'b', payload: 'y' }, {});
    const afterWrite = calls();
    await store.purge();
    assert.ok(calls() > afterWrite, 'a write makes the user due again');
  });

  it('still purges a record when its ttl runs out, with no write in between', async () => {
    await store.post('2', 'forms', { records: [{ id: 'short', payload: 'p', ttl: 1 }, { id: 'long', payload: 'q' }], failed: {} }, {});
    await store.purge(); // loads the index: nothing expired yet
    const before = calls();
    await store.purge();
    assert.equal(calls() - before, 0, 'nothing is due before the expiry');
    await sleep(1100);
    assert.ok((await store.purge()) >= 1, 'the expired record was removed');
    const list = await store.list('2', 'forms', { full: false }, {});
    assert.deepEqual(list.items, ['long']);
  });

  it('a gateway that has just opened many users purges at most N of them per sweep, and never holds back a user that wrote', async () => {
    const users = ['10', '11', '12', '13', '14', '20'];
    for (const uid of users) await store.post(uid, 'forms', { records: [{ id: 'gone', payload: 'p', ttl: 1 }], failed: {} }, {});
    await store.close();
    await sleep(1100);
    // A new gateway process on the same data: it opens every user by reading them.
    store = createStore(loadConfig({ SYNCGATE_DATA: dir }), counted(new PouchBackend(dir)).backend);
    for (const uid of users) await store.info(uid, {});
    await store.put('20', 'tabs', { id: 'new', payload: 'x' }, {});
    const sweeps: number[] = [];
    for (let i = 0; i < 4; i++) sweeps.push(await store.purge(Date.now(), 2));
    const each = sweeps[2] as number;
    assert.ok(each > 0, `each user had an expired record to remove: ${sweeps}`);
    // Users 10 and 11, plus 20 (it wrote here); then 12 and 13; then 14; then nothing.
    assert.deepEqual(sweeps, [3 * each, 2 * each, each, 0]);
  });

  it('still purges a batch that expires unused', async () => {
    const short = createStore(loadConfig({ SYNCGATE_DATA: join(dir, 'short'), SYNCGATE_BATCH_LIFETIME: '1' }));
    try {
      await short.put('3', 'tabs', { id: 'a', payload: 'x' }, {});
      await short.openBatch('3', 'tabs', { records: [{ id: 'b', payload: 'y' }], failed: {} }, {});
      assert.equal(await short.purge(), 0, 'a live batch is kept');
      await sleep(1100);
      assert.ok((await short.purge()) >= 2, 'the dead batch and its chunk were removed');
    } finally {
      await short.close();
    }
  });
});
