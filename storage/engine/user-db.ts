// One user's database and the commit protocol that makes every write all-or-nothing and
// every acknowledged write durable, across crashes and across gateways:
//
//   1. read `state`; T = max(now, storage + 10 ms): strictly increasing per user
//   2. compare-and-swap `state` to carry `pending` {T, the write itself (journal)}
//   3. apply the records (idempotent: a record already at w = T is skipped)
//   4. compare-and-swap `state`: the collection and storage timestamps become T, pending cleared
//
// A small write (its journal inline in the state, one bulk of records) does 3 and 4 in one bulk
// request: Couch's cost is in its writes (fsync, B-tree appends), and this saves one per POST.
// One that only creates records skips step 2 as well (createInOneWrite says why that is safe).
//
// Readers only see records whose write is committed (w <= collection timestamp), so a write
// between 2 and 4 is invisible. Whoever finds a pending write whose owner is gone (crashed
// process, expired lease) rolls it forward from its journal: nothing stored is half applied
// for long, and nothing that was acknowledged (step 4 done) can be lost.
import { randomBytes } from 'node:crypto';
import { SyncError } from '../../common/errors.js';
import { failpoint } from '../../common/failpoint.js';
import { nowMs } from '../../common/timestamps.js';
import type { BulkResult, Doc, DocDb } from '../doc-db.js';
import type { BsoInput } from '../store.js';
import {
  batchId,
  chunkRange,
  emptyState,
  journalId,
  RECORD_END,
  RECORD_START,
  recordId,
  STATE_ID,
  type BatchDoc,
  type ChunkDoc,
  type JournalDoc,
  type JournalOp,
  type Pending,
  type RecordDoc,
  type StateDoc,
  wellFormedRecord,
} from './docs.js';
import { mergeStates, resolveConflicts } from './conflicts.js';
import { Mutex } from './mutex.js';
import { RecordIndex } from './record-index.js';
import { isWriteBase, mergeInputs, mergeRecord } from './records.js';
import type { UpdateFeed } from './update-feed.js';

/** The records staged in a batch's chunks, merged per id in upload order. */
function mergeStaged(chunks: ChunkDoc[]): BsoInput[] {
  const merged = new Map<string, BsoInput>();
  for (const chunk of chunks) {
    for (const r of chunk.records) merged.set(r.id, mergeInputs(merged.get(r.id), r));
  }
  return [...merged.values()];
}

/** Journals up to this size travel inside the state document: one write fewer. */
const INLINE_JOURNAL_CHARS = 64 * 1024;
const APPLY_SLICE = 500;
const CAS_ATTEMPTS = 8;

export class Retry extends Error {}

/** Seconds a client waits after meeting a copy its user moved away from. */
const MOVED_RETRY_AFTER = 2;

export interface UserDbOptions {
  /** Only this process opens the database, whose bulk writes are atomic (embedded store): any pending write is orphaned. */
  exclusive: boolean;
  /** Identifies this process in pending writes. */
  owner: string;
  /** How long a pending write is presumed alive without renewal. */
  leaseMs: number;
  /** The node this database lives on, recorded in the pending writes begun here. */
  node?: string;
  /**
   * Installs or checks the design document. Given (remote nodes), it runs in the background
   * only when the state does not yet record the current version; absent, the pool has done it.
   */
  ensureDesign?: () => Promise<unknown>;
  designVersion: number;
  /** Reads may reuse a committed state while the node's update feed reports no write of it. */
  stateCache?: { feed: UpdateFeed; maxAgeMs: number };
}

/**
 * The database as the engine writes to it, when no other process can: every write it makes
 * (all of them under the user's lock) also goes into the record index.
 */
function writingThrough(db: DocDb, index: RecordIndex, stateWritten: () => void): DocDb {
  return Object.assign(Object.create(db) as DocDb, {
    async put(doc: Doc): Promise<string | 'conflict'> {
      if (doc._id === STATE_ID) stateWritten();
      const rev = await db.put(doc);
      index.written([doc], [rev === 'conflict' ? undefined : rev]);
      return rev;
    },
    async bulk(docs: Doc[]): Promise<BulkResult[]> {
      if (docs.some((d) => d._id === STATE_ID)) stateWritten();
      const results = await db.bulk(docs);
      index.written(docs, results.map((r) => (r.ok ? r.rev : undefined)));
      return results;
    },
  });
}

/**
 * The database as the engine writes to it on a shared node: while `sink()` gives a list, the
 * documents of every bulk write, with the revisions they were given, go into it.
 */
function recordingWrites(db: DocDb, sink: () => WrittenDoc[] | undefined): DocDb {
  return Object.assign(Object.create(db) as DocDb, {
    async bulk(docs: Doc[]): Promise<BulkResult[]> {
      const results = await db.bulk(docs);
      const into = sink();
      if (into) {
        const revs = new Map(results.map((r) => [r.id, r.ok ? r.rev : undefined]));
        for (const doc of docs) into.push({ doc, rev: revs.get(doc._id) });
      }
      return results;
    },
  });
}

