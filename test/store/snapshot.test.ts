// The embedded store starts a user's record index from a snapshot (keys, then documents in
// parallel) instead of PouchDB's changes feed: it must see exactly the live records of the
// range, their conflicts, and a sequence from which the feed brings in what came after.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { RECORD_END, RECORD_START, recordId } from '../../storage/engine/docs.js';
import { RecordIndex } from '../../storage/engine/record-index.js';
import type { Doc } from '../../storage/doc-db.js';
import { PouchDocDb } from '../../storage/pouch/pouch-doc-db.js';

const record = (c: string, i: string, w: number) => ({ _id: recordId(c, i), c, i, m: w, w, n: 1, p: 'x' });

describe('record index snapshot (embedded store)', () => {
  let dir: string;
  let pouch: PouchDB.Database;
  let db: PouchDocDb;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'syncgate-snapshot-'));
    pouch = new PouchDB(join(dir, 'db'), { auto_compaction: true } as PouchDB.Configuration.DatabaseConfiguration);
    db = new PouchDocDb(pouch);
  });
  afterEach(async () => {
    await pouch.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds the live records of the range only, with their conflicts', async () => {
    const written = await pouch.bulkDocs([record('history', 'a', 1), record('history', 'b', 1), record('tabs', 'c', 1), { _id: 'state' }, { _id: 'q:batch:000001' }]);
    const b = written[1] as PouchDB.Core.Response;
    await pouch.put({ _id: b.id, _rev: b.rev, _deleted: true });
    // A replicated-in conflict on "a".
    await pouch.bulkDocs([{ ...record('history', 'a', 2), _rev: '1-ffffffffffffffffffffffffffffffff' }], { new_edits: false });
    const snap = await db.snapshot<Doc>(RECORD_START, RECORD_END);
    assert.deepEqual(snap.docs.map((d) => d._id).sort(), ['r:history:a', 'r:tabs:c']);
    assert.equal(snap.docs.find((d) => d._id === 'r:history:a')?._conflicts?.length, 1);
    assert.equal(snap.lastSeq, (await pouch.info()).update_seq);
  });

  it('gives a sequence from which the changes feed completes the index to what the feed alone builds', async () => {
    await pouch.bulkDocs([record('history', 'a', 1), record('history', 'b', 1)]);
    const index = new RecordIndex();
    index.apply(await db.snapshot<Doc>(RECORD_START, RECORD_END));
    // Written after the snapshot: a new record, a changed one and a deletion.
    const b = await pouch.get(recordId('history', 'b'));
    await pouch.bulkDocs([record('history', 'n', 3), { ...b, w: 3, m: 3 }]);
    const a = await pouch.get(recordId('history', 'a'));
    await pouch.remove(a);
    index.apply(await db.changes<Doc>(index.seq));
    const fromFeed = new RecordIndex();
    fromFeed.apply(await db.changes<Doc>(0));
    const entries = (i: RecordIndex) => [...i.entries('history')].sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(entries(index), entries(fromFeed));
    assert.deepEqual(entries(index).map((e) => [e.id, e.w]), [['b', 3], ['n', 3]]);
  });
});
