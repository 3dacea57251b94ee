// Many parallel writers and readers on one user: timestamps strictly increase, nothing
// acknowledged is lost, and X-If-Unmodified-Since lets exactly one of two racing writers win.
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway.js';

describe('one user, many concurrent requests', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('parallel POST and PUT from 8 clients get distinct, strictly increasing timestamps and every acknowledged record is stored', async () => {
    const creds = gw.newUser().creds;
    const clients = Array.from({ length: 8 }, () => gw.newUser({ uid: creds.uid }));
    const acked: Array<{ collection: string; id: string; payload: string; modified: number }> = [];
    const stamps: number[] = [];
    let stop = false;
    const observed: number[][] = [];

    const writers = clients.map(async (c, w) => {
      for (let i = 0; i < 15; i++) {
        const collection = i % 2 === 0 ? 'shared' : `own${w}`;
        const id = `w${w}-${i}`;
        const payload = `payload ${w} ${i}`;
        const res = i % 5 === 4 ? await c.put(`/storage/${collection}/${id}`, { payload }) : await c.post(`/storage/${collection}`, [{ id, payload }]);
        assert.equal(res.status, 200, res.text);
        const modified = Number(res.header('x-last-modified'));
        assert.equal(res.header('x-weave-timestamp'), res.header('x-last-modified'));
        stamps.push(modified);
        acked.push({ collection, id, payload, modified });
      }
    });
    const readers = clients.slice(0, 3).map(async (c) => {
      const seen: number[] = [];
      observed.push(seen);
      while (!stop) {
        const res = await c.get('/info/collections');
        assert.equal(res.status, 200);
        seen.push(Number(res.header('x-last-modified')));
      }
    });
    await Promise.all(writers);
    stop = true;
    await Promise.all(readers);

    assert.equal(new Set(stamps).size, stamps.length, 'no two writes share a timestamp');
    for (const seen of observed) {
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, 'the storage timestamp never goes back');
    }
    const u = clients[0]!;
    for (const a of acked) {
      const r = await u.get(`/storage/${a.collection}/${encodeURIComponent(a.id)}`);
      assert.equal(r.status, 200, `${a.collection}/${a.id} was acknowledged`);
      assert.equal(r.json().payload, a.payload);
      assert.equal(r.json().modified, a.modified);
    }
    const shared = (await u.get('/storage/shared')).json() as string[];
    assert.equal(shared.length, acked.filter((a) => a.collection === 'shared').length);
  });

  it('two POSTs racing with the same X-If-Unmodified-Since: exactly one gets 200, the other 412', async () => {
    const a = gw.newUser();
    const b = gw.newUser({ uid: a.uid });
    const start = await a.post('/storage/bookmarks', [{ id: 'seed', payload: 's' }]);
    let since = start.header('x-last-modified') as string;
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all([
        a.post('/storage/bookmarks', [{ id: `a${round}`, payload: 'a' }], { 'X-If-Unmodified-Since': since }),
        b.post('/storage/bookmarks', [{ id: `b${round}`, payload: 'b' }], { 'X-If-Unmodified-Since': since }),
      ]);
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 412], `round ${round}`);
      const winner = results.find((r) => r.status === 200)!;
      const loser = results.find((r) => r.status === 412)!;
      assert.equal(loser.header('x-last-modified'), winner.header('x-last-modified'));
      since = winner.header('x-last-modified') as string;
    }
    const ids = (await a.get('/storage/bookmarks')).json() as string[];
    assert.equal(ids.length, 21, 'seed plus one winner per round; no loser was written');
  });

  it('two PUTs of meta/global with X-If-Unmodified-Since: 0 (create-only): exactly one wins', async () => {
    const a = gw.newUser();
    const b = gw.newUser({ uid: a.uid });
    const results = await Promise.all([
      a.put('/storage/meta/global', { payload: 'from a' }, { 'X-If-Unmodified-Since': '0' }),
      b.put('/storage/meta/global', { payload: 'from b' }, { 'X-If-Unmodified-Since': '0' }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 412]);
    const stored = (await a.get('/storage/meta/global')).json();
    const winner = results[0]!.status === 200 ? 'from a' : 'from b';
    assert.equal(stored.payload, winner);
  });
});