/** A committed write: the state after it, and the timestamp its records carry. */
export interface Committed {
  state: StateDoc;
  at: number;
}

/**
 * The documents that write `records` at T over the stored versions they merge into. A
 * malformed stored document (not written by syncgate) is replaced as if absent; a record
 * already at or past T is skipped: applied already, or written over since (a replicated
 * pending rolled forward late).
 */
function recordDocs(records: BsoInput[], stored: Map<string, RecordDoc>, collection: string, T: number, state: StateDoc): RecordDoc[] {
  const docs: RecordDoc[] = [];
  for (const r of records) {
    const found = stored.get(recordId(collection, r.id));
    const base = wellFormedRecord(found);
    if (base && base.w >= T) continue;
    const doc = mergeRecord(base && isWriteBase(base, state, collection, T) ? base : undefined, r, collection, T);
    if (found?._rev) doc._rev = found._rev;
    docs.push(doc);
  }
  return docs;
}

interface WrittenDoc {
  doc: Doc;
  rev: string | undefined;
}

export class UserDb {
  readonly index = new RecordIndex();
  private readonly mutex = new Mutex();
  readonly db: DocDb;

  constructor(
    db: DocDb,
    private readonly opts: UserDbOptions,
  ) {
    this.designConfirmed = opts.ensureDesign === undefined;
    this.db = opts.exclusive ? writingThrough(db, this.index, () => this.invalidate()) : recordingWrites(db, () => this.written);
  }

  /** What the commit in progress wrote, while the index was current when it began. */
  private written: WrittenDoc[] | undefined;

  private checkDesign(state: StateDoc): void {
    if (this.designConfirmed || this.designCheck || (state.design ?? 0) >= this.opts.designVersion) return;
    this.designCheck = (this.opts.ensureDesign as () => Promise<unknown>)().then(
      () => (this.designConfirmed = true),
      () => (this.designCheck = undefined), // retried with a later request
    );
  }

  private stamp(next: StateDoc): void {
    if (this.designConfirmed) next.design = Math.max(next.design ?? 0, this.opts.designVersion);
  }

  /** _rev of the state this gateway last read; and the one its last complete purge saw. */
  lastStateRev: string | undefined;
  purgedRev: string | undefined;
  /** _rev of the first state this gateway read of the user; whether it staged a batch since. */
  private firstStateRev: string | undefined;
  private staged = false;
  /** When the earliest open batch seen by the last purge expires. */
  batchExpiry = Infinity;

  /**
   * Due only because this gateway never purged the user: it has seen no write of theirs, so
   * any garbage is from before (other gateways purge what they write). The sweep bounds these.
   */
  neverPurgedOnly(): boolean {
    return this.purgedRev === undefined && this.lastStateRev === this.firstStateRev && !this.staged;
  }

  /** Something was staged that may die unused: a purge has work again. */
  purgeAgain(): void {
    this.purgedRev = undefined;
    this.staged = true;
  }

  /** Whether a purge could find anything: something was written or staged, or a record expired. */
  purgeDue(now: number): boolean {
    return (
      this.purgedRev === undefined ||
      this.purgedRev !== this.lastStateRev ||
      this.index.earliestExpiry <= now ||
      this.batchExpiry <= now
    );
  }

  /** The design document is known to be current; later commits record it in the state. */
  private designConfirmed: boolean;
  private designCheck: Promise<unknown> | undefined;

  /** The committed state last read for a read, while nothing says it changed. */
  private cached: { state: StateDoc; epoch: number; at: number } | undefined;
  /** Counts the writes reported for this user: a read that overlapped one is not cached. */
  private writes = 0;

  /** Someone wrote to the database (this gateway or another one): the next read asks Couch. */
  invalidate(): void {
    this.writes++;
    this.cached = undefined;
  }

  /**
   * The state this gateway's last commit left, with what the cache's guards were when that
   * commit began: reads right after a write (the rest of a sync, on the same gateway) start
   * from it instead of asking the store again.
   */
  private committedHere: { state: StateDoc; writes: number; epoch: number | undefined } | undefined;

