// The zero-configuration store: one PouchDB (LevelDB) per user under <data>/users/.
import { access, constants, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { userDbName } from '../db-name.js';
import type { DocDb } from '../doc-db.js';
import type { Backend } from '../engine/backend.js';
import { PouchDocDb } from './pouch-doc-db.js';

export class PouchBackend implements Backend {
  readonly exclusive = true;
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'users');
  }

  async open(uid: string): Promise<DocDb> {
    await mkdir(this.dir, { recursive: true });
    // auto_compaction drops old revision bodies at once (the state document changes on every
    // write); a short revs_limit keeps its revision tree small.
    const pouch = new PouchDB(join(this.dir, userDbName(uid)), { auto_compaction: true, revs_limit: 20 } as PouchDB.Configuration.DatabaseConfiguration);
    return new PouchDocDb(pouch);
  }

  async close(_uid: string, db: DocDb): Promise<void> {
    await (db as PouchDocDb).pouch.close();
  }

  async destroy(uid: string): Promise<void> {
    await new PouchDB(join(this.dir, userDbName(uid))).destroy();
  }

  /** Held while the gateway runs: LevelDB's lock makes a second gateway on the folder fail fast. */
  private lock: PouchDB.Database | undefined;

  async check(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await access(this.dir, constants.W_OK);
  }

  async verify(): Promise<void> {
    await this.check();
    if (!this.lock) {
      const lock = new PouchDB(join(this.dir, '..', 'gateway-lock'));
      try {
        await lock.info();
      } catch (e) {
        throw new Error(`data folder ${join(this.dir, '..')} is in use by another syncgate process`, { cause: e });
      }
      this.lock = lock;
    }
  }

  async shutdown(): Promise<void> {
    await this.lock?.close();
    this.lock = undefined;
  }
}
