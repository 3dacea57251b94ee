// Request headers that change what a request does (spec 4.1).
import type Koa from 'koa';
import { SyncError } from '../../common/errors.js';
import { parseSeconds } from '../../common/timestamps.js';
import type { Preconditions } from '../../storage/store.js';
import type { Limits } from '../config.js';

export function preconditions(ctx: Koa.Context): Preconditions {
  const ims = ctx.get('X-If-Modified-Since');
  const ius = ctx.get('X-If-Unmodified-Since');
  if (ims !== '' && ius !== '') throw new SyncError('bad-request', 'both precondition headers');
  const pre: Preconditions = {};
  if (ims !== '') {
    const v = parseSeconds(ims);
    if (v === undefined) throw new SyncError('bad-request', 'bad X-If-Modified-Since');
    pre.ifModifiedSince = v;
  }
  if (ius !== '') {
    const v = parseSeconds(ius);
    if (v === undefined) throw new SyncError('bad-request', 'bad X-If-Unmodified-Since');
    pre.ifUnmodifiedSince = v;
  }
  return pre;
}

/** X-Weave-Records/-Bytes/-Total-*: declared sizes checked before the body is read. */
export function checkDeclaredSizes(ctx: Koa.Context, limits: Limits): void {
  const checks: Array<[string, number]> = [
    ['X-Weave-Records', limits.maxPostRecords],
    ['X-Weave-Bytes', limits.maxPostBytes],
    ['X-Weave-Total-Records', limits.maxTotalRecords],
    ['X-Weave-Total-Bytes', limits.maxTotalBytes],
  ];
  for (const [name, max] of checks) {
    const v = ctx.get(name);
    if (v === '') continue;
    if (!/^\d+$/.test(v.trim())) throw new SyncError('bad-request', `bad ${name}`);
    if (Number(v) > max) throw new SyncError('size-limit', `${name} over the limit`);
  }
}

export type OutputFormat = 'json' | 'newlines';

/** Accept negotiation for collection listings, walked by descending q as RS does. */
export function outputFormat(ctx: Koa.Context): OutputFormat {
  const header = ctx.get('Accept');
  if (header.trim() === '') return 'json';
  const entries = header.split(',').map((part, i) => {
    const [type = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    return { type, weight: Number.isFinite(weight) ? weight : 0, i };
  });
  entries.sort((a, b) => b.weight - a.weight || a.i - b.i);
  for (const e of entries) {
    if (e.weight <= 0) continue;
    if (e.type === 'application/json' || e.type === '*/*' || e.type === 'application/*') return 'json';
    if (e.type === 'application/newlines') return 'newlines';
  }
  throw new SyncError('not-acceptable');
}
