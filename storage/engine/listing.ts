// GET storage/{collection}: filter, order and page the live index entries (spec 3.7).
// Offsets are keyset cursors (the sort key of the last item returned), urlsafe base64, so a
// page boundary inside a run of equal timestamps still advances (RS issue #468).
import { SyncError } from '../../common/errors.js';
import type { ListQuery, SortOrder } from '../store.js';
import type { IndexEntry } from './record-index.js';

type Key = [number, string];

function sortKey(e: IndexEntry, sort: SortOrder): Key {
  return [sort === 'index' ? (e.s ?? Number.NEGATIVE_INFINITY) : e.m, e.id];
}

/** Negative when a comes first in the requested order. */
function compareKeys(a: Key, b: Key, sort: SortOrder): number {
  const asc = sort === 'oldest';
  if (a[0] !== b[0]) return asc ? a[0] - b[0] : b[0] - a[0];
  if (a[1] === b[1]) return 0;
  return (a[1] < b[1]) === asc ? -1 : 1;
}

export function encodeOffset(sort: SortOrder, key: Key): string {
  const k0 = Number.isFinite(key[0]) ? key[0] : null;
  return Buffer.from(JSON.stringify([sort, k0, key[1]]), 'utf8').toString('base64url');
}

export function decodeOffset(text: string, sort: SortOrder, query: ListQuery): Key {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(text)) throw new Error('charset');
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new SyncError('bad-request', 'invalid offset');
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    parsed[0] !== sort ||
    !(typeof parsed[1] === 'number' || (parsed[1] === null && sort === 'index')) ||
    typeof parsed[2] !== 'string'
  ) {
    throw new SyncError('bad-request', 'invalid offset');
  }
  const k0 = parsed[1] === null ? Number.NEGATIVE_INFINITY : (parsed[1] as number);
  // As RS: a cursor outside the newer/older window cannot come from this query.
  if (sort !== 'index') {
    if (query.newer !== undefined && k0 < query.newer) throw new SyncError('bad-request', 'offset below newer');
    if (query.older !== undefined && k0 > query.older) throw new SyncError('bad-request', 'offset above older');
  }
  return [k0, parsed[2]];
}

export interface Page {
  entries: IndexEntry[];
  nextOffset?: string;
}

export function selectPage(all: Iterable<IndexEntry>, query: ListQuery, live: (e: IndexEntry) => boolean): Page {
  const sort: SortOrder = query.sort ?? 'newest';
  const ids = query.ids ? new Set(query.ids) : undefined;
  const after = query.offset !== undefined ? decodeOffset(query.offset, sort, query) : undefined;
  const matched: IndexEntry[] = [];
  for (const e of all) {
    if (ids && !ids.has(e.id)) continue;
    if (query.newer !== undefined && !(e.m > query.newer)) continue;
    if (query.older !== undefined && !(e.m < query.older)) continue;
    if (!live(e)) continue;
    if (after && compareKeys(sortKey(e, sort), after, sort) <= 0) continue;
    matched.push(e);
  }
  matched.sort((a, b) => compareKeys(sortKey(a, sort), sortKey(b, sort), sort));
  if (query.limit === undefined || matched.length <= query.limit) return { entries: matched };
  const entries = matched.slice(0, query.limit);
  const last = entries[entries.length - 1];
  return last ? { entries, nextOffset: encodeOffset(sort, sortKey(last, sort)) } : { entries };
}
