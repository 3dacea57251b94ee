// The design document is code: installed on first use, upgraded by version, never downgraded;
// its validate_doc_update refuses malformed records. Run against a real PouchDB.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { designDoc } from '../../couch-design/index.js';
import { buildDesignDoc, couchSource, DESIGN_ID, DESIGN_VERSION, validateDocUpdate } from '../../couch-design/sync-design.js';
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

  it('every function of the design document is an anonymous function expression, as Apache CouchDB requires', () => {
    const doc = buildDesignDoc() as { views?: unknown; validate_doc_update: string };
    assert.equal(doc.views, undefined, 'no views: nothing queries them, and CouchDB would index them after every write');
    for (const src of [doc.validate_doc_update]) {
      assert.match(src, /^function \(/, 'anonymous');
      // CouchDB evaluates the source as one expression that must yield a function.
      assert.equal(typeof new Function(`return (${src});`)(), 'function');
    }
    function namedMap(doc: { _id: string }): void {
      void doc;
    }
    assert.match(couchSource(namedMap), /^function \(doc\)/, 'a named function loses its name');
    assert.throws(() => couchSource(() => undefined), /not a plain function/, 'an arrow function is refused');
  });

  it('install puts the design document once; a second install changes nothing', async () => {
    assert.equal(await designDoc.install(db), 'installed');
    const first = await pouch.get(DESIGN_ID);
    assert.equal((first as unknown as { version: number }).version, DESIGN_VERSION);
    assert.equal(await designDoc.install(db), 'current');
    assert.equal((await pouch.get(DESIGN_ID))._rev, first._rev);
  });

  it('install upgrades an older version and never downgrades a newer one', async () => {
    await pouch.put({ _id: DESIGN_ID, version: DESIGN_VERSION - 1 });
    assert.equal(await designDoc.install(db), 'upgraded');
    const upgraded = (await pouch.get(DESIGN_ID)) as unknown as { version: number; validate_doc_update: string };
    assert.equal(upgraded.version, DESIGN_VERSION);
    assert.ok(upgraded.validate_doc_update);
    const newer = await pouch.get(DESIGN_ID);
    await pouch.put({ ...newer, version: DESIGN_VERSION + 5, marker: 'from a newer gateway' });
    assert.equal(await designDoc.install(db), 'newer');
    assert.equal(((await pouch.get(DESIGN_ID)) as unknown as { marker: string }).marker, 'from a newer gateway');
  });

  const user = { name: 'someone', roles: [] };
  const good = { _id: 'r:tabs:a', c: 'tabs', i: 'a', w: 20, m: 20, p: 'x', n: 1 };
  const rejects = (doc: object) => assert.throws(() => validateDocUpdate(doc, null, user), (e: { forbidden?: string }) => !!e.forbidden);

  it('validate_doc_update accepts well-formed records, state and batch documents', () => {
    validateDocUpdate(good, null, user);
    validateDocUpdate({ ...good, s: -5, x: 1000 }, null, user);
    validateDocUpdate({ _id: 'state', storage: 0, collections: {} }, null, user);
    validateDocUpdate({ _id: 'b:abc', collection: 'tabs' }, null, user);
    validateDocUpdate({ _id: 'r:tabs:a', _deleted: true }, null, user);
  });

  it('validate_doc_update refuses malformed records and unknown documents from non-admins', () => {
    rejects({ ...good, _id: 'r:tabs:b' });
    rejects({ ...good, c: 'bad name!' , _id: 'r:bad name!:a' });
    rejects({ ...good, p: 42 });
    rejects({ ...good, m: 1.5 });
    rejects({ ...good, s: 'x' });
    rejects({ _id: 'state', storage: 'soon' });
    rejects({ _id: 'other' });
    validateDocUpdate({ _id: 'other' }, null, { name: 'admin', roles: ['_admin'] });
  });

  it('buildDesignDoc carries the version and compiles validate_doc_update to source text', () => {
    const doc = buildDesignDoc() as { version: number; validate_doc_update: string };
    assert.equal(doc.version, DESIGN_VERSION);
    assert.match(doc.validate_doc_update, /^function/);
  });
});
