// A write in flight on a node that then dies can reach the replica by replication: a `state`
// whose pending write names another gateway, with a lease still running. Nobody is finishing
// that write on the replica, so the gateway that serves the replica finishes it at once
// (storage/engine/user-db.ts), instead of making the user wait out the dead gateway's lease.
// A pending write begun on the same node keeps its lease: its owner may be alive.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { testCouchUrl, basicAuth } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const LEASE_AHEAD_MS = 60_000;

describe('a pending write that arrived by replication (Couch)', () => {
  let gw: TestGateway;
  let couch: URL;
  let auth: string;
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

  /** A user with one committed record, then a pending write of a live-looking other gateway. */
  async function userWithForeignPending(node: string) {
    const u = gw.newUser({ uid: randomInt(1, 2 ** 31) });
    assert.equal((await u.put('/storage/history/committed', { payload: 'c' })).status, 200);
    const stateUrl = `${couch.origin}/sync_${u.uid}/state`;
    const state = (await (await fetch(stateUrl, { headers: { Authorization: auth } })).json()) as { storage: number; pending?: unknown };
    const T = state.storage + 1000;
    state.pending = {
      T,
      collection: 'history',
      owner: 'a-gateway-on-another-node',
      lease: Date.now() + LEASE_AHEAD_MS,
      node,
      op: { kind: 'write', records: [{ id: 'in-flight', payload: 'p' }] },
    };
    const put = await fetch(stateUrl, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: JSON.stringify(state) });
    assert.equal(put.status, 201);
    return u;
  }

  it('one begun on another node is finished at once by the gateway serving this copy: the next read lists it', async () => {
    const u = await userWithForeignPending('a-node-that-died');
    const started = Date.now();
    const res = await u.get('/storage/history');
    const waited = Date.now() - started;
    assert.equal(res.status, 200);
    assert.deepEqual((res.json() as string[]).sort(), ['committed', 'in-flight']);
    assert.ok(waited < LEASE_AHEAD_MS / 2, `answered without waiting for the lease (${waited} ms)`);
    // Finished, not just read around: the state has no pending write left.
    const state = (await (await fetch(`${couch.origin}/sync_${u.uid}/state`, { headers: { Authorization: auth } })).json()) as { pending?: unknown };
    assert.equal(state.pending ?? null, null);
  });

  it('one begun on this same node by a gateway whose lease runs is left to it: readers wait, then answer 503 + Retry-After', async () => {
    const u = await userWithForeignPending('default');
    const res = await u.get('/storage/history');
    assert.equal(res.status, 503);
    assert.ok(res.header('retry-after'));
    const state = (await (await fetch(`${couch.origin}/sync_${u.uid}/state`, { headers: { Authorization: auth } })).json()) as { pending?: { owner: string } };
    assert.equal(state.pending?.owner, 'a-gateway-on-another-node', 'the live owner keeps its write');
  });
});
