// The embedded store's LevelDB shards. A user database is a key range ("!sync_<uid>!") of one of
// SHARD_COUNT LevelDBs under <data>/shards/, not a LevelDB of its own: with a LevelDB per user,
// 200 users in Mozilla's load mix held 775 MB resident, mostly their memtables (up to 4 MB
// each) and block caches (8 MB each), and every first request of a user opened files and
// replayed a log. A shard has one memtable, one cache and one write-ahead log for all its users.
//
// A LevelDB is opened by one thread at a time, so each shard belongs to one storage thread
// (shard % threads): 4 shards spread evenly over 1, 2 or 4 threads.
//
// A user database that is a LevelDB folder of its own under <data>/users/ (written by an
// earlier version) is still opened as one; new users go to the shards.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import leveldown from 'leveldown';
import levelup from 'levelup';
import PouchDB from 'pouchdb';
import SubDown from 'subleveldown/leveldown.js';
import { pouchOptions } from './pouch-doc-db.js';

export const SHARD_COUNT = 4;

/** The shard of a user database, from its name (sync_<uid>): stable across restarts and thread counts. */
export function shardOf(path: string): number {
  const name = basename(path);
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
  return Math.abs(h) % SHARD_COUNT;
}

// A shard's memtable is flushed at 8 MB (LevelDB's default is 4 MB, sized for one database);
// its block cache holds 16 MB of recently read records.
const SHARD_OPTIONS = { writeBufferSize: 8 * 1024 * 1024, cacheSize: 16 * 1024 * 1024 };

type Callback = (err?: Error | null) => void;
type GetCallback = (err: Error | null, value?: string | Buffer) => void;
/** The shard's LevelDOWN, as far as the batcher uses it. */
interface ShardDown {
  getMany(keys: Array<string | Buffer>, opts: { asBuffer: boolean }, cb: (err: Error | null, values?: Array<string | Buffer | undefined>) => void): void;
}

/** A user's key range of a shard whose gets go through the shard's batcher. */
class UserDown extends SubDown {
  constructor(
    shard: levelup.LevelUp,
    name: string,
    private readonly batcher: GetBatcher,
  ) {
    super(shard, name);
  }

  _get(key: string | Buffer, opts: { asBuffer?: boolean }, cb: GetCallback): void {
    const full = typeof key === 'string' ? this.prefix + key : Buffer.concat([Buffer.from(this.prefix), key]);
    this.batcher.get(full, opts.asBuffer !== false, cb);
  }
}
/** What PouchDB's LevelDB adapter takes as `db`: a function from a name to a store, with destroy. */
type StoreFactory = ((name: string) => unknown) & { destroy(name: string, cb: Callback): void };

/**
 * Gets of one shard, gathered for a moment and read with one getMany. PouchDB reads a
 * document's metadata for every document it writes and twice for every document it reads,
 * one LevelDB get each; each get is a trip through libuv's threadpool, and those trips were
 * 30% of a storage thread's time under Mozilla's load mix. One getMany of 100 keys costs
 * 3 µs of CPU per key, 100 single gets 10 µs each (this machine).
 */
class GetBatcher {
  private queue: Array<{ key: string | Buffer; cb: GetCallback }> = [];
  private queueAsBuffer: Array<{ key: string | Buffer; cb: GetCallback }> = [];

  constructor(private readonly down: ShardDown) {}

  get(key: string | Buffer, asBuffer: boolean, cb: GetCallback): void {
    if (this.queue.length === 0 && this.queueAsBuffer.length === 0) queueMicrotask(() => this.flush());
    (asBuffer ? this.queueAsBuffer : this.queue).push({ key, cb });
  }

