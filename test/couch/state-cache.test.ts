// Reads that reuse a user's committed state, kept coherent by the node's `_db_updates` feed
// (Apache CouchDB; pouchdb-server has no such feed and must leave the cache off). Gateway B
// reaches Couch through a counting pass-through proxy, so the test sees how often B really
// asks Couch for the state, and can cut B's feed while the node itself stays up.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { SyncClient } from '../support/client.js';
import { proxiedCouch } from '../support/proxied-couch.js';

/** A liveness bound for B to see A's write through the feed, not a speed test. */
const COHERENT_DEADLINE_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('state cache coherent with the node\'s _db_updates feed (two gateways, one Couch)', function () {
  this.timeout(60_000);
  const env = proxiedCouch();

  const collectionsOf = async (c: SyncClient) => {
    const r = await c.get('/info/collections');
    assert.equal(r.status, 200, r.text);
    return r.json<Record<string, number>>();
  };

  it('B answers repeated reads without asking Couch when the node has the feed (every read asks Couch when it has not), and B sees its own write at once', async () => {
    const a = await env.gateway(env.couchUrl);
    const b = await env.gateway(env.proxy.url);
    const uid = randomInt(1, 2 ** 31);
    const [ca, cb] = [env.client(a, uid), env.client(b, uid)];
    assert.equal((await ca.post('/storage/bookmarks', [{ id: 'a1', payload: 'one' }])).status, 200);
    await collectionsOf(cb); // opens the user on B
    if (env.feed) await env.feedLive();
    await collectionsOf(cb);
    const before = env.proxy.stateReads;
    for (let i = 0; i < 20; i++) await collectionsOf(cb);
    const reads = env.proxy.stateReads - before;
    if (env.feed) assert.ok(reads <= 2, `20 reads of an unchanged user cost ${reads} state reads from Couch`);
    else assert.ok(reads >= 20, `without a feed every read must ask Couch: 20 reads cost ${reads}`);

    const own = await cb.post('/storage/tabs', [{ id: 't1', payload: 'mine' }]);
    assert.equal(own.status, 200, own.text);
    const mine = await collectionsOf(cb);
    assert.equal(mine.tabs, Number(own.header('x-last-modified')), 'B must show its own write on the next read, without waiting for the feed');
  });

  it('the reads right after B\'s own write start from the state that write committed (no state read from Couch), until the feed reports a change', async function () {
    if (!env.feed) this.skip(); // nothing is cached without a feed; the first test proves B still shows its own write
    const a = await env.gateway(env.couchUrl);
    const b = await env.gateway(env.proxy.url);
    const uid = randomInt(1, 2 ** 31);
    const [ca, cb] = [env.client(a, uid), env.client(b, uid)];
    assert.equal((await ca.post('/storage/history', [{ id: 'h1', payload: 'a' }])).status, 200);
    await collectionsOf(cb);
    await env.feedLive();
    await sleep(1000); // the events of A's first write have come
    await collectionsOf(cb);
    // From here B hears of every write, its own included, 3 s late: the rest of a sync comes first.
    env.proxy.feedDelayMs = 3000;
    const before = env.proxy.stateReads;
    const own = await cb.post('/storage/history', [{ id: 'h2', payload: 'b' }]);
    assert.equal(own.status, 200, own.text);
    const T = Number(own.header('x-last-modified'));
    assert.equal((await collectionsOf(cb)).history, T);
    const listed = await cb.get(`/storage/history?full=1&newer=${(T - 0.01).toFixed(2)}`);
    assert.deepEqual(listed.json<Array<{ id: string }>>().map((r) => r.id), ['h2']);
    const again = await cb.post('/storage/history', [{ id: 'h3', payload: 'c' }], { 'X-If-Unmodified-Since': own.header('x-last-modified') as string });
    assert.equal(again.status, 200, again.text);
    assert.equal((await collectionsOf(cb)).history, Number(again.header('x-last-modified')));
    assert.equal(env.proxy.stateReads - before, 0, 'two POSTs and the reads between them asked Couch for the state');
    // A write by another gateway after B's: once B's feed reports it, B's next read asks Couch.
    const w = await ca.post('/storage/history', [{ id: 'h4', payload: 'd' }]);
    assert.equal(w.status, 200, w.text);
    const Ta = Number(w.header('x-last-modified'));
    const deadline = Date.now() + COHERENT_DEADLINE_MS;
    while ((await collectionsOf(cb)).history !== Ta) {
      assert.ok(Date.now() < deadline, `B still does not show A's write ${COHERENT_DEADLINE_MS} ms after it`);
      await sleep(50);
    }
  });

  it('a write through gateway A reaches gateway B\'s reads (info/collections, its 304, the listing)', async () => {
    const a = await env.gateway(env.couchUrl);
    const b = await env.gateway(env.proxy.url);
    const uid = randomInt(1, 2 ** 31);
    const [ca, cb] = [env.client(a, uid), env.client(b, uid)];
    assert.equal((await ca.post('/storage/history', [{ id: 'h1', payload: 'old' }])).status, 200);
    const seen = await collectionsOf(cb);
    if (env.feed) await env.feedLive();
    await collectionsOf(cb); // cached on B now (when there is a feed)
    const w = await ca.post('/storage/history', [{ id: 'h2', payload: 'new' }]);
    assert.equal(w.status, 200, w.text);
    const T = Number(w.header('x-last-modified'));
    assert.ok(T > (seen.history as number));
    const deadline = Date.now() + COHERENT_DEADLINE_MS;
    for (;;) {
      const now = await collectionsOf(cb);
      if (now.history === T) break;
      assert.ok(env.feed, `without a feed B must show A's write at once; it shows ${now.history}, A wrote ${T}`);
      assert.ok(now.history === seen.history, `B shows a timestamp that was never written: ${now.history}`);
      assert.ok(Date.now() < deadline, `B still shows ${now.history} ${COHERENT_DEADLINE_MS} ms after A wrote ${T}`);
      await sleep(20);
    }
    const notModified = await cb.get('/info/collections', { 'X-If-Modified-Since': (seen.history as number).toFixed(2) });
    assert.equal(notModified.status, 200, 'modified since the old timestamp: not a 304');
    const listed = await cb.get('/storage/history?full=1');
    assert.deepEqual(listed.json<Array<{ id: string }>>().map((r) => r.id).sort(), ['h1', 'h2']);
  });

  it('while B\'s feed is cut, B trusts nothing it cached: A\'s write shows on B\'s very next read', async function () {
    if (!env.feed) this.skip(); // nothing is cached without a feed; the first test proves that case
    const a = await env.gateway(env.couchUrl);
    const b = await env.gateway(env.proxy.url);
    const uid = randomInt(1, 2 ** 31);
    const [ca, cb] = [env.client(a, uid), env.client(b, uid)];
    assert.equal((await ca.post('/storage/forms', [{ id: 'f1', payload: 'x' }])).status, 200);
    await collectionsOf(cb);
    await env.feedLive();
    await collectionsOf(cb);
    const cutAt = env.proxy.feedRequests;
    env.proxy.cutFeed();
    // B has noticed once it asks for the feed again (and is refused).
    for (let i = 0; env.proxy.feedRequests === cutAt; i++) {
      assert.ok(i < 400, 'gateway B never asked for its feed again after it was cut');
      await sleep(25);
    }
    const w = await ca.post('/storage/forms', [{ id: 'f2', payload: 'y' }]);
    const T = Number(w.header('x-last-modified'));
    assert.equal((await collectionsOf(cb)).forms, T, 'a gateway whose feed is down must read the state from Couch');
  });

  it('when B\'s feed comes back it catches up from where it broke off: what changed meanwhile is read afresh, the rest of B\'s cache stays good', async function () {
    if (!env.feed) this.skip(); // nothing is cached without a feed
    const a = await env.gateway(env.couchUrl);
    const b = await env.gateway(env.proxy.url);
    const [quiet, busy] = [randomInt(1, 2 ** 31), randomInt(1, 2 ** 31)];
    for (const uid of [quiet, busy]) {
      assert.equal((await env.client(a, uid).post('/storage/forms', [{ id: 'f1', payload: 'x' }])).status, 200);
      await collectionsOf(env.client(b, uid));
    }
    await env.feedLive();
    // The feed's events of those first writes may still come; after them, both cached on B.
    await sleep(1000);
    for (const uid of [quiet, busy]) await collectionsOf(env.client(b, uid));
    const cutAt = env.proxy.feedRequests;
    env.proxy.cutFeed();
    for (let i = 0; env.proxy.feedRequests === cutAt; i++) {
      assert.ok(i < 400, 'gateway B never asked for its feed again after it was cut');
      await sleep(25);
    }
    // Written while B hears nothing of it; B is not asked about either user meanwhile.
    const w = await env.client(a, busy).post('/storage/forms', [{ id: 'f2', payload: 'y' }]);
    const T = Number(w.header('x-last-modified'));
    const refusedAt = env.proxy.feedRequests;
    env.proxy.feedCut = false;
    // Back: B has asked for what it missed, and then follows the feed again.
    for (let i = 0; env.proxy.feedRequests < refusedAt + 2; i++) {
      assert.ok(i < 400, `gateway B did not come back to its feed (${env.proxy.feedRequests - refusedAt} requests since)`);
      await sleep(25);
    }
    assert.equal((await collectionsOf(env.client(b, busy))).forms, T, "the write B's feed missed while cut must show on B's next read");
    const before = env.proxy.stateReads;
    for (let i = 0; i < 5; i++) await collectionsOf(env.client(b, quiet));
    assert.equal(env.proxy.stateReads - before, 0, "the unchanged user's state, cached before the cut, must still be trusted");
  });
});
