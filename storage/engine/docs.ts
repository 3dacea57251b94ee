// Document shapes inside one user database, and how their _ids are built.
//
//   state              the user's state: storage and collection timestamps, deletion floors,
//                      and the write in progress (see commit.ts). One GET answers info/collections.
//   r:<coll>:<id>      one record (BSO). Collection names never contain ':', so the first ':'
//                      after the prefix separates them; BSO ids may contain anything printable.
//   b:<batch>          an open batch: collection, creation time, running totals.
//   q:<batch>:<n>      the records of the n-th POST to a batch (one document per POST, not per record).
//   j:<T>              the journal of a large write in progress (small ones travel inside `state`).
//   _design/syncgate   design document (couch-design/), installed by version.
import type { Doc } from '../doc-db.js';
import type { BsoInput } from '../store.js';

export const STATE_ID = 'state';

export interface RecordDoc extends Doc {
  c: string;
  i: string;
  /** Write timestamp: the T of the last write that touched the record (ttl-only writes too). */
  w: number;
  /** Protocol `modified`. */
  m: number;
  p: string;
  /** Payload size in UTF-8 bytes. */
  n: number;
  s?: number;
  /** Expiry (ms); absent means never. */
  x?: number;
  /**
   * Created by a write with no pending state (UserDb.createInOneWrite): as long as it is
   * stamped past its collection's committed timestamp, it is uncommitted and replaced nothing,
   * so a reader skips it rather than wait for a write in flight.
   */
  f?: 1;
}

export type JournalOp =
  | { kind: 'write'; records: BsoInput[] }
  | { kind: 'delete'; ids: string[] }
  /** A batch commit; `records`: those the commit request itself carried (applied last). */
  | { kind: 'commit'; batch: string; records?: BsoInput[] }
  /** Records the returning node of a failback alone had: a new timestamp, so every client sees them. */
  | { kind: 'restamp'; ids: string[] };

/** A write whose records may be half applied: whoever finds it finishes it (roll forward). */
export interface Pending {
  T: number;
  collection: string;
  owner: string;
  /** Until this wall-clock time the owner is presumed alive and working on it. */
  lease: number;
  /**
   * The node whose database the owner writes it to. A copy found on another node came there
   * by replication: its owner is not writing there, so it is finished at once, not after the
   * lease (failover to the replica of a node that died with a write in flight).
   */
  node?: string;
  op?: JournalOp;
  /** Id of a journal document holding `op`, when it was too large to keep here. */
  journal?: string;
}

export interface StateDoc extends Doc {
  storage: number;
  collections: Record<string, number>;
  /** Collection deletions: records of the collection with w <= value are gone. */
  cleared: Record<string, number>;
  /** Whole-storage deletion: every record with w <= value is gone. */
  clearedAll: number;
  pending?: Pending | null;
  /** Version of the design document known to be installed: checking it costs no request. */
  design?: number;
  /**
   * The node whose copy this is no longer serves: the user was moved away from it
   * (federation/user-move.ts). Its gateways refuse the user there, whatever their registry says.
   */
  retired?: string;
}

export interface BatchDoc extends Doc {
  collection: string;
  /** Creation stamp; the batch dies with any deletion of its collection at or after it. */
  created: number;
  expires: number;
  chunks: number;
  records: number;
  bytes: number;
}

export interface ChunkDoc extends Doc {
  records: BsoInput[];
}

export interface JournalDoc extends Doc {
  op: JournalOp;
}

export const recordId = (collection: string, id: string): string => `r:${collection}:${id}`;
export const RECORD_START = 'r:';
export const RECORD_END = 'r:\uffff';
export const batchId = (batch: string): string => `b:${batch}`;
export const chunkId = (batch: string, n: number): string => `q:${batch}:${String(n).padStart(6, '0')}`;
export const chunkRange = (batch: string): [string, string] => [`q:${batch}:`, `q:${batch}:\uffff`];
export const journalId = (T: number): string => `j:${T}`;

export function emptyState(): StateDoc {
  return { _id: STATE_ID, storage: 0, collections: {}, cleared: {}, clearedAll: 0, pending: null };
}

export const isRecordId = (id: string): boolean => id.startsWith(RECORD_START);

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/**
 * The record, if the document has the shape this program writes; otherwise undefined, and the
 * document is treated as absent (never listed, counted or served). A node's admins can write
 * anything into a user database, so the check is made where records are read, not by the node.
 */
export function wellFormedRecord(doc: Doc | undefined): RecordDoc | undefined {
  if (!doc) return undefined;
  const r = doc as Partial<RecordDoc>;
  if (typeof r.c !== 'string' || typeof r.i !== 'string' || doc._id !== recordId(r.c, r.i)) return undefined;
  if (!isInt(r.w) || r.w < 0 || !isInt(r.m) || r.m < 0 || typeof r.p !== 'string' || !isInt(r.n) || r.n < 0) return undefined;
  if ((r.s !== undefined && !isInt(r.s)) || (r.x !== undefined && !isInt(r.x)) || (r.f !== undefined && r.f !== 1)) return undefined;
  return doc as RecordDoc;
}
