// Chooses the storage backend from the configuration: a Couch node when COUCH_URL is set,
// otherwise the embedded store in the data folder.
import type { Config } from '../server/config.js';
import { CouchBackend } from './couch/couch-backend.js';
import { CouchClient } from './couch/couch-client.js';
import type { Backend } from './engine/backend.js';
import { SyncStore } from './engine/sync-store.js';
import { PouchBackend } from './pouch/pouch-backend.js';

export function createBackend(config: Config): Backend {
  if (config.couchUrl) {
    return new CouchBackend(new CouchClient(config.couchUrl, { timeoutMs: config.couchTimeoutMs, readRetries: 2 }));
  }
  return new PouchBackend(config.dataDir);
}

export function createStore(config: Config): SyncStore {
  return new SyncStore(createBackend(config), {
    maxOpenUsers: config.maxOpenUsers,
    writeLeaseMs: config.writeLeaseMs,
    limits: {
      maxTotalRecords: config.limits.maxTotalRecords,
      maxTotalBytes: config.limits.maxTotalBytes,
      quotaBytes: config.quotaBytes,
      batchLifetimeMs: config.batchLifetimeSec * 1000,
    },
  });
}