  private flush(): void {
    const groups = [
      { asBuffer: false, gets: this.queue },
      { asBuffer: true, gets: this.queueAsBuffer },
    ];
    this.queue = [];
    this.queueAsBuffer = [];
    for (const { asBuffer, gets } of groups) {
      if (gets.length === 0) continue;
      this.down.getMany(
        gets.map((g) => g.key),
        { asBuffer },
        (err, values) => {
          gets.forEach((g, i) => {
            const value = values?.[i];
            if (err) g.cb(err);
            // The message levelup recognises as "not found".
            else if (value === undefined) g.cb(new Error('NotFound: '));
            else g.cb(null, value);
          });
        },
      );
    }
  }
}

/** The first key after every key of a sublevel: its separator is '!', the next byte '"'. */
const range = (name: string) => ({ gt: `!${name}!`, lt: `!${name}"` });

export class Shards {
  private readonly opened = new Map<number, Promise<levelup.LevelUp>>();
  private readonly ready = new Map<number, { db: levelup.LevelUp; batcher: GetBatcher }>();
  private readonly factory: StoreFactory;

  /** `dataDir` is the data folder: shards live in <dataDir>/shards, old per-user folders in <dataDir>/users. */
  constructor(private readonly dataDir: string) {
    const ready = this.ready;
    // PouchDB keeps one store per (factory name, database name); the paths make names unique.
    const shardedLeveldown = (path: string): unknown => {
      if (isOwnLevelDb(path)) return leveldown(path);
      const shard = ready.get(shardOf(path));
      if (!shard) throw new Error(`shard of ${basename(path)} is not open`);
      return new UserDown(shard.db, basename(path), shard.batcher);
    };
    this.factory = Object.assign(shardedLeveldown, {
      destroy(path: string, cb: Callback): void {
        if (isOwnLevelDb(path)) return leveldown.destroy(path, cb);
        const shard = ready.get(shardOf(path));
        if (!shard) return cb(new Error(`shard of ${basename(path)} is not open`));
        shard.db.clear(range(basename(path)), cb);
      },
    });
  }

  private shard(n: number): Promise<levelup.LevelUp> {
    let opening = this.opened.get(n);
    if (!opening) {
      const path = join(this.dataDir, 'shards', String(n));
      const down = leveldown(path);
      opening = mkdir(dirname(path), { recursive: true }).then(
        () =>
          new Promise<levelup.LevelUp>((resolve, reject) => {
            const db = levelup(down, SHARD_OPTIONS, (err) => (err ? reject(err) : resolve(db)));
          }),
      );
      this.opened.set(n, opening);
      opening.then(
        (db) => this.ready.set(n, { db, batcher: new GetBatcher(down as unknown as ShardDown) }),
        () => this.opened.delete(n),
      );
    }
    return opening;
  }

  /** The PouchDB of the user database at `path` (<dataDir>/users/sync_<uid>). */
  async pouch(path: string): Promise<PouchDB.Database> {
    if (!isOwnLevelDb(path)) await this.shard(shardOf(path));
    return new PouchDB(path, { ...pouchOptions(), db: this.factory } as unknown as PouchDB.Configuration.DatabaseConfiguration);
  }

  /** Deletes the user database at `path`; its PouchDB must not be open elsewhere. */
  async destroy(path: string): Promise<void> {
    await (await this.pouch(path)).destroy();
  }

  /** True when the user database at `path` has any key (PouchDB writes some when it opens one). */
  async exists(path: string): Promise<boolean> {
    if (isOwnLevelDb(path)) return true;
    const shard = await this.shard(shardOf(path));
    return new Promise<boolean>((resolve, reject) => {
      const it = shard.iterator({ ...range(basename(path)), limit: 1, values: false });
      it.next((err, key) => it.end(() => (err ? reject(err) : resolve(key !== undefined))));
    });
  }

  /** Closes the shards; every PouchDB on them must be closed first. */
  async close(): Promise<void> {
    const shards = await Promise.allSettled(this.opened.values());
    this.opened.clear();
    this.ready.clear();
    await Promise.all(shards.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
  }
}

/** A user database written by an earlier version: a LevelDB folder of its own. */
function isOwnLevelDb(path: string): boolean {
  return existsSync(join(path, 'CURRENT'));
}
