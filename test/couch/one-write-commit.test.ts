// A small write commits its records and the state in one bulk request (storage/engine/user-db.ts).
// Should a record lose its compare-and-swap there while the state is committed (another writer
// changed it in Couch: replication, or an admin), the record must still be written, and later
// than that commit, or a client that read the commit would never see it. Proved by changing a
// record straight in the user's database, behind the gateway's record index, with the admin's
// credentials, then writing it again through a real gateway.
import assert from 'node:assert/strict';
import { gatewayBesideCouchAdmin } from '../support/couch-admin.js';

interface Listed {
  id: string;
  payload: string;
  modified: number;
}

describe('a small write committed in one bulk request (gateway on Couch)', function () {
  this.timeout(60_000);
  const env = gatewayBesideCouchAdmin();

  async function direct(method: string, path: string, body?: object): Promise<Record<string, unknown>> {
    const res = await env.couch(method, path, body);
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
    return res.json as Record<string, unknown>;
  }

  it('a record changed in Couch behind the gateway is written in a commit after the one it lost, and the answer carries that commit', async () => {
    const u = env.gw.newUser();
    const first = await u.post('/storage/tabs', [
      { id: 'x', payload: 'x, first' },
      { id: 'y', payload: 'y, first' },
    ]);
    assert.equal(first.status, 200, first.text);
    const T1 = first.json<{ modified: number }>().modified;
    assert.equal((await u.get('/storage/tabs?full=1')).status, 200); // the index is current

    // A new revision of x, written past the gateway: the state does not move, so its index
    // still holds x's old revision.
    const db = `sync_${u.uid}`;
    const doc = await direct('GET', `${db}/${encodeURIComponent('r:tabs:x')}`);
    await direct('PUT', `${db}/${encodeURIComponent('r:tabs:x')}`, { ...doc, p: 'x, behind the gateway' });

    const second = await u.post('/storage/tabs', [
      { id: 'x', payload: 'x, second' },
      { id: 'z', payload: 'z, second' },
    ]);
    assert.equal(second.status, 200, second.text);
    const answer = second.json<{ modified: number; success: string[]; failed: object }>();
    assert.deepEqual([answer.success.sort(), answer.failed], [['x', 'z'], {}]);

    const x = await u.get('/storage/tabs/x');
    assert.equal(x.status, 200, x.text);
    assert.equal(x.json<Listed>().payload, 'x, second', 'the acknowledged write, not the version written behind the gateway');
    assert.equal(x.json<Listed>().modified, answer.modified, "the answer's timestamp is the commit that wrote x");
    const info = await u.get('/info/collections');
    assert.equal(info.json<Record<string, number>>().tabs, answer.modified);
    // A client that saw only the first commit of this write still gets all of it.
    const newer = await u.get(`/storage/tabs?full=1&newer=${T1.toFixed(2)}`);
    assert.deepEqual(
      newer.json<Listed[]>().map((r) => [r.id, r.payload]).sort(),
      [
        ['x', 'x, second'],
        ['z', 'z, second'],
      ],
    );
    const all = await u.get('/storage/tabs?full=1');
    assert.deepEqual(all.json<Listed[]>().map((r) => r.id).sort(), ['x', 'y', 'z']);
  });
});
