// Validation of one incoming record (spec 1.3). Returns the record or the reason it failed,
// in the words Mozilla's Python server used for POST `failed` entries.
import type { BsoInput } from '../../storage/store.js';

export const BSO_ID = /^[ -~]{1,64}$/;
export const COLLECTION = /^[a-zA-Z0-9._-]{1,32}$/;
const MAX_SORTINDEX = 999_999_999;
const MAX_TTL = 999_999_999;
// `modified` and `collection` are accepted and ignored: Fenix sends `collection` (RS #342).
const KNOWN = new Set(['id', 'payload', 'sortindex', 'ttl', 'modified', 'collection']);

/**
 * The id of an incoming record: a string, or an integer that an old client sent as a JSON
 * number, which Mozilla's Python server stored as its decimal string. Anything else: undefined.
 */
export function bsoIdOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

export type BsoCheck = { ok: true; bso: BsoInput } | { ok: false; reason: string };

export function checkBso(value: unknown, idFromPath?: string): BsoCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'invalid bso' };
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) return { ok: false, reason: `unknown field '${k}'` };
  // A null field is the same as an absent one (both Mozilla servers; iOS sends ttl: null).
  const field = (k: string): unknown => (o[k] === null ? undefined : o[k]);
  const rawId = field('id');
  const id = bsoIdOf(rawId);
  if (rawId !== undefined && (id === undefined || !BSO_ID.test(id))) return { ok: false, reason: 'invalid id' };
  const finalId = idFromPath ?? id;
  if (finalId === undefined) return { ok: false, reason: 'invalid id' };
  const bso: BsoInput = { id: finalId };
  const payload = field('payload');
  if (payload !== undefined) {
    if (typeof payload !== 'string') return { ok: false, reason: 'payload not a string' };
    bso.payload = payload;
  }
  const sortindex = field('sortindex');
  if (sortindex !== undefined) {
    if (!Number.isInteger(sortindex) || Math.abs(sortindex as number) > MAX_SORTINDEX) {
      return { ok: false, reason: 'invalid sortindex' };
    }
    bso.sortindex = sortindex as number;
  }
  const ttl = field('ttl');
  if (ttl !== undefined) {
    if (!Number.isInteger(ttl) || (ttl as number) < 0 || (ttl as number) > MAX_TTL) return { ok: false, reason: 'invalid ttl' };
    bso.ttl = ttl as number;
  }
  return { ok: true, bso };
}

/** A client build once uploaded an all-zero IV for crypto/keys; Mozilla's servers refuse it. */
const BROKEN_CRYPTO = /"IV":\s*"AAAAAAAAAAAAAAAAAAAAAA=="/;

export function isBrokenCrypto(collection: string, bso: BsoInput): boolean {
  return collection === 'crypto' && bso.payload !== undefined && BROKEN_CRYPTO.test(bso.payload);
}
