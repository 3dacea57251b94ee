// Small helpers every route uses to answer in the protocol's format.
import type Koa from 'koa';
import { toJson } from '../common/json.js';
import { formatSeconds } from '../common/timestamps.js';

export function sendJson(ctx: Koa.Context, value: unknown, status = 200): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = toJson(value);
}

export function setLastModified(ctx: Koa.Context, ms: number): void {
  ctx.state.lastModified = ms;
  ctx.set('X-Last-Modified', formatSeconds(ms));
}

export function setRecords(ctx: Koa.Context, n: number): void {
  ctx.set('X-Weave-Records', String(n));
}
