// Per-user data metrics, kept cheaply. Each request of a user adds to an in-memory tally of
// this gateway (no I/O); every flush interval, each user touched since the last one gets one
// compare-and-swap of `usage:<uid>` (federation/usage-doc.ts), which adds this gateway's
// traffic to what other gateways wrote and, only if the user wrote, the store's count of their
// live records. A user nobody touched costs nothing: no timer work, no read, no write.
// `top` reads every usage document (a few seconds' cache) and `show` one user, for the admin
// API, the command line and the operator dashboard (UsageAdmin).
import type { Logger } from 'pino';
import { SyncError } from '../common/errors.js';
import type { Metrics } from '../common/metrics.js';
import { couchUnavailable } from '../storage/couch/couch-client.js';
import type { DocDb } from '../storage/doc-db.js';
import type { Store } from '../storage/store.js';
import { AdminError } from './node-admin.js';
import { DEFAULT_NODE, type Registry } from './registry.js';
import { moveStatus, type MoveStatus } from './user-move.js';
import { mergeUsage, sizesOf, stepOf, trafficOf, usageId, type CollectionSize, type Step, type TrafficSum, type UsageDelta, type UsageDoc } from './usage-doc.js';

export type UsageOrder = 'bytes' | 'requests' | 'records';

/** One user in `top`: sizes as of the last flush that counted them, traffic as of now. */
export interface UserUsageRow {
  uid: number;
  node: string;
  records: number;
  bytes: number;
  requestsHour: number;
  requestsDay: number;
  bytesInHour: number;
  bytesOutHour: number;
  bytesInDay: number;
  bytesOutDay: number;
  /** When a gateway last wrote the user's usage (ms since the epoch). */
  updatedAt: number;
}

/** One user in `show`: placement, size per collection and traffic. */
export interface UserUsage {
  uid: number;
  /** The account as the registry names it; null for a uid of another tokenserver. */
  email: string | null;
  node: string;
  replica: string | null;
  move: MoveStatus['move'];
  lastMove: MoveStatus['lastMove'];
  /** The account was deleted (storage refused) / its storage deleted (ms since the epoch). */
  revokedAt: number | null;
  purgedAt: number | null;
  collections: Record<string, CollectionSize>;
  records: number;
  bytes: number;
  /** live: counted from the store now; flushed: as of the last flush (the store did not answer). */
  sizes: 'live' | 'flushed';
  traffic: { hour: TrafficSum; day: TrafficSum };
  updatedAt: number | null;
}

/** What the admin API and the operator dashboard ask. */
export interface UsageAdmin {
  /** The largest users, largest first; `requests` orders by the last day, then the last hour. */
  top(by: UsageOrder, opts?: { node?: string; limit?: number }): Promise<UserUsageRow[]>;
  show(uid: number): Promise<UserUsage>;
}

/** What one request of a user adds. */
export interface RequestUsage {
  bytesIn: number;
  bytesOut: number;
  /** It may have changed the user's records (a write that was not refused). */
  wrote: boolean;
}

interface Pending {
  wrote: boolean;
  steps: Map<number, Step>;
}

export interface UsageTrackerOptions {
  logger: Logger;
  metrics?: Pick<Metrics, 'usageFlushes' | 'usageUsersWritten'>;
  now?: () => number;
  /** Users whose usage documents one flush writes at once. */
  concurrency?: number;
}

const TOP_CACHE_MS = 5000;
const PAGE = 500;
export const TOP_LIMIT = 1000;

export class UsageTracker implements UsageAdmin {
  private pending = new Map<number, Pending>();
  private cached: { at: number; rows: UserUsageRow[] } | undefined;
  private readonly now: () => number;

  constructor(
    private readonly db: DocDb,
    private readonly registry: Registry,
    /** Where the user's records are counted (routed to their node). */
    private readonly store: Pick<Store, 'usage'>,
    private readonly opts: UsageTrackerOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  record(uid: number, r: RequestUsage): void {
    let p = this.pending.get(uid);
    if (!p) {
      p = { wrote: false, steps: new Map() };
      this.pending.set(uid, p);
    }
    p.wrote ||= r.wrote;
    const start = stepOf(this.now());
    let s = p.steps.get(start);
    if (!s) {
      s = [start, 0, 0, 0];
      p.steps.set(start, s);
    }
    s[1] += 1;
    s[2] += r.bytesIn;
    s[3] += r.bytesOut;
  }

  /** Writes the usage of every user touched since the last flush; returns how many were written. */
  async flush(): Promise<number> {
    if (this.pending.size === 0) return 0;
    const batch = [...this.pending];
    this.pending = new Map();
    let written = 0;
    const concurrency = this.opts.concurrency ?? 8;
    let failed: unknown;
    for (let i = 0; i < batch.length; i += concurrency) {
      await Promise.all(
        batch.slice(i, i + concurrency).map(async ([uid, p]) => {
          try {
            await this.write(uid, p);
            written++;
          } catch (err) {
            failed ??= err;
            this.requeue(uid, p);
          }
        }),
      );
    }
    if (written > 0) {
      this.cached = undefined;
      this.opts.metrics?.usageFlushes.inc();
      this.opts.metrics?.usageUsersWritten.inc(written);
    }
    if (failed !== undefined) this.opts.logger.warn({ err: failed, users: batch.length - written }, 'usage of some users not written; kept for the next flush');
    return written;
  }

  private async write(uid: number, p: Pending): Promise<void> {
    const placed = await this.registry.placement(uid);
    const delta: UsageDelta = { node: placed?.node ?? DEFAULT_NODE, steps: p.steps };
    if (p.wrote && placed?.revokedAt === undefined) {
      try {
        const u = await this.store.usage(String(uid), {});
        delta.sizes = { collections: sizesOf(u), lastModified: u.lastModified };
      } catch (err) {
        // The traffic is written now; a count its node could not give now is tried next flush.
        if (couchUnavailable(err) || (err instanceof SyncError && err.code === 'unavailable')) this.requeue(uid, { wrote: true, steps: new Map() });
        else this.opts.logger.warn({ err }, 'usage: the store did not count a user\'s records');
      }
    }
    const id = usageId(uid);
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await this.db.get<UsageDoc>(id);
      const rev = await this.db.put(mergeUsage(doc, uid, delta, this.now()));
      if (rev !== 'conflict') return;
    }
    throw new Error(`${id}: contention`);
  }

