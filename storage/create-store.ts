// Chooses the storage backend from the configuration. Today: the embedded store in the data folder.
import type { Config } from '../server/config.js';
import { SyncStore } from './engine/sync-store.js';
import { PouchBackend } from './pouch/pouch-backend.js';

export function createStore(config: Config): SyncStore {
  return new SyncStore(new PouchBackend(config.dataDir), {
    maxOpenUsers: config.maxOpenUsers,
    limits: {
      maxTotalRecords: config.limits.maxTotalRecords,
      maxTotalBytes: config.limits.maxTotalBytes,
      quotaBytes: config.quotaBytes,
      batchLifetimeMs: config.batchLifetimeSec * 1000,
    },
  });
}
