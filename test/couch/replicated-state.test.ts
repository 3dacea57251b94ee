// What replication can leave of a user's `state` document on a copy, and what the gateway
// serving that copy makes of it:
//   - every revision deleted (a losing leaf's deletion arriving without the version that
//     replaced it; pouchdb-server also loses a winner's body under concurrent replication):
//     read as never written, it would hide every record and restart the timestamps;
//   - a pending write from another node rolled forward here after this copy committed newer
//     writes: it must not overwrite them, nor move the collection's timestamp back.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { testCouchUrl, basicAuth } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/** A liveness bound for the gateway to see a state written behind its back, not a speed test. */
const ARRIVAL_DEADLINE_MS = 10_000;

interface State {
  _rev: string;
  storage: number;
  collections: Record<string, number>;
  pending?: unknown;
}

describe('a state document damaged by replication (Couch)', () => {
  let gw: TestGateway;
  let couch: URL;
  let auth: string;
  const onCouch = (path: string, init: RequestInit = {}) =>
    fetch(`${couch.origin}${path}`, { ...init, headers: { Authorization: auth, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
  before(async () => {
    couch = new URL(await testCouchUrl());
    auth = basicAuth(couch);
    // The state cache off: what these tests write into Couch behind the gateway's back reaches a
    // caching gateway through the node's feed, 10-50 ms later, and a write's own committed state
    // answers the reads before it (test/couch/state-cache.test.ts proves that path). Here the
    // next read must meet the injected revision.
    gw = await startGateway({ COUCH_URL: couch.href, SYNCGATE_STATE_CACHE_MS: '0' });
  });
  after(() => gw.close());

  it('one whose every revision is deleted is rebuilt from them: every record stays listed, timestamps unchanged, the next write hides nothing', async () => {
    const u = gw.newUser({ uid: randomInt(1, 2 ** 31) });
    assert.equal((await u.put('/storage/history/h1', { payload: 'h' })).status, 200);
    assert.equal((await u.put('/storage/bookmarks/b1', { payload: 'b' })).status, 200);
    const info = (await u.get('/info/collections')).json() as Record<string, number>;
    const state = (await (await onCouch(`/sync_${u.uid}/state`)).json()) as State;
    assert.equal((await onCouch(`/sync_${u.uid}/state?rev=${state._rev}`, { method: 'DELETE' })).status, 200);
    assert.equal((await onCouch(`/sync_${u.uid}/state`)).status, 404, 'premise: the state reads as not found');

    assert.deepEqual((await u.get('/info/collections')).json(), info, 'the same collections and timestamps');
    assert.deepEqual((await u.get('/storage/bookmarks')).json(), ['b1']);
    assert.equal((await u.put('/storage/history/h2', { payload: 'h' })).status, 200);
    assert.deepEqual(((await u.get('/storage/history')).json() as string[]).sort(), ['h1', 'h2']);
    assert.deepEqual((await u.get('/storage/bookmarks')).json(), ['b1'], 'another collection is not hidden by the next write');
    assert.equal((await onCouch(`/sync_${u.uid}/state`)).status, 200, 'the state is written again');
  });

  it('a pending write from another node, rolled forward after newer writes here, overwrites none of them and moves no timestamp back', async () => {
    const u = gw.newUser({ uid: randomInt(1, 2 ** 31) });
    assert.equal((await u.put('/storage/history/old', { payload: 'first' })).status, 200);
    const first = (await (await onCouch(`/sync_${u.uid}/state`)).json()) as State;
    assert.equal((await u.put('/storage/history/old', { payload: 'newer' })).status, 200);
    assert.equal((await u.put('/storage/history/other', { payload: 'o' })).status, 200);
    const modified = Number((await u.get('/storage/history')).header('x-last-modified'));
    // The write of 'old' as it was in flight on another node, stamped before the two above.
    const state = (await (await onCouch(`/sync_${u.uid}/state`)).json()) as State;
    state.pending = {
      T: first.storage + 1,
      collection: 'history',
      owner: 'a-gateway-on-another-node',
      lease: Date.now() + 60_000,
      node: 'a-node-that-died',
      op: { kind: 'write', records: [{ id: 'old', payload: 'stale' }, { id: 'gone', payload: 'g' }] },
    };
    assert.equal((await onCouch(`/sync_${u.uid}/state`, { method: 'PUT', body: JSON.stringify(state) })).status, 201);

    // The gateway read this user's state just before; on a node with _db_updates it may answer
    // from that until the feed reports the replicated state (tens of ms): the older view, never
    // a mix. Every answer keeps the newer writes; the rolled-forward one then shows.
    const deadline = Date.now() + ARRIVAL_DEADLINE_MS;
    for (;;) {
      const list = await u.get('/storage/history?full=1');
      assert.equal(list.status, 200);
      const byId = new Map((list.json() as Array<{ id: string; payload: string }>).map((r) => [r.id, r.payload]));
      assert.equal(byId.get('old'), 'newer', 'the newer write kept');
      assert.equal(byId.get('other'), 'o');
      assert.ok(Number(list.header('x-last-modified')) >= modified, 'the collection timestamp did not move back');
      if (byId.get('gone') === 'g') break; // the rolled-forward write applied where nothing newer was
      assert.equal(byId.get('gone'), undefined);
      assert.ok(Date.now() < deadline, `the replicated pending write was not rolled forward within ${ARRIVAL_DEADLINE_MS} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
