// Chooses the storage backend from the configuration: a Couch node when COUCH_URL is set,
// otherwise the embedded store in the data folder.
import type { Config } from '../server/config.js';
import type { Metrics } from '../common/metrics.js';
import { CouchBackend } from './couch/couch-backend.js';
import { CouchClient } from './couch/couch-client.js';
import type { Backend } from './engine/backend.js';
import { SyncStore } from './engine/sync-store.js';
import { PouchBackend } from './pouch/pouch-backend.js';

/** The program's one Couch client, when COUCH_URL is set. */
export function createCouchClient(config: Config, counted?: { metrics: Metrics; node: string }): CouchClient | undefined {
  return config.couchUrl ? new CouchClient(config.couchUrl, { timeoutMs: config.couchTimeoutMs, readRetries: 2, ...(counted ? { metrics: counted } : {}) }) : undefined;
}

export function createBackend(config: Config, client = createCouchClient(config)): Backend {
  return client ? new CouchBackend(client) : new PouchBackend(config.dataDir, config.storageThreads);
}

/** `node`: the name of the node the backend's databases live on, when it has one. */
export function createStore(config: Config, backend: Backend = createBackend(config), node?: string): SyncStore {
  return new SyncStore(backend, {
    ...(node === undefined ? {} : { node }),
    maxOpenUsers: config.maxOpenUsers,
    writeLeaseMs: config.writeLeaseMs,
    stateCacheMs: config.stateCacheMs,
    limits: {
      maxTotalRecords: config.limits.maxTotalRecords,
      maxTotalBytes: config.limits.maxTotalBytes,
      quotaBytes: config.quotaBytes,
      batchLifetimeMs: config.batchLifetimeSec * 1000,
    },
  });
}
