// Runs pouchdb-server (argv as for its own bin) with one bug of its validation plugin fixed.
//
// pouchdb-validation overwrites every incoming document's `_revisions` with the stored one's
// before it calls validate_doc_update. For a replicated write (`new_edits: false`) that throws
// away the revision history the replicator sent, and the document is silently not stored:
// replication into any database with a validate_doc_update (every user database) would lose
// data. Apache CouchDB keeps the history; so does this patched copy of the plugin, loaded in
// place of the original before express-pouchdb asks for it.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const serverMain = require.resolve('pouchdb-server/lib/index.js');
const fromServer = createRequire(require.resolve('express-pouchdb/package.json', { paths: [serverMain] }));
const pluginPath = fromServer.resolve('pouchdb-validation');

const BUGGY = 'newDoc._revisions = (oldDoc || {})._revisions;';
const source = readFileSync(pluginPath, 'utf8');
if (!source.includes(BUGGY)) throw new Error(`pouchdb-validation changed: ${pluginPath} no longer has the line this launcher patches`);
const patched = source.replace(BUGGY, 'if (!newDoc._revisions) newDoc._revisions = (oldDoc || {})._revisions;');

type CompilableModule = Module & { _compile(code: string, filename: string): void; filename: string; paths: string[]; loaded: boolean };
const ModuleCtor = Module as unknown as {
  new (id: string, parent?: Module): CompilableModule;
  _nodeModulePaths(dir: string): string[];
  _cache: Record<string, Module>;
};
const m = new ModuleCtor(pluginPath);
m.filename = pluginPath;
m.paths = ModuleCtor._nodeModulePaths(pluginPath.replace(/[/\\][^/\\]*$/, ''));
m._compile(patched, pluginPath);
m.loaded = true;
ModuleCtor._cache[pluginPath] = m;

require(serverMain);
