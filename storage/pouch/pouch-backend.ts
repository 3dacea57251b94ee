// The zero-configuration store: one PouchDB per user, a key range of a LevelDB shard under
// <data>/shards/, opened in storage threads beside the gateway's (threads > 0) or in its own
// thread (0).
import { access, constants, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { userDbName } from '../db-name.js';
import type { DocDb } from '../doc-db.js';
import type { Backend } from '../engine/backend.js';
import { PouchDocDb } from './pouch-doc-db.js';
import { Shards } from './shards.js';
import { ThreadDocDb, ThreadPool } from './thread-pool.js';

export class PouchBackend implements Backend {
  readonly exclusive = true;
  private readonly dir: string;
  private threads: ThreadPool | undefined;
  /** The shards when the databases are opened in this thread (no storage threads). */
  private readonly shards: Shards;

  constructor(
    private readonly dataDir: string,
    private readonly threadCount = 0,
  ) {
    this.dir = join(dataDir, 'users');
    this.shards = new Shards(dataDir);
  }

  private pool(): ThreadPool | undefined {
    if (this.threadCount > 0) this.threads ??= new ThreadPool(this.threadCount, this.dataDir);
    return this.threads;
  }

  async open(uid: string): Promise<DocDb> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, userDbName(uid));
    const threads = this.pool();
    return threads ? threads.open(path) : new PouchDocDb(await this.shards.pouch(path));
  }

  async close(_uid: string, db: DocDb): Promise<void> {
    if (db instanceof ThreadDocDb) await this.pool()?.close(db);
    else await (db as PouchDocDb).pouch.close();
  }

  async destroy(uid: string): Promise<void> {
    const path = join(this.dir, userDbName(uid));
    const threads = this.pool();
    if (threads) await threads.destroy(path);
    else await this.shards.destroy(path);
  }

  async exists(uid: string): Promise<boolean> {
    const path = join(this.dir, userDbName(uid));
    const threads = this.pool();
    return threads ? threads.exists(path) : this.shards.exists(path);
  }

  /** Held while the gateway runs: LevelDB's lock makes a second gateway on the folder fail fast. */
  private lock: PouchDB.Database | undefined;

  async check(): Promise<void> {
    const failed = this.threads?.failure();
    if (failed) throw failed;
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
    await this.threads?.shutdown();
    this.threads = undefined;
    await this.shards.close();
    await this.lock?.close();
    this.lock = undefined;
  }
}
