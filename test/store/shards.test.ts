// The embedded store's LevelDB shards: users that share a shard never see each other's
// documents, deleting one user removes every key of it and nothing of its neighbours, gets
// gathered into one read answer each caller with its own document, and a user database
// written by an earlier version (a LevelDB folder of its own) is still served.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { userDbName } from '../../storage/db-name.js';
import { PouchBackend } from '../../storage/pouch/pouch-backend.js';
import { SHARD_COUNT, shardOf } from '../../storage/pouch/shards.js';

/** Two uids whose databases share a shard. */
function neighbours(): [string, string] {
  const byShard = new Map<number, string>();
  for (let uid = 1; ; uid++) {
    const shard = shardOf(userDbName(String(uid)));
    const other = byShard.get(shard);
    if (other) return [other, String(uid)];
    byShard.set(shard, String(uid));
  }
}

for (const threads of [0, 2]) {
  describe(`LevelDB shards of the embedded store (${threads} storage threads)`, () => {
    let dir: string;
    let backend: PouchBackend;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'syncgate-shards-'));
      backend = new PouchBackend(dir, threads);
      await backend.verify();
    });
    afterEach(async () => {
      await backend.shutdown();
      await rm(dir, { recursive: true, force: true });
    });

    it('keeps users of one shard apart, and deleting one leaves its neighbour whole', async () => {
      const [a, b] = neighbours();
      const dbA = await backend.open(a);
      const dbB = await backend.open(b);
      await dbA.bulk([{ _id: 'r:tabs:1', p: 'a1' }, { _id: 'r:tabs:2', p: 'a2' }] as never);
      await dbB.put({ _id: 'r:tabs:1', p: 'b1' } as never);
      assert.equal((await dbA.get<{ _id: string; p: string }>('r:tabs:1'))?.p, 'a1');
      assert.equal((await dbB.get<{ _id: string; p: string }>('r:tabs:1'))?.p, 'b1');
      assert.deepEqual((await dbB.range('r:', 'r:\uffff')).map((d) => d._id), ['r:tabs:1'], 'a range stops at the user');

      await backend.close(a, dbA);
      await backend.destroy(a);
      const again = await backend.open(a);
      assert.deepEqual(await again.range('', '\uffff'), [], 'nothing of the deleted user is left');
      assert.equal(await again.get('r:tabs:2'), undefined);
      assert.equal((await dbB.get<{ _id: string; p: string }>('r:tabs:1'))?.p, 'b1', 'the neighbour keeps its records');
      assert.deepEqual(await readdir(join(dir, 'users')), [], 'no folder per user');
      assert.deepEqual((await readdir(join(dir, 'shards'))).sort(), [String(shardOf(userDbName(a)))]);
    });

    it('answers many concurrent gets, found and missing, each with its own document', async () => {
      const db = await backend.open('5');
      const ids = Array.from({ length: 300 }, (_, i) => `r:history:${i}`);
      await db.bulk(ids.filter((_, i) => i % 3 !== 0).map((id) => ({ _id: id, p: `payload of ${id}` })) as never);
      const got = await Promise.all(ids.map((id) => db.get<{ _id: string; p: string }>(id)));
      got.forEach((doc, i) => {
        if (i % 3 === 0) assert.equal(doc, undefined, `${ids[i]} was never written`);
        else assert.equal(doc?.p, `payload of ${ids[i]}`);
      });
      const many = await db.getMany<{ _id: string; p: string }>(ids);
      assert.equal(many.size, 200);
      assert.equal(many.get('r:history:1')?.p, 'payload of r:history:1');
    });
  });
}

describe('a user database from an earlier version (a LevelDB folder of its own)', () => {
  it('is still opened from its folder, with everything in it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-shards-'));
    try {
      await mkdir(join(dir, 'users'));
      const own = new PouchDB(join(dir, 'users', userDbName('9')));
      await own.put({ _id: 'r:bookmarks:x', p: 'kept' });
      await own.close();
      const backend = new PouchBackend(dir, 1);
      const db = await backend.open('9');
      assert.equal((await db.get<{ _id: string; p: string }>('r:bookmarks:x'))?.p, 'kept');
      await db.put({ _id: 'r:bookmarks:y', p: 'new' } as never);
      await backend.close('9', db);
      await backend.shutdown();
      assert.ok((await readdir(join(dir, 'users'))).includes(userDbName('9')));
      const shards = await readdir(join(dir, 'shards')).catch(() => []);
      assert.deepEqual(shards, [], 'nothing of it went to a shard');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('shards are a fixed number, so a user finds its shard whatever the thread count', () => {
    assert.equal(SHARD_COUNT, 4);
    const shards = new Set(Array.from({ length: 100 }, (_, i) => shardOf(userDbName(String(i + 1)))));
    assert.equal(shards.size, SHARD_COUNT, 'users spread over every shard');
    assert.equal(shardOf(join('/a', userDbName('77'))), shardOf(join('/b', userDbName('77'))), 'by name, not by folder');
  });
});
