// Replication between Couch nodes can leave a user's documents with several leaf revisions,
// and Couch's own winner (revision history) says nothing about what the user wrote last. The
// engine resolves them (storage/engine/conflicts.ts) before anything reaches a client: a
// record's newest write wins, the `state` document's timestamps are merged by max with
// deletions honoured. Proved here by injecting revisions into a user's Couch database exactly
// as the replicator does (_bulk_docs with new_edits: false), with the injected revision both
// as Couch's winner and as its loser, and reading through a real gateway.
import assert from 'node:assert/strict';
import { formatSeconds } from '../../common/timestamps.js';
import { mergeStates, pickRecord } from '../../storage/engine/conflicts.js';
import type { RecordDoc, StateDoc } from '../../storage/engine/docs.js';
import type { SyncClient } from '../support/client.js';
import { testCouchUrl, basicAuth } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/** Every ordering of xs. */
function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

const rec = (over: Partial<RecordDoc>): RecordDoc => ({
  _id: 'r:bookmarks:a',
  _rev: '1-aaaa',
  c: 'bookmarks',
  i: 'a',
  w: 1000,
  m: 1000,
  p: 'x',
  n: 1,
  ...over,
});

const state = (over: Partial<StateDoc>): StateDoc => ({
  _id: 'state',
  storage: 0,
  collections: {},
  cleared: {},
  clearedAll: 0,
  pending: null,
  ...over,
});

describe('replication conflicts: pickRecord and mergeStates (storage/engine/conflicts.ts)', () => {
  it('pickRecord: the larger write stamp w wins, even against a larger modified m and a larger _rev', () => {
    const newer = rec({ _rev: '1-0000', w: 2000, m: 1500, p: 'newer' });
    const older = rec({ _rev: '9-ffff', w: 1990, m: 1990, p: 'older' });
    for (const order of permutations([newer, older])) assert.equal(pickRecord(order).p, 'newer');
  });

  it('pickRecord: with equal w the larger m wins; with equal w and m the larger _rev wins', () => {
    const a = rec({ _rev: '2-ffff', w: 2000, m: 1000, p: 'a' });
    const b = rec({ _rev: '2-0000', w: 2000, m: 1500, p: 'b' });
    for (const order of permutations([a, b])) assert.equal(pickRecord(order).p, 'b');
    const c = rec({ _rev: '3-1111', w: 2000, m: 1500, p: 'c' });
    const d = rec({ _rev: '3-2222', w: 2000, m: 1500, p: 'd' });
    for (const order of permutations([c, d])) assert.equal(pickRecord(order).p, 'd');
  });

  it('pickRecord: the same version is picked whatever the order of four leaves', () => {
    const leaves = [
      rec({ _rev: '4-aa', w: 3000, m: 2000, p: 'w3000-m2000-aa' }),
      rec({ _rev: '4-bb', w: 3000, m: 2000, p: 'w3000-m2000-bb' }),
      rec({ _rev: '5-00', w: 3000, m: 1000, p: 'w3000-m1000' }),
      rec({ _rev: '7-ff', w: 2990, m: 2990, p: 'w2990' }),
    ];
    for (const order of permutations(leaves)) assert.equal(pickRecord(order).p, 'w3000-m2000-bb');
  });

  it('mergeStates: storage and every collection timestamp are the max either side saw, whatever the order', () => {
    const a = state({ _rev: '3-aa', storage: 5000, collections: { bookmarks: 5000, history: 3000 } });
    const b = state({ _rev: '3-bb', storage: 6000, collections: { history: 6000, forms: 4000 } });
    const c = state({ _rev: '2-cc', storage: 2000, collections: { bookmarks: 2000, tabs: 1000 } });
    const expected = { bookmarks: 5000, history: 6000, forms: 4000, tabs: 1000 };
    for (const order of permutations([a, b, c])) {
      const m = mergeStates(order);
      assert.equal(m._id, 'state');
      assert.equal(m.storage, 6000);
      assert.deepEqual(m.collections, expected);
      assert.deepEqual(m.cleared, {});
      assert.equal(m.clearedAll, 0);
    }
  });

  it('mergeStates: a collection deletion beats older writes of that collection on the other side, not newer ones', () => {
    // Node A wrote bookmarks and history at 5000; node B deleted bookmarks at 6000 and history at 4000.
    const a = state({ storage: 5000, collections: { bookmarks: 5000, history: 5000 } });
    const b = state({ storage: 6000, collections: {}, cleared: { bookmarks: 6000, history: 4000 } });
    for (const order of permutations([a, b])) {
      const m = mergeStates(order);
      assert.deepEqual(m.collections, { history: 5000 }, 'bookmarks deleted after its last write; history written after its deletion');
      assert.deepEqual(m.cleared, { bookmarks: 6000, history: 4000 });
      assert.equal(m.storage, 6000);
    }
  });

  it('mergeStates: a whole-storage deletion (clearedAll) removes every collection written at or before it', () => {
    const a = state({ storage: 5000, collections: { bookmarks: 5000, tabs: 7000, forms: 6000 } });
    const b = state({ storage: 6000, collections: {}, clearedAll: 6000 });
    for (const order of permutations([a, b])) {
      const m = mergeStates(order);
      assert.deepEqual(m.collections, { tabs: 7000 });
      assert.equal(m.clearedAll, 6000);
      assert.equal(m.storage, 6000);
    }
  });

  it('mergeStates: of two pending writes the later one is kept, whatever the order', () => {
    const p1 = { T: 5000, collection: 'bookmarks', owner: 'gw-a', lease: 1 };
    const p2 = { T: 5010, collection: 'history', owner: 'gw-b', lease: 1 };
    for (const order of permutations([state({ pending: p1 }), state({ pending: null }), state({ pending: p2 })])) {
      assert.deepEqual(mergeStates(order).pending, p2);
    }
  });

  it('mergeStates: two pending writes with the same T from different gateways give the same result whatever the order', () => {
    // Two nodes, each with its own gateway, may pick the same T = max(now, storage + 10).
    const pa = { T: 5000, collection: 'bookmarks', owner: 'gw-a', lease: 1 };
    const pb = { T: 5000, collection: 'history', owner: 'gw-b', lease: 1 };
    const one = mergeStates([state({ _rev: '4-aa', pending: pa }), state({ _rev: '4-bb', pending: pb })]);
    const other = mergeStates([state({ _rev: '4-bb', pending: pb }), state({ _rev: '4-aa', pending: pa })]);
    assert.deepEqual(one.pending, other.pending);
  });
});

