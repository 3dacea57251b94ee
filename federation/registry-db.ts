// Where the registry lives: beside the embedded user databases in the data folder, or in one
// database on the Couch of COUCH_URL that every gateway shares (closed like a user database).
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import type { CouchBackend } from '../storage/couch/couch-backend.js';
import type { CouchClient } from '../storage/couch/couch-client.js';
import { CouchDocDb } from '../storage/couch/couch-doc-db.js';
import type { DocDb } from '../storage/doc-db.js';
import { PouchDocDb } from '../storage/pouch/pouch-doc-db.js';

export const REGISTRY_DB = 'syncgate_registry';

export interface RegistryDb {
  db: DocDb;
  /** True when other gateways may write it too (follow its _changes feed). */
  shared: boolean;
  close(): Promise<void>;
}

export function openRegistryDb(opts: { dataDir: string; couch?: { client: CouchClient; backend: CouchBackend } }): RegistryDb {
  if (opts.couch) {
    const { client, backend } = opts.couch;
    const db = new CouchDocDb(client, REGISTRY_DB, () => backend.ensureDatabase(REGISTRY_DB));
    return { db, shared: true, close: async () => {} };
  }
  const pouch = new PouchDB(join(opts.dataDir, 'registry'), { auto_compaction: true } as PouchDB.Configuration.DatabaseConfiguration);
  return { db: new PouchDocDb(pouch), shared: false, close: () => pouch.close() };
}
