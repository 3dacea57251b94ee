// Structured logs: one line per request, the user named only by a keyed hash (uids are small
// integers; an unkeyed hash would be reversed by counting).
import { createHmac, hkdfSync } from 'node:crypto';
import type Koa from 'koa';
import { pino, type Logger } from 'pino';
import { COLLECTION } from './request/bso.js';

export function createLogger(level: string): Logger {
  // Asynchronous and buffered: a request never waits for its log line, and lines reach stdout
  // in writes of 4 KB or every 250 ms rather than one system call each (the benchmark showed a
  // fifth of the gateway's CPU per request in those writes). A SIGKILL loses the last 250 ms.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => {
    try {
      destination.flush();
    } catch {
      // nothing buffered yet, or stdout closed: the next tick tries again
    }
  }, 250).unref();
  return pino({ level, base: { app: 'syncgate' }, redact: ['req.headers.authorization'] }, destination);
}

const HASHED_UIDS = 10_000;

export function uidHasher(masterSecret: string): (uid: string) => string {
  const key = Buffer.from(hkdfSync('sha256', masterSecret, Buffer.alloc(0), 'syncgate/log-uid', 32));
  // The same few uids log a line each on every request: their HMAC is computed once.
  const hashed = new Map<string, string>();
  return (uid) => {
    let h = hashed.get(uid);
    if (h === undefined) {
      h = createHmac('sha256', key).update(uid).digest('hex').slice(0, 16);
      // The oldest goes, not all: a gateway with more users than this keeps most of its hits.
      if (hashed.size >= HASHED_UIDS) hashed.delete(hashed.keys().next().value as string);
      hashed.set(uid, h);
    }
    return h;
  };
}

/** What a storage request's log line says of its shape, enough to replay its like (`syncgate load --replay`). */
export interface RequestShape {
  collection?: string;
  /** Records returned by a listing, or sent in a POST. */
  records?: number;
  /** Request body bytes. */
  bytes?: number;
  /** A POST of a batch: open, append, commit or open-commit. */
  batch?: string;
  /** A listing with full=1. */
  full?: true;
  /** The precondition sent: X-If-Modified-Since (ims) or X-If-Unmodified-Since (ius). */
  cond?: 'ims' | 'ius';
}

const STORAGE_ROUTES = new Set(['collection', 'item', 'storage', 'info/collections', 'info/quota', 'info/collection_usage', 'info/collection_counts', 'info/configuration']);

function requestShape(ctx: Koa.Context, route: string): RequestShape {
  const shape: RequestShape = {};
  // Only a valid name: anything else stays out of the log (it failed with 400 anyway).
  const collection = (ctx.params as Record<string, string> | undefined)?.collection;
  if (collection !== undefined && COLLECTION.test(collection)) shape.collection = collection;
  const state = ctx.state as { records?: number; batch?: string };
  const listed = ctx.response.get('X-Weave-Records');
  if (state.records !== undefined) shape.records = state.records;
  else if (route === 'collection' && listed) shape.records = Number(listed);
  if (ctx.request.length) shape.bytes = ctx.request.length;
  if (state.batch !== undefined) shape.batch = state.batch;
  if (route === 'collection' && ctx.method === 'GET' && /(?:^|&)full=/.test(ctx.querystring)) shape.full = true;
  if (ctx.get('X-If-Modified-Since')) shape.cond = 'ims';
  else if (ctx.get('X-If-Unmodified-Since')) shape.cond = 'ius';
  return shape;
}

export function requestLog(logger: Logger, hashUid: (uid: string) => string): Koa.Middleware {
  return async (ctx, next) => {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const uid = (ctx.state as { uid?: string }).uid;
      const route = (ctx.state as { route?: string }).route ?? (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const line: Record<string, unknown> = {
        method: ctx.method,
        // Route names and templates only: a raw path would carry the uid.
        route,
        status: ctx.status,
        ms: Math.round(ms * 10) / 10,
      };
      if (uid !== undefined) line.user = hashUid(uid);
      if (STORAGE_ROUTES.has(route)) Object.assign(line, requestShape(ctx, route));
      const reason = (ctx.state as { reason?: string }).reason;
      if (reason !== undefined) line.reason = reason;
      const error = (ctx.state as { error?: unknown }).error;
      if (error !== undefined) logger.error({ ...line, err: error }, 'request failed');
      else logger.info(line, 'request');
    }
  };
}
