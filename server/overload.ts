// Overload never becomes a meltdown: above a soft limit of requests in flight every answer
// asks clients to back off (X-Weave-Backoff, which Firefox honours on any response); above the
// hard limit new storage requests are shed at once with 503 + Retry-After, before they queue.
import type Koa from 'koa';
import { SyncError } from '../common/errors.js';

export interface OverloadLimits {
  /** In-flight requests above which responses carry X-Weave-Backoff (0: never). */
  backoffInflight: number;
  /** In-flight requests above which new requests get 503 (0: never). */
  maxInflight: number;
  backoffSeconds: number;
}

export function overload(limits: OverloadLimits): Koa.Middleware {
  let inflight = 0;
  return async (ctx, next) => {
    if (ctx.path.startsWith('/__')) return next(); // health checks must answer even now
    if (limits.maxInflight > 0 && inflight >= limits.maxInflight) {
      ctx.set('X-Weave-Backoff', String(limits.backoffSeconds));
      throw new SyncError('unavailable', 'overloaded', { retryAfter: limits.backoffSeconds });
    }
    inflight++;
    try {
      if (limits.backoffInflight > 0 && inflight > limits.backoffInflight) {
        ctx.set('X-Weave-Backoff', String(limits.backoffSeconds));
      }
      await next();
    } finally {
      inflight--;
    }
  };
}
