// Query parameters of collection requests (spec 3.7, 5.1), validated before any storage work.
// Unknown parameters are ignored, as clients (FX's ?v=) rely on.
import { SyncError } from '../../common/errors.js';
import { parseSeconds } from '../../common/timestamps.js';
import type { ListQuery, SortOrder } from '../../storage/store.js';
import { BSO_ID } from './bso.js';

export const MAX_IDS = 100;

export function parseIds(value: string): string[] {
  // Pieces are trimmed and empty ones dropped (`ids=a,` is fine, as in RS).
  const ids = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (ids.length > MAX_IDS) throw new SyncError('bad-request', 'too many ids');
  for (const id of ids) if (!BSO_ID.test(id)) throw new SyncError('bad-request', 'invalid id in ids');
  return ids;
}

function timestampParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const ms = parseSeconds(v);
  if (ms === undefined) throw new SyncError('bad-request', `invalid ${name}`);
  return ms;
}

export function parseListQuery(q: URLSearchParams): ListQuery {
  const query: ListQuery = { full: q.has('full') };
  const ids = q.get('ids');
  if (ids !== null) query.ids = parseIds(ids);
  const newer = timestampParam(q, 'newer');
  if (newer !== undefined) query.newer = newer;
  const older = timestampParam(q, 'older');
  if (older !== undefined) query.older = older;
  const limit = q.get('limit');
  if (limit !== null) {
    if (!/^\d+$/.test(limit)) throw new SyncError('bad-request', 'invalid limit');
    query.limit = Number(limit);
  }
  const offset = q.get('offset');
  if (offset !== null) query.offset = offset;
  const sort = q.get('sort');
  if (sort !== null) {
    if (sort !== 'newest' && sort !== 'oldest' && sort !== 'index') throw new SyncError('bad-request', 'invalid sort');
    query.sort = sort as SortOrder;
  }
  return query;
}

export type BatchParam = { mode: 'none' } | { mode: 'open'; commit: boolean } | { mode: 'continue'; id: string; commit: boolean };

export function parseBatchParams(q: URLSearchParams): BatchParam {
  const batch = q.get('batch');
  const commit = q.get('commit');
  if (commit !== null && commit.toLowerCase() !== 'true') throw new SyncError('bad-request', 'commit must be true');
  if (batch === null) {
    if (commit !== null) throw new SyncError('bad-request', 'commit without batch');
    return { mode: 'none' };
  }
  if (batch === '' || batch.toLowerCase() === 'true') return { mode: 'open', commit: commit !== null };
  return { mode: 'continue', id: batch, commit: commit !== null };
}
