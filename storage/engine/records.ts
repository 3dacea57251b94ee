// The record rules of the protocol (spec 1.3, 1.4): which stored records a reader may see,
// and how a write merges into an existing record.
import type { BsoInput, Bso } from '../store.js';
import { recordId, type RecordDoc, type StateDoc } from './docs.js';

/** Records of the collection written at or before this are deleted (collection or storage wipe). */
export function deletionFloor(state: StateDoc, collection: string): number {
  return Math.max(state.cleared[collection] ?? 0, state.clearedAll);
}

/**
 * The time against which expiry is judged. Write timestamps may run ahead of the wall clock
 * (each write is at least 10 ms after the previous one), and a record written with ttl 0 at T
 * expires at T: so "now" for a reader is never before the user's storage timestamp.
 */
export function readClock(state: StateDoc): number {
  return Math.max(Date.now(), state.storage);
}

export interface RecordStamp {
  w: number;
  x?: number;
}

/**
 * A record is live when no deletion covers it, its write is committed (not newer than the
 * collection's committed timestamp) and it has not expired by `now`.
 */
export function isLive(r: RecordStamp, state: StateDoc, collection: string, now: number): boolean {
  const committed = state.collections[collection];
  if (committed === undefined || r.w > committed) return false;
  if (r.w <= deletionFloor(state, collection)) return false;
  return r.x === undefined || r.x > now;
}

/** Base for a write at T: a record that exists, is not deleted and has not expired. */
export function isWriteBase(r: RecordStamp, state: StateDoc, collection: string, T: number): boolean {
  if (r.w <= deletionFloor(state, collection)) return false;
  return r.x === undefined || r.x > T;
}

/**
 * Merge semantics: only the fields present change; `modified` moves only when payload or
 * sortindex is sent (a ttl-only write keeps it), and a new record gets defaults.
 */
export function mergeRecord(
  base: RecordDoc | undefined,
  input: BsoInput,
  collection: string,
  T: number,
): RecordDoc {
  const payload = input.payload ?? base?.p ?? '';
  const doc: RecordDoc = {
    _id: recordId(collection, input.id),
    c: collection,
    i: input.id,
    w: T,
    m: base && input.payload === undefined && input.sortindex === undefined ? base.m : T,
    p: payload,
    n: Buffer.byteLength(payload, 'utf8'),
  };
  const sortindex = input.sortindex !== undefined ? input.sortindex : base?.s;
  if (sortindex !== undefined) doc.s = sortindex;
  const expiry = input.ttl !== undefined ? T + input.ttl * 1000 : base?.x;
  if (expiry !== undefined) doc.x = expiry;
  return doc;
}

/** Later fields win, absent ones keep the earlier value (staged batch records, RS PR #1943). */
export function mergeInputs(earlier: BsoInput | undefined, later: BsoInput): BsoInput {
  if (!earlier) return { ...later };
  const merged: BsoInput = { ...earlier };
  if (later.payload !== undefined) merged.payload = later.payload;
  if (later.sortindex !== undefined) merged.sortindex = later.sortindex;
  if (later.ttl !== undefined) merged.ttl = later.ttl;
  return merged;
}

export function toBso(doc: RecordDoc): Bso {
  const bso: Bso = { id: doc.i, modified: doc.m, payload: doc.p };
  if (doc.s !== undefined) bso.sortindex = doc.s;
  return bso;
}

export const inputBytes = (records: BsoInput[]): number =>
  records.reduce((sum, r) => sum + (r.payload === undefined ? 0 : Buffer.byteLength(r.payload, 'utf8')), 0);