  /** Puts a delta that could not be written back, to go with the next flush. */
  private requeue(uid: number, p: Pending): void {
    const since = this.pending.get(uid);
    if (!since) {
      this.pending.set(uid, p);
      return;
    }
    since.wrote ||= p.wrote;
    for (const [start, s] of p.steps) {
      const at = since.steps.get(start);
      if (!at) since.steps.set(start, s);
      else for (let i = 1; i < 4; i++) (at[i] as number) += s[i] as number;
    }
  }

  /** The usage of a uid whose storage was deleted goes with it. */
  async forget(uid: number): Promise<void> {
    this.pending.delete(uid);
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await this.db.get<UsageDoc>(usageId(uid));
      if (!doc || (await this.db.put({ ...doc, _deleted: true })) !== 'conflict') return;
    }
  }

  async top(by: UsageOrder, opts: { node?: string; limit?: number } = {}): Promise<UserUsageRow[]> {
    const limit = Math.min(Math.max(1, opts.limit ?? 20), TOP_LIMIT);
    const key: (r: UserUsageRow) => [number, number] =
      by === 'bytes' ? (r) => [r.bytes, r.records] : by === 'records' ? (r) => [r.records, r.bytes] : (r) => [r.requestsDay, r.requestsHour];
    const rows = (await this.rows()).filter((r) => opts.node === undefined || r.node === opts.node);
    return rows
      .sort((a, b) => {
        const [a1, a2] = key(a);
        const [b1, b2] = key(b);
        return b1 - a1 || b2 - a2 || a.uid - b.uid;
      })
      .slice(0, limit);
  }

  /** Every user's row, read at most every few seconds (one pass over the usage documents). */
  private async rows(): Promise<UserUsageRow[]> {
    const now = this.now();
    if (this.cached && now - this.cached.at < TOP_CACHE_MS) return this.cached.rows;
    const rows: UserUsageRow[] = [];
    let start = 'usage:';
    for (;;) {
      const page = await this.db.range<UsageDoc>(start, 'usage:\ufff0', PAGE + 1);
      for (const doc of page.slice(0, PAGE)) rows.push(rowOf(doc, now));
      if (page.length <= PAGE) break;
      start = (page[PAGE] as UsageDoc)._id;
    }
    this.cached = { at: now, rows };
    return rows;
  }

  async show(uid: number): Promise<UserUsage> {
    const [placed, doc] = await Promise.all([this.registry.freshPlacement(uid), this.db.get<UsageDoc>(usageId(uid))]);
    if (!placed && !doc && !this.pending.has(uid)) throw new AdminError(404, `no uid ${uid} in the registry and no usage of it`);
    const now = this.now();
    // This gateway's requests not flushed yet count too.
    const pending = this.pending.get(uid);
    const seen = pending ? mergeUsage(doc, uid, { node: doc?.node ?? DEFAULT_NODE, steps: pending.steps }, now) : doc;
    let collections = doc?.collections ?? {};
    let sizes: UserUsage['sizes'] = 'flushed';
    if (placed?.revokedAt === undefined && placed?.purgedAt === undefined) {
      try {
        collections = sizesOf(await this.store.usage(String(uid), {}));
        sizes = 'live';
      } catch (err) {
        this.opts.logger.debug({ err }, 'usage: the store did not count a user; showing the last flush');
      }
    }
    const status = placed ? moveStatus(placed) : undefined;
    return {
      uid,
      email: placed?.email ?? null,
      node: placed?.node ?? DEFAULT_NODE,
      replica: placed?.replica ?? null,
      move: status?.move ?? null,
      lastMove: status?.lastMove ?? null,
      revokedAt: placed?.revokedAt ?? null,
      purgedAt: placed?.purgedAt ?? null,
      collections,
      records: Object.values(collections).reduce((n, c) => n + c.records, 0),
      bytes: Object.values(collections).reduce((n, c) => n + c.bytes, 0),
      sizes,
      traffic: seen ? trafficOf(seen, now) : { hour: { requests: 0, bytesIn: 0, bytesOut: 0 }, day: { requests: 0, bytesIn: 0, bytesOut: 0 } },
      updatedAt: doc?.updatedAt ?? null,
    };
  }
}

function rowOf(doc: UsageDoc, now: number): UserUsageRow {
  const { hour, day } = trafficOf(doc, now);
  return {
    uid: doc.uid,
    node: doc.node,
    records: doc.records,
    bytes: doc.bytes,
    requestsHour: hour.requests,
    requestsDay: day.requests,
    bytesInHour: hour.bytesIn,
    bytesOutHour: hour.bytesOut,
    bytesInDay: day.bytesIn,
    bytesOutDay: day.bytesOut,
    updatedAt: doc.updatedAt,
  };
}
