// The Store contract on top of any backend of user databases.
import { randomBytes } from 'node:crypto';
import { SyncError } from '../../common/errors.js';

import type {
  BatchAccepted,
  Bso,
  BsoInput,
  ListQuery,
  ListResult,
  PostInput,
  Preconditions,
  StorageInfo,
  Store,
  StoreLimits,
  UsageInfo,
  WriteResult,
} from '../store.js';
import type { Doc } from '../doc-db.js';
import type { Backend } from './backend.js';
import { batchId, chunkId, isRecordId, recordId, type BatchDoc, type ChunkDoc, type JournalOp, type RecordDoc, type StateDoc, wellFormedRecord } from './docs.js';
import { resolveConflicts } from './conflicts.js';
import { selectPage } from './listing.js';
import { checkPreconditions } from './preconditions.js';
import { deletionFloor, inputBytes, isLive, readClock, toBso } from './records.js';
import { Retry, type UserDb } from './user-db.js';
import { UserPool } from './user-pool.js';
import { purgeSlice } from './purge.js';

const WRITE_ATTEMPTS = 20;
/**
 * Users a sweep purges only because this gateway never did (see SyncStore.purge): a safety
 * net for garbage nobody else will purge (records expired since their writer last looked, a
 * dead gateway's batches), never needed for correctness. On Apache CouchDB 3.5.2, 100 per
 * 30 s sweep kept a gateway that had just opened 10,000 users purging through the whole
 * benchmark: its CPU per info/collections 304 rose from 0.22 to 0.34 ms (none with the sweeps
 * off: 0.18 and 0.15 ms). 10 per sweep works off such a backlog in hours, at a tenth the cost.
 */
const FIRST_PURGES_PER_SWEEP = 10;
/** After a lost compare-and-swap: a jittered, growing pause so racing gateways interleave. */
const backoff = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 5 * 2 ** attempt)));
const BATCH_ID = /^[A-Za-z0-9_-]{22}$/;

export interface SyncStoreOptions {
  limits: StoreLimits;
  maxOpenUsers: number;
  writeLeaseMs: number;
  /** The node the backend's databases live on. */
  node?: string;
  /** How long reads may reuse a committed state (0: never; only with a backend update feed). */
  stateCacheMs?: number;
}

export class SyncStore implements Store {
  private readonly pool: UserPool;

  /** User databases held open (state and record index in memory). */
  get openUsers(): number {
    return this.pool.openUsers().length;
  }

  constructor(
    private readonly backend: Backend,
    private readonly opts: SyncStoreOptions,
  ) {
    this.pool = new UserPool(backend, opts.maxOpenUsers, opts.writeLeaseMs, opts.node, undefined, opts.stateCacheMs ?? 0);
  }

  private get limits(): StoreLimits {
    return this.opts.limits;
  }

  /**
   * Runs fn under the user's lock with the committed state. fn throws Retry when it met the
   * records of a write in flight on another gateway (stamped past the committed state): the
   * state is read again, which waits for that write to finish or rolls it forward.
   */
  private read<T>(uid: string, fn: (u: UserDb, s: StateDoc) => Promise<T>): Promise<T> {
    return this.pool.use(uid, (u) =>
      u.locked(async () => {
        for (let attempt = 0; ; attempt++) {
          const s = await u.readCommittedState();
          try {
            return await fn(u, s);
          } catch (e) {
            if (!(e instanceof Retry)) throw e;
            if (attempt >= WRITE_ATTEMPTS) throw new SyncError('conflict', 'records kept changing under a read');
            // Records past the state: a write in flight, or one committed since the state was cached.
            u.invalidate();
            u.index.stateRev = undefined;
            await backoff(attempt);
          }
        }
      }),
    );
  }

