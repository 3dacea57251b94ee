// Where per-user usage documents live: a database of their own beside the registry
// (`<data>/usage` embedded, `syncgate_usage` on the Couch of COUCH_URL), not the registry
// itself. Every gateway reads the registry's whole _changes feed, documents included, every
// second: a usage write per active user per flush would travel to every gateway for nothing.
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import type { CouchBackend } from '../storage/couch/couch-backend.js';
import type { CouchClient } from '../storage/couch/couch-client.js';
import { CouchDocDb } from '../storage/couch/couch-doc-db.js';
import type { DocDb } from '../storage/doc-db.js';
import { PouchDocDb } from '../storage/pouch/pouch-doc-db.js';

export const USAGE_DB = 'syncgate_usage';

export function openUsageDb(opts: { dataDir: string; couch?: { client: CouchClient; backend: CouchBackend } }): { db: DocDb; close(): Promise<void> } {
  if (opts.couch) {
    const { client, backend } = opts.couch;
    // Created by the first write (a gateway nobody used has no usage to keep).
    return { db: new CouchDocDb(client, USAGE_DB, () => backend.ensureDatabase(USAGE_DB)), close: async () => {} };
  }
  const pouch = new PouchDB(join(opts.dataDir, 'usage'), { auto_compaction: true } as PouchDB.Configuration.DatabaseConfiguration);
  return { db: new PouchDocDb(pouch), close: () => pouch.close() };
}