// ---------------------------------------------------------------------------------------------

interface CouchAdmin {
  base: string;
  auth: string;
}

async function couch<T = any>(admin: CouchAdmin, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${admin.base}${path}`, {
    method,
    headers: { Authorization: admin.auth, 'Content-Type': 'application/json', Accept: 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as T };
}

const dbOf = (u: SyncClient) => `sync_${u.uid}`;
const hex32 = (c: string) => c.repeat(32);
const revGen = (rev: string) => Number(rev.split('-')[0]);

interface CouchDoc {
  _id: string;
  _rev: string;
  _conflicts?: string[];
  [k: string]: unknown;
}

async function readDoc(admin: CouchAdmin, db: string, id: string): Promise<CouchDoc> {
  const res = await couch<CouchDoc>(admin, 'GET', `/${db}/${encodeURIComponent(id)}?conflicts=true`);
  assert.equal(res.status, 200, `GET /${db}/${id}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

/** Adds a leaf revision as the replicator does: the given _rev is kept, no conflict check. */
async function inject(admin: CouchAdmin, db: string, doc: CouchDoc): Promise<void> {
  const res = await couch<Array<{ error?: string }>>(admin, 'POST', `/${db}/_bulk_docs`, { new_edits: false, docs: [doc] });
  assert.ok(res.status === 201 || res.status === 200, `_bulk_docs new_edits=false: ${res.status} ${JSON.stringify(res.json)}`);
  assert.ok(!(res.json ?? []).some((r) => r.error), `_bulk_docs new_edits=false: ${JSON.stringify(res.json)}`);
}

/**
 * A _rev that Couch ranks above (gen higher) or below (gen 1, lowest hash) the stored one:
 * Couch's winner is the leaf with the highest generation, then the highest revision hash.
 */
function revAgainst(stored: string, couchPicks: 'injected' | 'stored'): string {
  return couchPicks === 'injected' ? `${revGen(stored) + 5}-${hex32('f')}` : `1-${hex32('0')}`;
}

/** What a client sees of one record: the item and a full listing. */
async function seen(u: SyncClient, collection: string, id: string) {
  const item = await u.get(`/storage/${collection}/${id}`);
  assert.equal(item.status, 200, `GET storage/${collection}/${id}: ${item.status} ${item.text}`);
  return item.json<{ id: string; modified: number; payload: string }>();
}

async function fullListing(u: SyncClient, collection: string) {
  const res = await u.get(`/storage/${collection}?full=1`);
  assert.equal(res.status, 200, `GET storage/${collection}?full=1: ${res.status} ${res.text}`);
  return res.json<Array<{ id: string; modified: number; payload: string }>>();
}

describe('replication conflicts never reach a client (gateway on Couch)', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  let admin: CouchAdmin;

  before(async () => {
    const url = await testCouchUrl();
    const u = new URL(url);
    admin = {
      base: `${u.protocol}//${u.host}`,
      auth: basicAuth(u),
    };
    // The state cache off: what these tests write into Couch behind the gateway's back reaches a
    // caching gateway through the node's feed, 10-50 ms later, and a write's own committed state
    // answers the reads before it (test/couch/state-cache.test.ts proves that path). Here the
    // next read must meet the injected revision.
    gw = await startGateway({ COUCH_URL: url, SYNCGATE_STATE_CACHE_MS: '0' });
  });
  after(() => gw?.close());

  /**
   * A user with bookmarks/a written at T1 ("stored") and bookmarks/b at T2 > T1, so the
   * collection is committed up to T2 and a replicated version of `a` stamped between T1 and T2
   * is committed data, not an unfinished write.
   */
  async function userWithRecord() {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/a', { payload: 'stored' });
    assert.equal(put.status, 200, put.text);
    const T1 = Math.round(Number(put.text) * 1000);
    const put2 = await u.put('/storage/bookmarks/b', { payload: 'other' });
    assert.equal(put2.status, 200, put2.text);
    const T2 = Math.round(Number(put2.text) * 1000);
    assert.ok(T2 >= T1 + 10);
    const db = dbOf(u);
    const stored = await readDoc(admin, db, 'r:bookmarks:a');
    assert.equal(stored.p, 'stored');
    assert.equal(stored.w, T1);
    return { u, db, T1, T2, stored };
  }

  /** Injects a version of bookmarks/a; returns the payload the newest write carries. */
  async function injectRecord(
    db: string,
    stored: CouchDoc,
    T1: number,
    which: 'newer' | 'older',
    couchPicks: 'injected' | 'stored',
  ): Promise<{ payload: string; modified: number }> {
    const stamp = which === 'newer' ? T1 + 10 : T1 - 60_000;
    const payload = which === 'newer' ? 'replicated newer' : 'replicated older';
    const doc: CouchDoc = {
      _id: 'r:bookmarks:a',
      _rev: revAgainst(stored._rev, couchPicks),
      c: 'bookmarks',
      i: 'a',
      w: stamp,
      m: stamp,
      p: payload,
      n: Buffer.byteLength(payload),
    };
    await inject(admin, db, doc);
    const now = await readDoc(admin, db, 'r:bookmarks:a');
    assert.equal(now._conflicts?.length, 1, `the injection made a conflict: ${JSON.stringify(now)}`);
    assert.equal(now._rev, couchPicks === 'injected' ? doc._rev : stored._rev, 'Couch picked the intended winner');
    return which === 'newer' ? { payload, modified: stamp } : { payload: 'stored', modified: T1 };
  }

  async function assertResolved(db: string, id: string, what: string): Promise<CouchDoc> {
    const doc = await readDoc(admin, db, id);
    assert.equal(doc._conflicts, undefined, `${what}: ${id} still has conflicts in Couch: ${JSON.stringify(doc._conflicts)}`);
    return doc;
  }

  for (const which of ['newer', 'older'] as const) {
    for (const couchPicks of ['injected', 'stored'] as const) {
      const winner = couchPicks === 'injected' ? `the replicated ${which} version` : 'the stored version';
      it(`a replicated ${which} version of a record (Couch's winner: ${winner}): GET item and full listing show the newest write once, and Couch is left without conflicts`, async () => {
        const { u, db, T1, stored } = await userWithRecord();
        const newest = await injectRecord(db, stored, T1, which, couchPicks);

        const item = await seen(u, 'bookmarks', 'a');
        assert.equal(item.payload, newest.payload);
        assert.equal(item.modified, Number(formatSeconds(newest.modified)));
        const resolved = await assertResolved(db, 'r:bookmarks:a', 'after GET item');
        assert.equal(resolved.p, newest.payload, 'the resolution stored the newest write');

        const listed = (await fullListing(u, 'bookmarks')).filter((r) => r.id === 'a');
        assert.equal(listed.length, 1, `listed once: ${JSON.stringify(listed)}`);
        assert.equal(listed[0]?.payload, newest.payload);
        assert.equal(listed[0]?.modified, Number(formatSeconds(newest.modified)));
      });
    }
  }

  for (const which of ['newer', 'older'] as const) {
    const couchPicks = which === 'newer' ? 'stored' : 'injected'; // Couch's winner is the stale write
    it(`a full listing as the first read after a replicated ${which} version (Couch's winner is the stale one) shows the newest write once and resolves the conflict`, async () => {
      const { u, db, T1, stored } = await userWithRecord();
      const newest = await injectRecord(db, stored, T1, which, couchPicks);

      const listed = await fullListing(u, 'bookmarks');
      assert.deepEqual(
        listed.map((r) => r.id).sort(),
        ['a', 'b'],
        `each record exactly once: ${JSON.stringify(listed)}`,
      );
      const a = listed.find((r) => r.id === 'a');
      assert.equal(a?.payload, newest.payload);
      assert.equal(a?.modified, Number(formatSeconds(newest.modified)));
      await assertResolved(db, 'r:bookmarks:a', 'after the full listing');
      assert.equal((await seen(u, 'bookmarks', 'a')).payload, newest.payload);
    });

    it(`a replicated ${which} version arriving after the gateway already listed the collection (state unchanged, Couch's winner the stale one) does not surface in the next full listing`, async () => {
      const { u, db, T1, stored } = await userWithRecord();
      const before = await fullListing(u, 'bookmarks');
      assert.equal(before.find((r) => r.id === 'a')?.payload, 'stored');

      const newest = await injectRecord(db, stored, T1, which, couchPicks);
      const listed = await fullListing(u, 'bookmarks');
      const a = listed.filter((r) => r.id === 'a');
      assert.equal(a.length, 1, `listed once: ${JSON.stringify(listed)}`);
      assert.equal(a[0]?.payload, newest.payload, `full listing shows the newest write: ${JSON.stringify(a[0])}`);
      await assertResolved(db, 'r:bookmarks:a', 'after the full listing');
    });
  }

  /** A user with bookmarks written at T1; returns the stored state document. */
  async function userWithState() {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/a', { payload: 'stored' });
    assert.equal(put.status, 200, put.text);
    const T1 = Math.round(Number(put.text) * 1000);
    const db = dbOf(u);
    const st = await readDoc(admin, db, 'state');
    assert.equal(st.storage, T1);
    assert.deepEqual(st.collections, { bookmarks: T1 });
    return { u, db, T1, st };
  }

  for (const couchPicks of ['injected', 'stored'] as const) {
    it(`a replicated state revision (Couch's winner: ${couchPicks === 'injected' ? 'the replicated one' : 'the stored one'}): info/collections shows the union with max timestamps, and the next write is stamped past the merged storage timestamp`, async () => {
      const { u, db, T1, st } = await userWithState();
      // Another node wrote forms well after T1 (its clock ahead), and saw an older bookmarks write.
      const far = T1 + 100_000;
      await inject(admin, db, {
        _id: 'state',
        _rev: revAgainst(st._rev, couchPicks),
        storage: far,
        collections: { bookmarks: T1 - 5_000, forms: far },
        cleared: {},
        clearedAll: 0,
        pending: null,
      });
      const conflicted = await readDoc(admin, db, 'state');
      assert.equal(conflicted._conflicts?.length, 1, `the injection made a conflict: ${JSON.stringify(conflicted)}`);

      const info = await u.get('/info/collections');
      assert.equal(info.status, 200, info.text);
      assert.deepEqual(info.json(), { bookmarks: Number(formatSeconds(T1)), forms: Number(formatSeconds(far)) });
      assert.equal(info.header('x-last-modified'), formatSeconds(far), 'X-Last-Modified is the merged storage timestamp');
      const resolved = await assertResolved(db, 'state', 'after info/collections');
      assert.equal(resolved.storage, far);

      const put = await u.put('/storage/bookmarks/c', { payload: 'later' });
      assert.equal(put.status, 200, put.text);
      const T = Math.round(Number(put.text) * 1000);
      assert.ok(T > far, `the next write (${put.text}) is stamped past the merged storage timestamp (${formatSeconds(far)})`);
      const after = await u.get('/info/collections');
      assert.deepEqual(after.json(), { bookmarks: Number(put.text), forms: Number(formatSeconds(far)) });
      assert.equal((await seen(u, 'bookmarks', 'a')).payload, 'stored', 'records written before the merge stay');
    });
  }

  it('a replicated state revision that deleted a collection after its last write: the collection and its records are gone after the merge', async () => {
    const { u, db, T1 } = await userWithState();
    const put = await u.put('/storage/tabs/t', { payload: 'tab' });
    const Ttabs = Math.round(Number(put.text) * 1000);
    const current = await readDoc(admin, db, 'state');
    // The other node deleted bookmarks (at Ttabs + 10) but never saw the tabs write.
    const deletedAt = Ttabs + 10;
    await inject(admin, db, {
      _id: 'state',
      _rev: revAgainst(current._rev, 'stored'),
      storage: deletedAt,
      collections: {},
      cleared: { bookmarks: deletedAt },
      clearedAll: 0,
      pending: null,
    });

    const info = await u.get('/info/collections');
    assert.equal(info.status, 200, info.text);
    assert.deepEqual(info.json(), { tabs: Number(put.text) }, 'bookmarks deleted, tabs kept');
    const gone = await u.get('/storage/bookmarks/a');
    assert.equal(gone.status, 404, `bookmarks/a (written at ${formatSeconds(T1)}) was deleted at ${formatSeconds(deletedAt)}: ${gone.text}`);
    assert.equal((await seen(u, 'tabs', 't')).payload, 'tab');
    await assertResolved(db, 'state', 'after info/collections');
    const again = await u.put('/storage/bookmarks/new', { payload: 'after' });
    assert.ok(Math.round(Number(again.text) * 1000) > deletedAt, 'the next write is past the deletion');
    assert.deepEqual(
      (await fullListing(u, 'bookmarks')).map((r) => r.id),
      ['new'],
      'only the write after the deletion is listed',
    );
  });

  it('a reader never misses a record that another gateway is rewriting right now: it waits for that write and answers the new version (not a listing without the record, not a 404)', async () => {
    const { u, db, T2 } = await userWithRecord();
    // Warm the gateway's view of the user (state and index) at T2.
    assert.deepEqual((await fullListing(u, 'bookmarks')).map((r) => r.id).sort(), ['a', 'b']);
    // Another gateway is between steps 3 and 4 of a write at Tw: bookmarks/a already carries
    // the new version, the state does not say so yet (its pending marker was put after this
    // gateway's state read, or this gateway read the state just before).
    const Tw = T2 + 1000;
    const current = await readDoc(admin, db, 'r:bookmarks:a');
    const rewrite = await couch(admin, 'PUT', `/${db}/r:bookmarks:a`, { ...current, w: Tw, m: Tw, p: 'rewritten' });
    assert.equal(rewrite.status, 201, JSON.stringify(rewrite.json));
    const reads = Promise.all([fullListing(u, 'bookmarks'), seen(u, 'bookmarks', 'a'), u.get('/storage/bookmarks')]);
    // ...and commits a moment later.
    await new Promise((r) => setTimeout(r, 150));
    const state = await readDoc(admin, db, 'state');
    const committed = await couch(admin, 'PUT', `/${db}/state`, {
      ...state,
      storage: Tw,
      collections: { ...(state.collections as Record<string, number>), bookmarks: Tw },
    });
    assert.equal(committed.status, 201, JSON.stringify(committed.json));
    const [listing, item, ids] = await reads;
    assert.deepEqual(listing.map((r) => [r.id, r.payload]).sort(), [['a', 'rewritten'], ['b', 'other']]);
    assert.equal(item.payload, 'rewritten');
    assert.equal(ids.status, 200);
    assert.deepEqual((ids.json() as string[]).sort(), ['a', 'b']);
  });
});
