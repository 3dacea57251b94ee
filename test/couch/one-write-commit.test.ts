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

  it('a record the gateway writes as new, already created in Couch behind it, is written in a commit after the one it lost', async () => {
    // A POST of records the gateway holds to be new goes without a pending state (one write);
    // the record created behind the index refuses it there, as a changed one does above.
    const u = env.gw.newUser();
    const first = await u.post('/storage/forms', [{ id: 'a', payload: 'a, first' }]);
    assert.equal(first.status, 200, first.text);
    const T1 = first.json<{ modified: number }>().modified;
    assert.equal((await u.get('/storage/forms?full=1')).status, 200); // the index is current
    const db = `sync_${u.uid}`;
    await direct('PUT', `${db}/${encodeURIComponent('r:forms:b')}`, { c: 'forms', i: 'b', w: Math.round(T1 * 1000) - 5, m: Math.round(T1 * 1000) - 5, p: 'b, behind the gateway', n: 21 });

    const second = await u.post('/storage/forms', [
      { id: 'b', payload: 'b, second' },
      { id: 'c', payload: 'c, second' },
    ]);
    assert.equal(second.status, 200, second.text);
    const answer = second.json<{ modified: number; success: string[]; failed: object }>();
    assert.deepEqual([answer.success.sort(), answer.failed], [['b', 'c'], {}]);
    const b = await u.get('/storage/forms/b');
    assert.equal(b.status, 200, b.text);
    assert.equal(b.json<Listed>().payload, 'b, second', 'the acknowledged write, not the document created behind the gateway');
    assert.equal(b.json<Listed>().modified, answer.modified, "the answer's timestamp is the commit that wrote b");
    const newer = await u.get(`/storage/forms?full=1&newer=${T1.toFixed(2)}`);
    assert.deepEqual(
      newer.json<Listed[]>().map((r) => [r.id, r.payload]).sort(),
      [
        ['b', 'b, second'],
        ['c', 'c, second'],
      ],
    );
  });

  it('records a lost one-write POST left uncommitted are skipped by readers (not waited for), and show once a later write commits past them', async () => {
    // What a POST of new records leaves when its answer is lost after Couch stored it with a
    // refused state (gateway killed, Couch timed out): records stamped past their collection's
    // timestamp, no pending write in the state. Nothing is in flight, so a reader that waited
    // for one would wait until the next write, and Firefox lists before it writes.
    const u = env.gw.newUser();
    const first = await u.post('/storage/forms', [{ id: 'a', payload: 'a' }]);
    assert.equal(first.status, 200, first.text);
    const T1 = Math.round(first.json<{ modified: number }>().modified * 1000);
    const db = `sync_${u.uid}`;
    const lost = T1 + 10; // past this commit, not past the next (at least 10 ms later)
    await direct('PUT', `${db}/${encodeURIComponent('r:forms:lost')}`, { c: 'forms', i: 'lost', w: lost, m: lost, p: 'never answered', n: 14, f: 1 });

    const listed = await u.get('/storage/forms?full=1');
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json<Listed[]>().map((r) => r.id), ['a']);
    assert.equal((await u.get('/storage/forms/lost')).status, 404);
    const ids = await u.get('/storage/forms');
    assert.deepEqual(ids.json<string[]>(), ['a']);
    // The next write to the collection is stamped past it: from then on it is stored as if
    // written just before that write (its client, never answered 200, will upload it again).
    const later = await u.post('/storage/forms', [{ id: 'b', payload: 'b' }]);
    assert.equal(later.status, 200, later.text);
    const after = await u.get(`/storage/forms?full=1&newer=${(T1 / 1000).toFixed(2)}`);
    assert.deepEqual(after.json<Listed[]>().map((r) => [r.id, r.modified]).sort(), [
      ['b', later.json<{ modified: number }>().modified],
      ['lost', lost / 1000],
    ]);
  });
});
