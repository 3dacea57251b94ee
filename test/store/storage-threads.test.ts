// The embedded store's databases in storage threads: documents and answers cross intact,
// closing releases LevelDB's lock (a gateway restarted in the same process opens them
// again), and a thread's error reaches the caller as an error, not a hang.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PouchBackend } from '../../storage/pouch/pouch-backend.js';
import { ThreadDocDb } from '../../storage/pouch/thread-pool.js';

describe('storage threads (embedded store)', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'syncgate-threads-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('runs the document operations in a thread, and a database closed there opens again', async () => {
    const backend = new PouchBackend(dir, 2);
    await backend.verify();
    const db = await backend.open('42');
    assert.ok(db instanceof ThreadDocDb, 'opened in a storage thread');
    const rev = await db.put({ _id: 'r:tabs:a', c: 'tabs', i: 'a', p: 'é'.repeat(3) } as never);
    assert.match(String(rev), /^1-/);
    assert.equal(await db.put({ _id: 'r:tabs:a' }), 'conflict', 'a compare-and-swap refusal crosses as "conflict"');
    assert.equal(await db.get('missing'), undefined);
    const many = await db.getMany<{ _id: string; p: string }>(['r:tabs:a', 'missing']);
    assert.ok(many instanceof Map);
    assert.equal(many.get('r:tabs:a')?.p, 'ééé');
    const snap = await db.snapshot!('r:', 'r:\uffff');
    assert.deepEqual(snap.docs.map((d) => d._id), ['r:tabs:a']);
    await backend.close('42', db);
    await backend.shutdown();

    const again = new PouchBackend(dir, 1);
    await again.verify();
    const reopened = await again.open('42');
    assert.equal((await reopened.get<{ _id: string; p: string }>('r:tabs:a'))?.p, 'ééé');
    await again.shutdown();
  });

  it('an operation on a database the thread does not hold fails with a message', async () => {
    const backend = new PouchBackend(dir, 1);
    const db = await backend.open('7');
    await backend.close('7', db);
    await assert.rejects(db.get('state'), /not open in this storage thread/);
    await backend.shutdown();
  });
});
