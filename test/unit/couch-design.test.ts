// The design document is code: installed on first use, upgraded by version, never downgraded.
// Since version 3 it holds no function: records are checked where they are read
// (wellFormedRecord). Run against a real PouchDB.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { designDoc } from '../../couch-design/index.js';
import { buildDesignDoc, DESIGN_ID, DESIGN_VERSION } from '../../couch-design/sync-design.js';
import { wellFormedRecord } from '../../storage/engine/docs.js';
import { PouchDocDb } from '../../storage/pouch/pouch-doc-db.js';

describe('couch-design', () => {
  let dir: string;
  let pouch: PouchDB.Database;
  let db: PouchDocDb;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'syncgate-design-'));
    pouch = new PouchDB(join(dir, 'db'));
    db = new PouchDocDb(pouch);
  });
  afterEach(async () => {
    await pouch.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the design document holds no view and no validate_doc_update: CouchDB runs no JavaScript for a user database', () => {
    const doc = buildDesignDoc();
    assert.deepEqual(Object.keys(doc).sort(), ['_id', 'language', 'version']);
    assert.equal(doc.version, DESIGN_VERSION);
  });

  it('install puts the design document once; a second install changes nothing', async () => {
    assert.equal(await designDoc.install(db), 'installed');
    const first = await pouch.get(DESIGN_ID);
    assert.equal((first as unknown as { version: number }).version, DESIGN_VERSION);
    assert.equal(await designDoc.install(db), 'current');
    assert.equal((await pouch.get(DESIGN_ID))._rev, first._rev);
  });

  it('install upgrades an older version (version 2 loses its validate_doc_update) and never downgrades a newer one', async () => {
    await pouch.put({ _id: DESIGN_ID, version: 2, language: 'javascript', validate_doc_update: 'function (newDoc) { if (newDoc.refuse) throw { forbidden: "no" }; }' });
    assert.equal(await designDoc.install(db), 'upgraded');
    const upgraded = (await pouch.get(DESIGN_ID)) as unknown as { version: number; validate_doc_update?: string };
    assert.equal(upgraded.version, DESIGN_VERSION);
    assert.equal(upgraded.validate_doc_update, undefined);
    const newer = await pouch.get(DESIGN_ID);
    await pouch.put({ ...newer, version: DESIGN_VERSION + 5, marker: 'from a newer gateway' });
    assert.equal(await designDoc.install(db), 'newer');
    assert.equal(((await pouch.get(DESIGN_ID)) as unknown as { marker: string }).marker, 'from a newer gateway');
  });

  const good = { _id: 'r:tabs:a', c: 'tabs', i: 'a', w: 20, m: 20, p: 'x', n: 1 };

  it('wellFormedRecord takes the records syncgate writes', () => {
    for (const doc of [good, { ...good, s: -5, x: 1000 }, { ...good, _id: 'r:tabs:a:b', i: 'a:b' }]) assert.equal(wellFormedRecord(doc), doc);
  });

  it('wellFormedRecord refuses documents syncgate would not have written, and nothing', () => {
    const bad: object[] = [
      { ...good, _id: 'r:tabs:b' },
      { ...good, c: 5 },
      { ...good, p: 42 },
      { ...good, p: undefined },
      { ...good, m: 1.5 },
      { ...good, w: -1 },
      { ...good, w: '20' },
      { ...good, n: undefined },
      { ...good, s: 'x' },
      { ...good, x: 1e300 },
    ];
    for (const doc of bad) assert.equal(wellFormedRecord(doc as never), undefined, JSON.stringify(doc));
    assert.equal(wellFormedRecord(undefined), undefined);
  });
});