  /**
   * A write is over (the caller held the user's lock throughout). Its committed state answers
   * the next reads when nothing can have changed it since: on the embedded store nothing else
   * writes; on Couch, a commit's compare-and-swap took the state as it stood, so only a write
   * after it could have moved it, and the feed reports such a write after it happens. So the
   * state is trusted only while no report has arrived since before the commit began (not even
   * of this commit's own writes, which come 10-50 ms later and drop it as they do today) and
   * the feed has not broken off. Otherwise the next read asks Couch, as before.
   */
  settleWrite(): void {
    const mine = this.committedHere;
    this.committedHere = undefined;
    const trusted =
      mine !== undefined &&
      !mine.state.pending &&
      mine.state._rev !== undefined &&
      (this.opts.exclusive ||
        (this.opts.stateCache !== undefined && mine.epoch !== undefined && mine.epoch === this.opts.stateCache.feed.epoch && mine.writes === this.writes));
    this.invalidate();
    if (trusted) this.cached = { state: mine.state, epoch: mine.epoch ?? 0, at: Date.now() };
  }

  /**
   * The committed state for a read: the cached one while it can be trusted, else readState().
   * Writes never use it: they read afresh, and their compare-and-swap would refuse a stale one.
   */
  async readCommittedState(): Promise<StateDoc> {
    if (this.opts.exclusive) {
      // Only this process writes, and every write of the state drops the cache (writingThrough).
      if (this.cached) return this.cached.state;
      const writes = this.writes;
      const state = await this.readState();
      if (writes === this.writes) this.cached = { state, epoch: 0, at: 0 };
      return state;
    }
    const cache = this.opts.stateCache;
    const epoch = cache?.feed.epoch;
    if (!cache || epoch === undefined) return this.readState();
    const hit = this.cached;
    if (hit && hit.epoch === epoch && Date.now() - hit.at < cache.maxAgeMs) return hit.state;
    const writes = this.writes;
    const at = Date.now();
    const state = await this.readState();
    if (writes === this.writes && cache.feed.epoch === epoch) this.cached = { state, epoch, at };
    return state;
  }

  /** Runs fn with the user's lock held. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(fn);
  }

  /** The committed state; finishes an orphaned write first. */
  async readState(opts: { retired?: boolean } = {}): Promise<StateDoc> {
    const deadline = Date.now() + 2 * this.opts.leaseMs;
    for (;;) {
      let state = await this.db.get<StateDoc>(STATE_ID);
      if (!state && this.neverWritten) {
        state = emptyState();
      } else if (!state) {
        const rebuilt = await this.rebuildState();
        if (rebuilt === 'moved') {
          if (Date.now() > deadline) throw new SyncError('unavailable', 'the state document could not be written again');
          continue;
        }
        state = rebuilt ?? emptyState();
      }
      if (state._conflicts?.length) {
        await resolveConflicts(this.db, state);
        continue;
      }
      const p = state.pending;
      if (!p) {
        if (!opts.retired && this.opts.node !== undefined && state.retired === this.opts.node) {
          throw new SyncError('unavailable', `the user moved away from node ${this.opts.node}`, { retryAfter: MOVED_RETRY_AFTER });
        }
        // A database with no state yet gets the design document when it is created; checked
        // here, a copy deleted under this gateway (a move's old copy) would be created again.
        if (state._rev !== undefined) this.checkDesign(state);
        this.lastStateRev = state._rev;
        if (state._rev !== undefined) this.neverWritten = false;
        this.firstStateRev ??= state._rev;
        return state;
      }
      if (this.opts.exclusive || p.owner === this.opts.owner || p.lease < Date.now() || this.replicatedHere(p)) {
        await this.recover(state);
        continue;
      }
      // Another gateway is between steps 2 and 4; it will be done in milliseconds.
      if (Date.now() > deadline) throw new SyncError('conflict', 'pending write did not finish');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * A state that reads as not found although it was written: every leaf left deleted, or a
   * winner whose body is gone (pouchdb-server under concurrent replication does that). Read as
   * empty it would hide every record and restart the timestamps, so it is written again from
   * what its leaves still hold, on top of the leaf Couch takes for the winner. Undefined: never
   * written; 'moved': someone wrote it meanwhile, read it again.
   */
  private async rebuildState(): Promise<StateDoc | 'moved' | undefined> {
    const leaves = await this.db.leaves<StateDoc>(STATE_ID);
    if (leaves.length === 0) {
      // It was there when this gateway last looked: the database was deleted under it (a copy
      // a move left behind). Read as never written, a write would create it again, and be lost.
      if (this.lastStateRev !== undefined) throw new SyncError('unavailable', 'the user database was deleted from this node', { retryAfter: MOVED_RETRY_AFTER });
      this.neverWritten = true;
      return undefined;
    }
    const bodies = leaves.flatMap((l) => (l.body ? [l.body] : []));
    if (bodies.length === 0) throw new SyncError('unavailable', 'the state document has no readable revision');
    const depth = (rev: string) => Number(rev.split('-')[0]);
    const live = leaves.filter((l) => !l.deleted);
    // On a live leaf (its body may be gone); a deleted document is written again without _rev.
    const winner = live.length > 0 ? live.reduce((a, b) => (depth(a.rev) !== depth(b.rev) ? (depth(a.rev) > depth(b.rev) ? a : b) : a.rev > b.rev ? a : b)) : undefined;
    const next: StateDoc = mergeStates(bodies);
    if (winner) next._rev = winner.rev;
    const rev = await this.db.put(next);
    if (rev === 'conflict') return 'moved';
    next._rev = rev;
    return next;
  }

  /**
   * The state was found never written, and none has been read or written since: a user who
   * only reads an empty storage costs one Couch request per read, not two. Any state seen here
   * clears it, so a state that later reads as not found is rebuilt.
   */
  private neverWritten = false;

  /** A pending write begun on another node's copy of this database: nobody is finishing it here. */
  private replicatedHere(p: Pending): boolean {
    return p.node !== undefined && this.opts.node !== undefined && p.node !== this.opts.node;
  }

  /**
   * Marks this copy retired on `node` (a move's switch) or serving again (undefined: the move
   * rolled back, or the user moved back). Waits for, or finishes, a write in flight first, so
   * the mark lands on a committed state. The caller holds the user's lock.
   */
  async markRetired(node: string | undefined): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS * 4; attempt++) {
      const state = await this.readState({ retired: true });
      if (state.retired === node) return;
      const next = structuredClone(state);
      if (node === undefined) delete next.retired;
      else next.retired = node;
      const rev = await this.db.put(next);
      this.invalidate();
      if (rev !== 'conflict') return;
    }
    throw new SyncError('conflict', 'the state kept changing while marking the copy');
  }

