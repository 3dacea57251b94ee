// Feeds each storage request of a user to the per-user usage tally (federation/usage.ts):
// in memory only, written to the usage database by the tracker's flush. Placed outside the
// error catalog so that refused requests and their answers count as well.
import type Koa from 'koa';
import type { RequestUsage } from '../federation/usage.js';

export interface UsageRecorder {
  record(uid: number, r: RequestUsage): void;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function usageCounting(usage: UsageRecorder): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      const { uid, route } = ctx.state as { uid?: string; route?: string };
      // The token endpoint names a uid too, but it is the account's, not a storage request.
      if (uid !== undefined && route !== 'token') {
        usage.record(Number(uid), {
          bytesIn: ctx.request.length ?? 0,
          bytesOut: ctx.response.length ?? 0,
          wrote: !READS.has(ctx.method) && ctx.status < 400,
        });
      }
    }
  };
}
