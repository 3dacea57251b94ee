// Runs pouchdb-server (argv as for its own bin) with two of its bugs fixed, each by patching
// one line of a module before pouchdb-server loads it. Apache CouchDB has neither bug; these
// only keep the test nodes alive and faithful under replication.
//
// 1. pouchdb-validation overwrites every incoming document's `_revisions` with the stored
//    one's before it calls validate_doc_update. For a replicated write (`new_edits: false`)
//    that throws away the revision history the replicator sent, and the document is silently
//    not stored: replication into a user database that still has one (design version 2,
//    until the gateway upgrades it) would lose data.
// 2. pouchdb-core's changes feed crashes the whole server (an uncaught TypeError) when the
//    winning revision of a document has no stored body, which replicated revision trees can
//    produce under concurrent writes; the change is reported from the document's metadata.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const serverMain = require.resolve('pouchdb-server/lib/index.js');
const fromExpress = createRequire(require.resolve('express-pouchdb/package.json', { paths: [serverMain] }));

type CompilableModule = Module & { _compile(code: string, filename: string): void; filename: string; paths: string[]; loaded: boolean };
const ModuleCtor = Module as unknown as {
  new (id: string, parent?: Module): CompilableModule;
  _nodeModulePaths(dir: string): string[];
  _cache: Record<string, Module>;
};

function patch(path: string, buggy: string, fixed: string): void {
  const source = readFileSync(path, 'utf8');
  if (!source.includes(buggy)) throw new Error(`${path} changed: it no longer has the line this launcher patches`);
  const m = new ModuleCtor(path);
  m.filename = path;
  m.paths = ModuleCtor._nodeModulePaths(path.replace(/[/\\][^/\\]*$/, ''));
  m._compile(source.replace(buggy, fixed), path);
  m.loaded = true;
  ModuleCtor._cache[path] = m;
}

patch(
  fromExpress.resolve('pouchdb-validation'),
  'newDoc._revisions = (oldDoc || {})._revisions;',
  'if (!newDoc._revisions) newDoc._revisions = (oldDoc || {})._revisions;',
);
patch(
  fromExpress.resolve('pouchdb-core'),
  'var changeList = [{rev: doc._rev}];',
  'if (!doc) doc = {_id: metadata.id, _rev: pouchdbMerge.winningRev(metadata)};\n  var changeList = [{rev: doc._rev}];',
);

require(serverMain);
