// A user database holds what syncgate wrote, unless someone with admin rights on the node
// wrote into it past the gateway. Since design version 3 no validate_doc_update stands in the
// way (couch-design/sync-design.ts): the gateway checks each record where it reads it
// (wellFormedRecord), and a document it could not have written is treated as absent. Proved
// by writing malformed record documents straight into a user's database on the test Couch,
// with the admin's credentials, and reading through a real gateway.
import assert from 'node:assert/strict';
import { gatewayBesideCouchAdmin } from '../support/couch-admin.js';

describe('records written into a user database past the gateway (gateway on Couch)', function () {
  this.timeout(60_000);
  const env = gatewayBesideCouchAdmin();

  async function writeDirect(db: string, docs: object[]): Promise<void> {
    const res = await env.couch('POST', `${db}/_bulk_docs`, { docs });
    const out = res.json as Array<{ ok?: boolean; error?: string }>;
    assert.equal(res.status, 201, JSON.stringify(out));
    assert.ok(out.every((r) => r.ok), `Couch took every document (no validate_doc_update): ${JSON.stringify(out)}`);
  }

  it('malformed record documents are never listed, counted or served, and a write replaces one', async () => {
    const u = env.gw.newUser();
    const first = await u.post('/storage/bookmarks', [{ id: 'good', payload: 'kept' }]);
    assert.equal(first.status, 200, first.text);
    const T = Math.round(first.json<{ modified: number }>().modified * 1000);
    const stamp = { w: T - 10, m: T - 10 };
    // Stamped before the committed timestamp: well-formed, these would be live records.
    await writeDirect(`sync_${u.uid}`, [
      { _id: 'r:bookmarks:nopayload', c: 'bookmarks', i: 'nopayload', ...stamp, n: 1 },
      { _id: 'r:bookmarks:numeric', c: 'bookmarks', i: 'numeric', ...stamp, p: 42, n: 2 },
      { _id: 'r:bookmarks:elsewhere', c: 'bookmarks', i: 'other-id', ...stamp, p: 'x', n: 1 },
      { _id: 'r:bookmarks:wellformed', c: 'bookmarks', i: 'wellformed', ...stamp, p: 'direct', n: 6 },
    ]);
    // The gateway's record index reads the database again once the state has moved.
    const second = await u.put('/storage/bookmarks/second', { payload: 'also kept' });
    assert.equal(second.status, 200, second.text);

    const ids = await u.get('/storage/bookmarks');
    assert.equal(ids.status, 200, ids.text);
    assert.deepEqual(ids.json<string[]>().sort(), ['good', 'second', 'wellformed'], 'a well-formed document written directly is a record like any other');
    const full = await u.get('/storage/bookmarks?full=1');
    assert.deepEqual(full.json<Array<{ id: string; payload: string }>>().map((b) => [b.id, b.payload]).sort(), [
      ['good', 'kept'],
      ['second', 'also kept'],
      ['wellformed', 'direct'],
    ]);
    const counts = await u.get('/info/collection_counts');
    assert.deepEqual(counts.json(), { bookmarks: 3 });
    for (const id of ['nopayload', 'numeric', 'elsewhere']) {
      const item = await u.get(`/storage/bookmarks/${id}`);
      assert.equal(item.status, 404, `${id}: ${item.status} ${item.text}`);
    }
    // A write over a malformed document replaces it as if it were absent.
    const over = await u.post('/storage/bookmarks', [{ id: 'numeric', sortindex: 3 }]);
    assert.equal(over.status, 200, over.text);
    assert.deepEqual(over.json<{ success: string[] }>().success, ['numeric']);
    const item = await u.get('/storage/bookmarks/numeric');
    assert.equal(item.status, 200, item.text);
    assert.deepEqual({ ...item.json<object>(), modified: undefined }, { id: 'numeric', payload: '', sortindex: 3, modified: undefined });
  });
});