  /**
   * Like read, with a write timestamp, started over when another gateway wrote first.
   *
   * `casChecked`: fn succeeds only through a compare-and-swap of the state it was given, so
   * its first attempt may start from the state cached for reads (on Couch, the one the
   * client's `info/collections` just read): a stale one fails that swap and the next attempt
   * reads afresh. A 412 or over-quota decided on the cached state is decided again on a fresh
   * one, since a deletion moves a collection's timestamp back. Batch creation and appends
   * commit no state, so they always read afresh.
   */
  private write<T>(uid: string, fn: (u: UserDb, s: StateDoc, T: number) => Promise<T>, casChecked = false): Promise<T> {
    return this.pool.use(uid, (u) =>
      u.locked(async () => {
        try {
          for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
            const cached = casChecked && attempt === 0;
            const s = cached ? await u.readCommittedState() : await u.readState();
            try {
              return await fn(u, s, u.nextTimestamp(s));
            } catch (e) {
              if (cached && e instanceof SyncError && (e.code === 'precondition-failed' || e.code === 'over-quota')) continue;
              if (!(e instanceof Retry)) throw e;
              await backoff(attempt);
            }
          }
          throw new SyncError('conflict', 'too many concurrent writers');
        } finally {
          // Read-your-writes on this gateway, without waiting for the feed to report the write.
          u.settleWrite();
        }
      }),
    );
  }

  info(uid: string, pre: Preconditions): Promise<StorageInfo> {
    return this.read(uid, async (_u, s) => {
      checkPreconditions(s.storage, pre, true);
      return { storage: s.storage, collections: { ...s.collections } };
    });
  }

  usage(uid: string, pre: Preconditions): Promise<UsageInfo & { lastModified: number }> {
    return this.read(uid, async (u, s) => {
      checkPreconditions(s.storage, pre, true);
      await u.refreshIndex(s);
      const result = this.tally(u, s);
      return { ...result, lastModified: s.storage };
    });
  }

  private tally(u: UserDb, s: StateDoc): UsageInfo {
    const now = readClock(s);
    const bytes: Record<string, number> = {};
    const counts: Record<string, number> = {};
    let totalBytes = 0;
    for (const c of u.index.collections()) {
      let n = 0;
      let b = 0;
      for (const e of u.index.entries(c)) {
        if (!isLive(e, s, c, now)) continue;
        n++;
        b += e.n;
      }
      if (n > 0) {
        counts[c] = n;
        bytes[c] = b;
        totalBytes += b;
      }
    }
    const usage: UsageInfo = { bytes, counts, totalBytes };
    if (this.limits.quotaBytes > 0) usage.quotaBytes = this.limits.quotaBytes;
    return usage;
  }

  list(uid: string, collection: string, query: ListQuery, pre: Preconditions): Promise<ListResult> {
    return this.read(uid, async (u, s) => {
      const lastModified = s.collections[collection] ?? 0;
      checkPreconditions(lastModified, pre, true);
      if (lastModified === 0) return { lastModified, items: [] };
      const now = readClock(s);
      for (let attempt = 0; ; attempt++) {
        await u.refreshIndex(s);
        if (u.index.newestWriteIn(collection) > lastModified) throw new Retry();
        const page = selectPage(u.index.entries(collection), query, (e) => isLive(e, s, collection, now));
        const result: ListResult = { lastModified, items: page.entries.map((e) => e.id) };
        if (page.nextOffset !== undefined) result.nextOffset = page.nextOffset;
        if (!query.full) return result;
        const docs = await u.db.getMany<RecordDoc>(page.entries.map((e) => recordId(collection, e.id)));
        const conflicted = [...docs.values()].filter((d) => d._conflicts?.length);
        if (conflicted.length > 0 && attempt < 2) {
          // Replication brought versions in after the index last looked: resolve, look again.
          for (const doc of conflicted) await resolveConflicts(u.db, doc);
          u.index.stateRev = undefined;
          continue;
        }
        // A write started after the index was read: what it replaced is not in these documents.
        for (const d of docs.values()) if (d.w > lastModified && !d.f) throw new Retry();
        const items: Bso[] = [];
        for (const e of page.entries) {
          const doc = wellFormedRecord(docs.get(recordId(collection, e.id)));
          if (doc && isLive(doc, s, collection, now)) items.push(toBso(doc));
        }
        result.items = items;
        return result;
      }
    });
  }

  get(uid: string, collection: string, id: string, pre: Preconditions): Promise<Bso> {
    return this.read(uid, async (u, s) => {
      const doc = wellFormedRecord(await u.readDoc<RecordDoc>(recordId(collection, id)));
      // Stamped past the committed state: a write in flight replaced the version to answer.
      if (doc && doc.w > (s.collections[collection] ?? 0) && doc.w > deletionFloor(s, collection) && !doc.f) throw new Retry();
      const live = doc && isLive(doc, s, collection, readClock(s)) ? doc : undefined;
      checkPreconditions(live?.m ?? 0, pre, true);
      if (!live) throw new SyncError('not-found', 'no such record', { lastModified: 0 });
      return toBso(live);
    });
  }

  put(uid: string, collection: string, record: BsoInput, pre: Preconditions): Promise<WriteResult> {
    return this.write(uid, async (u, s, T) => {
      const doc = wellFormedRecord(await u.readDoc<RecordDoc>(recordId(collection, record.id)));
      const live = doc && isLive(doc, s, collection, readClock(s)) ? doc : undefined;
      checkPreconditions(live?.m ?? 0, pre, false);
      const quotaRemaining = await this.checkQuota(u, s, await this.growth(u, s, collection, [record]));
      const done = await u.commit(s, T, collection, { kind: 'write', records: [record] }, () => {});
      return withQuota({ modified: done.at, success: [record.id], failed: {} }, quotaRemaining);
    });
  }

  post(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<WriteResult> {
    return this.write(uid, async (u, s, T) => {
      checkPreconditions(s.collections[collection] ?? 0, pre, false);
      const quotaRemaining = await this.checkQuota(u, s, await this.growth(u, s, collection, input.records));
      const op = input.records.length > 0 ? { kind: 'write' as const, records: input.records } : undefined;
      // Even a POST whose every item failed touches the collection (spec 1.2).
      const done = await u.commit(s, T, collection, op, (next) => {
        next.collections[collection] = T;
        next.storage = T;
      });
      const result: WriteResult = { modified: done.at, success: input.records.map((r) => r.id), failed: input.failed };
      return withQuota(result, quotaRemaining);
    }, true);
  }

  openBatch(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted> {
    return this.write(uid, async (u, s, T) => {
      const lastModified = s.collections[collection] ?? 0;
      checkPreconditions(lastModified, pre, false);
      this.checkTotals(0, 0, input.records);
      await this.checkQuota(u, s, inputBytes(input.records));
      const id = randomBytes(16).toString('base64url');
      u.purgeAgain(); // a batch may die unused
      // `created` is past every deletion so far; a later deletion of the collection gets a
      // timestamp at or past it and so ends the batch.
      const batch: BatchDoc = {
        _id: batchId(id),
        collection,
        created: T,
        expires: Date.now() + this.limits.batchLifetimeMs,
        chunks: input.records.length > 0 ? 1 : 0,
        records: input.records.length,
        bytes: inputBytes(input.records),
      };
      // The first chunk and the batch in one request; both are new documents.
      const docs: Array<BatchDoc | ChunkDoc> = input.records.length > 0 ? [{ _id: chunkId(id, 0), records: input.records }, batch] : [batch];
      if ((await u.db.bulk(docs)).some((r) => !r.ok)) throw new Retry();
      return { batch: id, lastModified, success: input.records.map((r) => r.id), failed: input.failed };
    });
  }

  appendBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted> {
    return this.write(uid, async (u, s) => {
      const lastModified = s.collections[collection] ?? 0;
      checkPreconditions(lastModified, pre, false);
      const doc = await this.openBatchDoc(u, s, collection, batch);
      u.purgeAgain(); // staged chunks die with the batch
      await this.stage(u, s, doc, input.records);
      return { batch, lastModified, success: input.records.map((r) => r.id), failed: input.failed };
    });
  }

  commitBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<WriteResult> {
    return this.write(uid, async (u, s, T) => {
      checkPreconditions(s.collections[collection] ?? 0, pre, false);
      const doc = await this.openBatchDoc(u, s, collection, batch);
      this.checkTotals(doc.records, doc.bytes, input.records);
      const quotaRemaining = await this.checkQuota(u, s, doc.bytes + inputBytes(input.records));
      // The commit's own records go in its journal (a crashed commit is replayed from it), not
      // in a chunk of their own: two writes fewer.
      const op: JournalOp = input.records.length > 0 ? { kind: 'commit', batch, records: input.records } : { kind: 'commit', batch };
      await u.commit(s, T, collection, op, () => {});
      return withQuota({ modified: T, success: input.records.map((r) => r.id), failed: input.failed }, quotaRemaining);
    });
  }

  private async openBatchDoc(u: UserDb, s: StateDoc, collection: string, batch: string): Promise<BatchDoc> {
    if (!BATCH_ID.test(batch)) throw new SyncError('batch-not-found', 'malformed batch id');
    const doc = await u.db.get<BatchDoc>(batchId(batch));
    if (!doc || doc.collection !== collection || doc.expires <= Date.now() || doc.created <= deletionFloor(s, collection)) {
      throw new SyncError('batch-not-found', 'no such batch');
    }
    return doc;
  }

  private async stage(u: UserDb, s: StateDoc, batch: BatchDoc, records: BsoInput[]): Promise<number | undefined> {
    const bytes = inputBytes(records);
    this.checkTotals(batch.records, batch.bytes, records);
    const quotaRemaining = await this.checkQuota(u, s, batch.bytes + bytes);
    if (records.length === 0) return quotaRemaining;
    const updated: BatchDoc = {
      ...batch,
      chunks: batch.chunks + 1,
      records: batch.records + records.length,
      bytes: batch.bytes + bytes,
    };
    // Reserve the chunk number first: two appends racing on two gateways get different ones.
    if ((await u.db.put(updated)) === 'conflict') throw new Retry();
    const chunk: ChunkDoc = { _id: chunkId(batch._id.slice(2), batch.chunks), records };
    await u.db.put(chunk);
    return quotaRemaining;
  }

  /** Real totals of a batch, not only what the client declares (RS #2357). */
  private checkTotals(records: number, bytes: number, adding: BsoInput[]): void {
    if (records + adding.length > this.limits.maxTotalRecords || bytes + inputBytes(adding) > this.limits.maxTotalBytes) {
      throw new SyncError('size-limit', 'batch total over the limit');
    }
  }

  /** Bytes a write adds: new payloads minus the live payloads they replace. */
  private async growth(u: UserDb, s: StateDoc, collection: string, records: BsoInput[]): Promise<number> {
    if (this.limits.quotaBytes <= 0) return 0;
    await u.refreshIndex(s);
    const now = readClock(s);
    let bytes = 0;
    for (const r of records) {
      if (r.payload === undefined) continue;
      bytes += Buffer.byteLength(r.payload, 'utf8');
      const old = u.index.get(collection, r.id);
      if (old && isLive(old, s, collection, now)) bytes -= old.n;
    }
    return bytes;
  }

  /** Throws over-quota when the projected usage passes the quota; returns bytes left. */
  private async checkQuota(u: UserDb, s: StateDoc, adding: number): Promise<number | undefined> {
    const quota = this.limits.quotaBytes;
    if (quota <= 0) return undefined;
    await u.refreshIndex(s);
    const used = this.tally(u, s).totalBytes;
    if (used + adding > quota) throw new SyncError('over-quota', 'quota exceeded');
    return quota - used - adding;
  }

  deleteItem(uid: string, collection: string, id: string, pre: Preconditions): Promise<number> {
    return this.write(uid, async (u, s, T) => {
      const doc = wellFormedRecord(await u.readDoc<RecordDoc>(recordId(collection, id)));
      // Stamped past the committed state: a write in flight replaced the version to answer.
      if (doc && doc.w > (s.collections[collection] ?? 0) && doc.w > deletionFloor(s, collection) && !doc.f) throw new Retry();
      const live = doc && isLive(doc, s, collection, readClock(s)) ? doc : undefined;
      checkPreconditions(live?.m ?? 0, pre, false);
      if (!live) throw new SyncError('not-found', 'no such record', { lastModified: 0 });
      await u.commit(s, T, collection, { kind: 'delete', ids: [id] }, () => {});
      return T;
    });
  }

  deleteItems(uid: string, collection: string, ids: string[], pre: Preconditions): Promise<number> {
    return this.write(uid, async (u, s, T) => {
      const current = s.collections[collection];
      checkPreconditions(current ?? 0, pre, false);
      // Deleting ids of a collection that does not exist does not create it.
      if (current === undefined) return s.storage;
      await u.commit(s, T, collection, { kind: 'delete', ids }, () => {});
      return T;
    });
  }

  deleteCollection(uid: string, collection: string, pre: Preconditions): Promise<number> {
    // One state write hides every record at once; the records are purged later in slices.
    return this.write(uid, async (u, s, T) => {
      checkPreconditions(s.collections[collection] ?? 0, pre, false);
      await u.commit(s, T, collection, undefined, (next) => {
        delete next.collections[collection];
        next.cleared[collection] = T;
        next.storage = T;
      });
      return T;
    });
  }

  deleteAll(uid: string, pre: Preconditions): Promise<number> {
    return this.write(uid, async (u, s, T) => {
      checkPreconditions(s.storage, pre, false);
      // The storage timestamp stays at T (a tombstone) so pollers of info/collections see the wipe.
      await u.commit(s, T, '', undefined, (next) => {
        next.collections = {};
        next.cleared = {};
        next.clearedAll = T;
        next.storage = T;
      });
      return T;
    });
  }

  /**
   * Failback (federation/failback.ts) copied into this store the documents that only the
   * returning node had. Replication conflicts are resolved (newest write wins) and the records
   * whose returned version won get a new timestamp: a client whose last sync came from this
   * copy would never see them with its `newer=` otherwise. Returns how many were restamped.
   */
  async restampReturned(uid: string, returned: Doc[]): Promise<number> {
    const byCollection = new Map<string, RecordDoc[]>();
    for (const d of returned) {
      // Which versions were returned (failback notes carry no payload); the stored one is checked below.
      if (d._deleted || !isRecordId(d._id)) continue;
      const r = d as RecordDoc;
      byCollection.set(r.c, [...(byCollection.get(r.c) ?? []), r]);
    }
    // Even with nothing to restamp, conflicts on the state are resolved now, not by a client.
    if (byCollection.size === 0) return this.read(uid, async (u, s) => (await u.refreshIndex(s), 0));
    let restamped = 0;
    for (const [collection, docs] of byCollection) {
      restamped += await this.write(uid, async (u, s, T) => {
        await u.refreshIndex(s);
        const now = readClock(s);
        const current = await u.db.getMany<RecordDoc>(docs.map((d) => d._id));
        const ids = docs
          .filter((d) => {
            const c = wellFormedRecord(current.get(d._id));
            return c !== undefined && c.w === d.w && c.m === d.m && isLive(c, s, collection, now);
          })
          .map((d) => d.i);
        if (ids.length === 0) return 0;
        await u.commit(s, T, collection, { kind: 'restamp', ids }, () => {});
        return ids.length;
      });
    }
    return restamped;
  }

  /**
   * Marks this node's copy of the user retired (a move's switch: the user is served elsewhere
   * from now on, and gateways that still send requests here get 503) or serving again.
   */
  retire(uid: string, node: string | undefined): Promise<void> {
    return this.pool.use(uid, (u) => u.locked(() => u.markRetired(node)));
  }

  /** Deletes the user's database: for uids the registry has replaced, never for a live one. */
  destroy(uid: string): Promise<void> {
    return this.pool.destroy(uid);
  }

  /** True while the user has a database here (created by a first request, gone once destroyed). */
  exists(uid: string): Promise<boolean> {
    return this.backend.exists(uid);
  }

  /**
   * One slice of background purging for every open user that may have something to purge;
   * returns documents removed. Of the users due only because this gateway never purged them
   * (every user it opened since it started), at most `firstPurges` per sweep.
   */
  async purge(now = Date.now(), firstPurges = FIRST_PURGES_PER_SWEEP): Promise<number> {
    let removed = 0;
    let first = 0;
    for (const uid of this.pool.openUsers()) {
      // Idle users cost no request: with many users open, a sweep that read every one of them
      // every interval was a background load growing with the number of users.
      const u = await this.pool.peek(uid);
      if (!u?.purgeDue(now)) continue;
      // A gateway that has just opened 10,000 users would otherwise read all of them in its
      // next sweep: four Couch requests each, measured as load beside the requests it serves.
      if (u.neverPurgedOnly() && first++ >= firstPurges) continue;
      // Closed (or destroyed) since the list was taken: reading it would open it again.
      if (!this.pool.isOpen(uid)) continue;
      try {
        removed += await this.read(uid, async (u, s) => purgeSlice(u, s, now));
      } catch (e) {
        // A copy the user moved away from (served elsewhere, deleted later), or a write of
        // theirs that cannot be finished now: the others are purged all the same.
        if (!(e instanceof SyncError && e.code === 'unavailable')) throw e;
      }
    }
    return removed;
  }

  check(): Promise<void> {
    return this.backend.check();
  }

  /**
   * Startup checks of the backend (data folder lock, Couch version and rights); resolves to
   * what it says of itself (a Couch node: CouchInfo).
   */
  start(): Promise<unknown> {
    return this.backend.verify();
  }

  async close(): Promise<void> {
    await this.pool.closeAll();
    await this.backend.shutdown();
  }
}

function withQuota(result: WriteResult, quotaRemaining: number | undefined): WriteResult {
  if (quotaRemaining !== undefined) result.quotaRemaining = quotaRemaining;
  return result;
}