  /** Brings the record index up to the given state. */
  async refreshIndex(state: StateDoc): Promise<void> {
    if (state._rev !== undefined && this.index.stateRev === state._rev) return;
    // Built once, the index of an exclusive store has followed every write since (the
    // caller holds the user's lock, so none is half-way through).
    if (this.opts.exclusive && this.index.built) {
      this.index.stateRev = state._rev;
      return;
    }
    for (;;) {
      const changes =
        this.index.seq === 0 && this.db.snapshot ? await this.db.snapshot<Doc>(RECORD_START, RECORD_END) : await this.db.changes<Doc>(this.index.seq);
      const conflicted = changes.docs.filter((d) => d._conflicts?.length);
      this.index.apply(changes);
      if (conflicted.length === 0) break;
      // Resolve, then read the resolutions back through the feed.
      for (const doc of conflicted) await resolveConflicts(this.db, doc);
    }
    this.index.stateRev = state._rev;
  }

  /** One document, with any replication conflict resolved first. */
  async readDoc<T extends Doc>(id: string): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      const doc = await this.db.get<T>(id);
      if (!doc?._conflicts?.length || attempt >= CAS_ATTEMPTS) return doc;
      await resolveConflicts(this.db, doc);
    }
  }

  /** Next write timestamp: now, but always past everything this user has seen. */
  nextTimestamp(state: StateDoc): number {
    return Math.max(nowMs(), state.storage + 10);
  }

  /**
   * Steps 2–4 for a write that touches records of one collection, or step 4 alone for a
   * write that only changes the state (op undefined). Throws Retry when another writer
   * moved the state first; the caller starts over from a fresh read.
   */
  async commit(
    state: StateDoc,
    T: number,
    collection: string,
    op: JournalOp | undefined,
    update: (s: StateDoc) => void,
  ): Promise<Committed> {
    this.committedHere = undefined;
    const guards = { writes: this.writes, epoch: this.opts.stateCache?.feed.epoch };
    const committed = (c: Committed): Committed => {
      this.committedHere = { state: c.state, ...guards };
      return c;
    };
    // The index was current at this state and the swaps below leave no room for another writer:
    // it can follow what this commit writes instead of reading it back from the changes feed.
    const follow = !this.opts.exclusive && this.index.built && state._rev !== undefined && this.index.stateRev === state._rev;
    if (!op) {
      const next = structuredClone(state);
      update(next);
      this.stamp(next);
      const rev = await this.db.put(next);
      if (rev === 'conflict') throw new Retry();
      next._rev = rev;
      this.lastStateRev = rev;
      this.neverWritten = false;
      if (follow) this.index.stateRev = rev;
      return committed({ state: next, at: T });
    }
    const pending: Pending = { T, collection, owner: this.opts.owner, lease: Date.now() + this.opts.leaseMs, ...this.here() };
    if (this.opts.exclusive && state._rev !== undefined && state._rev === this.lastStateRev) {
      const whole = op.kind === 'write' ? (op.records.length <= APPLY_SLICE ? { op, spent: [] } : undefined) : op.kind === 'commit' ? await this.stagedWrite(op) : undefined;
      if (whole) return committed(await this.commitAtomically({ ...state, pending }, whole.op, whole.spent, update));
    }
    // The stored versions a small write merges into, read (or taken from a current index) once.
    let bases: Map<string, RecordDoc> | undefined;
    if (!this.opts.exclusive && op.kind === 'write' && op.records.length <= APPLY_SLICE && state._rev !== undefined) {
      bases = await this.writeBases(collection, op.records, this.index.built && follow);
      if (bases.size === 0) return committed(await this.createInOneWrite({ ...state, pending }, op, follow, update));
    }
    if (JSON.stringify(op).length <= INLINE_JOURNAL_CHARS) {
      pending.op = op;
    } else {
      const journal: JournalDoc = { _id: `${journalId(T)}:${randomBytes(6).toString('hex')}`, op };
      if ((await this.db.put(journal)) === 'conflict') throw new Retry();
      pending.journal = journal._id;
    }
    const claimed: StateDoc = { ...state, pending };
    const rev = await this.db.put(claimed);
    if (rev === 'conflict') {
      if (pending.journal) await this.deleteDocs([pending.journal]);
      throw new Retry();
    }
    claimed._rev = rev;
    this.neverWritten = false;
    failpoint('commit:after-pending');
    const written: WrittenDoc[] = [];
    this.written = follow ? written : undefined;
    try {
      // A small write: its records and the state that commits them go in one write, not two.
      const oneWrite = op.kind === 'write' && pending.op !== undefined && op.records.length <= APPLY_SLICE;
      const together = oneWrite ? await this.finishInOneWrite(claimed, op, this.opts.exclusive || follow, [], bases) : undefined;
      if (together?.refused) {
        // Committed without these records: another writer changed them under this one
        // (replication, a write behind the index's back). They go in a commit of their own,
        // later than the one just made, so that a reader of it cannot have missed them.
        this.written = undefined;
        return await this.commit(together.done, this.nextTimestamp(together.done), collection, { kind: 'write', records: together.refused }, update);
      }
      const done = together?.done ?? (await this.finish(claimed, op));
      // Committed by this swap, not rolled forward by someone who presumed us dead.
      if (this.written === written) this.followCommit(written, done);
      return committed({ state: done, at: T });
    } finally {
      this.written = undefined;
    }
  }

  /**
   * A small write or batch commit on the embedded store: no pending marker, its records (and
   * the deletion of the batch's documents) and the state that commits them in one bulk request. PouchDB writes a bulk request as one LevelDB batch, and
   * no other process writes this database, so nothing can see half of it, nor find half of it
   * after a crash: the marker and its journal, a write of the state that carries every record
   * once more, would guard nothing. `state` is the last state this process wrote or read
   * under the user's lock, so its compare-and-swap holds.
   */
  private async commitAtomically(state: StateDoc, op: Extract<JournalOp, { kind: 'write' }>, spent: Doc[], update: (s: StateDoc) => void): Promise<Committed> {
    const p = state.pending as Pending;
    const together = await this.finishInOneWrite(state, op, true, spent);
    // Only if something wrote the state behind this process's back. Records of this write may
    // be stored at p.T without a committed state: the next attempt writes them all again later.
    if (!together) throw new Retry();
    this.neverWritten = false;
    if (together.refused) return this.commit(together.done, this.nextTimestamp(together.done), p.collection, { kind: 'write', records: together.refused }, update);
    return { state: together.done, at: p.T };
  }

  /**
   * A small write on Couch whose records are all new (none stored, by the index or a read): its
   * records and the state that commits them in one bulk request, with no pending marker before.
   * The marker is there so that a write cut short is finished rather than left half applied;
   * here nothing can be half applied. CouchDB writes a single-shard database's bulk request
   * in one commit, so a crash leaves all of it or none; records whose compare-and-swap fails
   * (created meanwhile by another writer) are committed right after, as in finishInOneWrite;
   * and if the state's swap fails, the records just created are deleted again before the
   * write starts over. Until then they are uncommitted (stamped past their collection's
   * timestamp) and no reader lists them; none of them replaced a stored version.
   *
   * What is given up: a request whose answer is lost (a gateway that dies, or Couch that
   * times out, before the state is known to be refused and the records deleted) may leave new
   * records that appear at the user's next write to their collection, as if written then. The
   * client was not answered with a success, and Firefox uploads such records again.
   */
  private async createInOneWrite(state: StateDoc, op: Extract<JournalOp, { kind: 'write' }>, follow: boolean, update: (s: StateDoc) => void): Promise<Committed> {
    const p = state.pending as Pending;
    const done = this.committed(state);
    const records = recordDocs(op.records, new Map(), p.collection, p.T, state).map((d): RecordDoc => ({ ...d, f: 1 }));
    const written: WrittenDoc[] = [];
    this.written = follow ? written : undefined;
    let results: BulkResult[];
    try {
      results = await this.db.bulk([...records, done]);
    } finally {
      this.written = undefined;
    }
    const committed = results.find((r) => r.id === STATE_ID);
    if (!committed?.ok || committed.rev === undefined) {
      const created = results.filter((r) => r.ok && r.rev !== undefined && r.id !== STATE_ID);
      failpoint('commit:created-uncommitted');
      if (created.length > 0) await this.db.bulk(created.map((r) => ({ _id: r.id, _rev: r.rev as string, _deleted: true })));
      throw new Retry();
    }
    done._rev = committed.rev;
    this.lastStateRev = committed.rev;
    this.neverWritten = false;
    const failed = new Set(results.filter((r) => !r.ok).map((r) => r.id));
    const refused = op.records.filter((r) => failed.has(recordId(p.collection, r.id)));
    if (refused.length > 0) return this.commit(done, this.nextTimestamp(done), p.collection, { kind: 'write', records: refused }, update);
    if (follow) this.followCommit(written, done);
    return { state: done, at: p.T };
  }

  /** The index, current at the state a commit began from, takes what it wrote: current at `done`. */
  private followCommit(written: WrittenDoc[], done: StateDoc): void {
    if (written.some((w) => w.rev === undefined)) return;
    this.index.written(
      written.map((w) => w.doc),
      written.map((w) => w.rev),
    );
    this.index.stateRev = done._rev;
  }

  /**
   * A batch commit as one write: every staged record merged with the commit's own, and the
   * batch's documents, deleted by the same request that commits them. Undefined when the batch
   * is gone (the usual path answers that) or holds more than one bulk request's records (the
   * usual path applies them in slices; its chunks are not read here first).
   */
  private async stagedWrite(op: Extract<JournalOp, { kind: 'commit' }>): Promise<{ op: Extract<JournalOp, { kind: 'write' }>; spent: Doc[] } | undefined> {
    const batch = await this.db.get<BatchDoc>(batchId(op.batch));
    if (!batch || batch.records + (op.records?.length ?? 0) > APPLY_SLICE) return undefined;
    const [start, end] = chunkRange(op.batch);
    const chunks = await this.db.range<ChunkDoc>(start, end);
    return { op: { kind: 'write', records: mergeStaged([...chunks, { _id: '', records: op.records ?? [] }]) }, spent: [...chunks, batch] };
  }

  /**
   * Steps 3 and 4 of a small write in one bulk request: its records, and the state that
   * commits them. Undefined when the state was refused (the write was taken over: finish() it
   * the usual way, every step of which is idempotent); `refused` lists records that lost their
   * compare-and-swap while the state was committed.
   *
   * A crash before the request leaves the pending write, rolled forward from its journal. One
   * during it may commit the state without some records, on a Couch that does not write a
   * request's documents at once (a single-shard CouchDB database and PouchDB do): a write that
   * was never acknowledged, half applied, as a POST that failed part-way may be (spec 1.5).
   */
  private async finishInOneWrite(
    state: StateDoc,
    op: Extract<JournalOp, { kind: 'write' }>,
    indexCurrent: boolean,
    spent: Doc[] = [],
    bases?: Map<string, RecordDoc>,
  ): Promise<{ done: StateDoc; refused?: BsoInput[] } | undefined> {
    const p = state.pending as Pending;
    // Bases from an index that may be behind would lose compare-and-swaps after the state is
    // committed: such a write reads them instead (a read costs Couch less than a write).
    const existing = bases ?? (await this.writeBases(p.collection, op.records, this.index.built && indexCurrent));
    const done = this.committed(state);
    const deletions = spent.map((d) => ({ _id: d._id, _rev: d._rev, _deleted: true }));
    const results = await this.db.bulk([...recordDocs(op.records, existing, p.collection, p.T, state), ...deletions, done]);
    const committed = results.find((r) => r.id === STATE_ID);
    if (!committed?.ok || committed.rev === undefined) return undefined;
    const undeleted = new Set(deletions.map((d) => d._id));
    const lingering = results.filter((r) => undeleted.has(r.id) && !r.ok).map((r) => r.id);
    if (lingering.length > 0) await this.deleteDocs(lingering);
    done._rev = committed.rev;
    this.lastStateRev = committed.rev;
    const failed = new Set(results.filter((r) => !r.ok && !undeleted.has(r.id)).map((r) => r.id));
    const refused = op.records.filter((r) => failed.has(recordId(p.collection, r.id)));
    return refused.length > 0 ? { done, refused } : { done };
  }

  /** The state with its pending write committed. */
  private committed(state: StateDoc): StateDoc {
    const p = state.pending as Pending;
    const done: StateDoc = structuredClone(state);
    done.pending = null;
    // A pending write replicated from another copy and rolled forward here may be older than
    // what this copy has committed since: the collection never moves back.
    done.collections[p.collection] = Math.max(done.collections[p.collection] ?? 0, p.T);
    done.storage = Math.max(done.storage, p.T);
    this.stamp(done);
    return done;
  }

  /** Steps 3 and 4 of the pending write in `state`. */
  private async finish(state: StateDoc, op: JournalOp): Promise<StateDoc> {
    const p = state.pending as Pending;
    let spent = await this.apply(op, p.T, p.collection, state, () => this.renewLease(state));
    failpoint('commit:before-state');
    const done = this.committed(state);
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const rev = spent.length > 0 ? await this.putWithDeletions(done, spent) : await this.db.put(done);
      spent = [];
      if (rev !== 'conflict') {
        done._rev = rev;
        this.lastStateRev = rev;
        if (p.journal) await this.deleteDocs([p.journal]);
        return done;
      }
      // Someone else touched the state: the index no longer knows everything written.
      this.written = undefined;
      // Someone else rolled our write forward (we were presumed dead): it is committed.
      const now = (await this.db.get<StateDoc>(STATE_ID)) ?? emptyState();
      if (!now.pending || now.pending.T !== p.T) {
        if ((now.collections[p.collection] ?? -1) >= p.T || now.storage >= p.T) return now;
        throw new SyncError('unavailable', 'write lost its pending marker');
      }
      done._rev = now._rev;
    }
    throw new SyncError('conflict', 'could not commit state');
  }

  /**
   * The state, and the deletion of documents its commit makes useless (a batch and its chunks),
   * in one bulk request. A deletion that lost its compare-and-swap is tried again on the
   * current revision; one of a state that was refused may have landed, which is harmless: a
   * replay of the commit finds no batch and has nothing left to apply.
   */
  private async putWithDeletions(state: StateDoc, spent: Doc[]): Promise<string | 'conflict'> {
    const results = await this.db.bulk([...spent.map((d) => ({ _id: d._id, _rev: d._rev, _deleted: true })), state]);
    const committed = results.find((r) => r.id === STATE_ID);
    const failed = results.filter((r) => r.id !== STATE_ID && r.conflict).map((r) => r.id);
    if (failed.length > 0) await this.deleteDocs(failed);
    return committed?.ok && committed.rev !== undefined ? committed.rev : 'conflict';
  }

  /**
   * Keeps a long write (a 10,000-record commit) from being taken over while it is alive. A
   * lost race means another gateway already took it over: both apply the same journal at the
   * same T, and whichever commits first wins.
   */
  private here(): { node?: string } {
    return this.opts.node === undefined ? {} : { node: this.opts.node };
  }

  private async renewLease(state: StateDoc): Promise<void> {
    const p = state.pending;
    if (!p || p.owner !== this.opts.owner || p.lease - Date.now() > this.opts.leaseMs / 2) return;
    p.lease = Date.now() + this.opts.leaseMs;
    const rev = await this.db.put(state);
    if (rev !== 'conflict') state._rev = rev;
  }

  private async recover(state: StateDoc): Promise<void> {
    if (state.pending?.owner !== this.opts.owner && state._rev !== undefined) {
      // Take the orphaned write over, so other gateways wait for us instead of joining in.
      const claimed: StateDoc = { ...state, pending: { ...(state.pending as Pending), owner: this.opts.owner, lease: Date.now() + this.opts.leaseMs, ...this.here() } };
      const rev = await this.db.put(claimed);
      if (rev === 'conflict') return; // someone else moved first; read again
      claimed._rev = rev;
      state = claimed;
    }
    const p = state.pending as Pending;
    let op = p.op;
    if (!op && p.journal) op = (await this.db.get<JournalDoc>(p.journal))?.op;
    // A journal document is deleted only after its commit; should one still be missing,
    // commit what was applied rather than leave records stamped past the collection.
    await this.finish(state, op ?? { kind: 'delete', ids: [] });
  }

  /** Step 3; returns the documents the commit of the state deletes (a batch's). */
  private async apply(op: JournalOp, T: number, collection: string, state: StateDoc, renew: () => Promise<void>): Promise<Doc[]> {
    switch (op.kind) {
      case 'write':
        await this.applyRecords(op.records, collection, T, state, renew);
        break;
      case 'delete':
        await this.applyDeletes(op.ids.map((id) => recordId(collection, id)), T);
        break;
      case 'restamp':
        await this.applyRestamp(op.ids.map((id) => recordId(collection, id)), T);
        break;
      case 'commit': {
        const batch = await this.db.get<BatchDoc>(batchId(op.batch));
        if (!batch) return []; // applied and cleaned up before a crash
        const [start, end] = chunkRange(op.batch);
        const chunks = await this.db.range<ChunkDoc>(start, end);
        // The commit's own records travel in the journal, after every staged chunk.
        await this.applyRecords(mergeStaged([...chunks, { _id: '', records: op.records ?? [] }]), collection, T, state, renew);
        // Deleted in the request that commits the state: until then the batch lets a crashed
        // commit be replayed; from here on every record is applied, so a replay that finds it
        // gone has nothing left to do.
        return [...chunks, batch];
      }
    }
    return [];
  }

  /**
   * The stored versions the records of a write merge into. The record index knows most of
   * them (revision, stamps, sortindex, expiry): a read is needed only for a record it holds
   * whose payload the write keeps, or when it has not been built. Where it is out of date,
   * the write's compare-and-swap on _rev refuses, and the retry reads.
   */
  private async writeBases(collection: string, records: BsoInput[], useIndex: boolean): Promise<Map<string, RecordDoc>> {
    if (!useIndex) return this.db.getMany<RecordDoc>(records.map((r) => recordId(collection, r.id)));
    const bases = new Map<string, RecordDoc>();
    const toRead: string[] = [];
    for (const r of records) {
      const e = this.index.get(collection, r.id);
      if (!e) continue;
      const id = recordId(collection, r.id);
      if (r.payload === undefined) {
        toRead.push(id);
        continue;
      }
      // The payload is replaced: the stored one is not needed.
      const base: RecordDoc = { _id: id, _rev: e.rev, c: collection, i: r.id, w: e.w, m: e.m, p: '', n: e.n };
      if (e.s !== undefined) base.s = e.s;
      if (e.x !== undefined) base.x = e.x;
      bases.set(id, base);
    }
    for (const [id, doc] of await this.db.getMany<RecordDoc>(toRead)) bases.set(id, doc);
    return bases;
  }

  private async applyRecords(
    records: BsoInput[],
    collection: string,
    T: number,
    state: StateDoc,
    renew: () => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < records.length; i += APPLY_SLICE) {
      await renew();
      let todo = records.slice(i, i + APPLY_SLICE);
      for (let attempt = 0; todo.length > 0; attempt++) {
        if (attempt >= CAS_ATTEMPTS) throw new SyncError('unavailable', 'record writes kept conflicting');
        const existing = await this.writeBases(collection, todo, attempt === 0 && this.index.built);
        const results = await this.db.bulk(recordDocs(todo, existing, collection, T, state));
        const failed = new Set(results.filter((x) => !x.ok).map((x) => x.id));
        todo = todo.filter((r) => failed.has(recordId(collection, r.id)));
      }
      if (i + APPLY_SLICE < records.length) failpoint('commit:mid-apply');
    }
  }

  /**
   * Deletes the documents that exist; conflicts are retried with the fresh revision. Given
   * documents just read (with _rev), the first attempt deletes those revisions without reading.
   */
  async deleteDocs(idsOrDocs: Array<string | Doc>): Promise<void> {
    for (let i = 0; i < idsOrDocs.length; i += APPLY_SLICE) {
      const slice = idsOrDocs.slice(i, i + APPLY_SLICE);
      const known = slice.every((d) => typeof d !== 'string' && d._rev !== undefined) ? (slice as Doc[]) : undefined;
      let todo = slice.map((d) => (typeof d === 'string' ? d : d._id));
      for (let attempt = 0; todo.length > 0; attempt++) {
        if (attempt >= CAS_ATTEMPTS) throw new SyncError('unavailable', 'deletes kept conflicting');
        const existing = attempt === 0 && known ? known : [...(await this.db.getMany<Doc>(todo)).values()];
        const docs = existing.map((d) => ({ _id: d._id, _rev: d._rev, _deleted: true }));
        const results = await this.db.bulk(docs);
        const failed = new Set(results.filter((x) => x.conflict).map((x) => x.id));
        todo = todo.filter((id) => failed.has(id));
      }
    }
  }

  /** Moves records to T, content unchanged (idempotent: a record already at T is skipped). */
  private async applyRestamp(ids: string[], T: number): Promise<void> {
    for (let attempt = 0; ids.length > 0; attempt++) {
      if (attempt >= CAS_ATTEMPTS) throw new SyncError('unavailable', 'restamps kept conflicting');
      const existing = await this.db.getMany<RecordDoc>(ids);
      const docs = [...existing.values()]
        .filter((d) => d.w < T)
        .map(({ _conflicts: _c, ...d }) => ({ ...d, w: T, m: T }) as RecordDoc);
      const results = await this.db.bulk(docs);
      const failed = new Set(results.filter((x) => !x.ok).map((x) => x.id));
      ids = ids.filter((id) => failed.has(id));
    }
  }

  /** Deletes the records not written since T (a replicated pending may be rolled forward late). */
  private async applyDeletes(ids: string[], T: number): Promise<void> {
    const existing = await this.db.getMany<RecordDoc>(ids);
    await this.deleteDocs([...existing.values()].filter((d) => d.w <= T).map((d) => d._id));
  }
}
