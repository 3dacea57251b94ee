// Keeps a bounded number of user databases open. Every open PouchDB is a LevelDB with its own
// files and caches (shared/perf-baseline.md: ~19 files per database; the embedded process ran
// out of file handles near 1,000 users), so the least recently used idle one is closed.
import { randomBytes } from 'node:crypto';
import { RecencyMap } from '../../common/recency-map.js';
import { designDoc } from '../../couch-design/index.js';
import type { DocDb } from '../doc-db.js';
import type { Backend } from './backend.js';
import { UserDb, type UserDbOptions } from './user-db.js';

interface Entry {
  user: Promise<UserDb>;
  users: number;
}

export class UserPool {
  /** Least recently used first: the idle ones at the front are closed first. */
  private readonly open = new RecencyMap<string, Entry>();
  /** Databases being closed: LevelDB refuses a second open of the same folder until then. */
  private readonly closing = new Map<string, Promise<void>>();
  readonly owner = randomBytes(8).toString('hex');

  constructor(
    private readonly backend: Backend,
    private readonly maxOpen: number,
    private readonly leaseMs: number,
    /** The node the backend's databases live on (see Pending.node). */
    private readonly node?: string,
    private readonly onBackgroundError: (err: unknown) => void = () => {},
    /** How long a committed state read here may answer reads (0: never; needs backend.updates). */
    private readonly stateCacheMs = 0,
  ) {
    // Whoever wrote it, the user's next read asks Couch again.
    backend.updates?.onUpdate((uid) => void this.open.peek(uid)?.user.then((u) => u.invalidate(), () => undefined));
  }

  async use<T>(uid: string, fn: (user: UserDb) => Promise<T>): Promise<T> {
    let entry = this.open.get(uid);
    if (!entry) {
      entry = { user: this.openUser(uid), users: 0 };
      this.open.set(uid, entry);
    }
    entry.users++;
    try {
      const user = await entry.user.catch((e) => {
        if (this.open.peek(uid) === entry) this.open.delete(uid);
        throw e;
      });
      return await fn(user);
    } finally {
      entry.users--;
      void this.evict();
    }
  }

  isOpen(uid: string): boolean {
    return this.open.has(uid);
  }

  /** The open user's database, without touching LRU order or opening anything. */
  async peek(uid: string): Promise<UserDb | undefined> {
    return this.open.peek(uid)?.user.catch(() => undefined);
  }

  /** Every open user, for background work (expiry purge). */
  openUsers(): string[] {
    return [...this.open.keys()];
  }

  private async openUser(uid: string): Promise<UserDb> {
    await this.closing.get(uid);
    const db = await this.backend.open(uid);
    const opts: UserDbOptions = { exclusive: this.backend.exclusive, owner: this.owner, leaseMs: this.leaseMs, designVersion: designDoc.version };
    if (this.node !== undefined) opts.node = this.node;
    if (this.backend.updates && this.stateCacheMs > 0) {
      this.backend.updates.start();
      opts.stateCache = { feed: this.backend.updates, maxAgeMs: this.stateCacheMs };
    }
    if (this.backend.installDesignInBackground) {
      // Remote nodes: a fresh database gets it at creation; an old one is upgraded off the
      // request path, and only while its state does not record the current version.
      opts.ensureDesign = () => designDoc.install(db).catch((err) => {
        this.onBackgroundError(err);
        throw err;
      });
    } else {
      await designDoc.install(db);
    }
    return new UserDb(db, opts);
  }

  private async evict(): Promise<void> {
    if (this.open.size <= this.maxOpen) return;
    for (const [uid, entry] of this.open.entries()) {
      if (this.open.size <= this.maxOpen) break;
      if (entry.users > 0) continue;
      this.open.delete(uid);
      const done = entry.user
        .then((user) => user.locked(() => this.backend.close(uid, user.db)))
        .catch(() => undefined)
        .finally(() => this.closing.delete(uid));
      this.closing.set(uid, done);
      await done;
    }
  }

  /** Closes the user's database (waiting for requests in flight) and deletes it. */
  async destroy(uid: string): Promise<void> {
    const entry = this.open.peek(uid);
    this.open.delete(uid);
    const user = await entry?.user.catch(() => undefined);
    const gone = (async () => {
      await this.closing.get(uid);
      if (user) await user.locked(() => this.backend.close(uid, user.db));
      await this.backend.destroy(uid);
    })();
    this.closing.set(uid, gone.catch(() => undefined));
    try {
      await gone;
    } finally {
      this.closing.delete(uid);
    }
  }

  async closeAll(): Promise<void> {
    const entries = [...this.open.entries()];
    this.open.clear();
    for (const [uid, entry] of entries) {
      const user = await entry.user.catch(() => undefined);
      if (user) await user.locked(() => this.backend.close(uid, user.db as DocDb));
    }
  }
}
