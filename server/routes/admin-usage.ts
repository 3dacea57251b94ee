// Per-user data metrics under the admin API: the largest users, and one user's placement,
// size per collection and traffic (federation/usage.ts).
import type Router from '@koa/router';
import type Koa from 'koa';
import { AdminError } from '../../federation/node-admin.js';
import { TOP_LIMIT, type UsageAdmin, type UsageOrder } from '../../federation/usage.js';

type Json = (ctx: Koa.Context, status: number, body: unknown) => void;

export interface UsageAdminRoutes {
  usage: UsageAdmin;
  /** A uid, or the current uid of an account's email (as the move routes resolve it). */
  resolve(who: string): Promise<number>;
}

const ORDERS: readonly string[] = ['bytes', 'requests', 'records'] satisfies UsageOrder[];

export function usageAdminRoutes(router: Router, admin: UsageAdminRoutes, json: Json): void {
  // Before /users/:who, which would take "top" for a user.
  router.get('/users/top', async (ctx) => {
    const q = ctx.query;
    const by = typeof q.by === 'string' ? q.by : 'bytes';
    if (!ORDERS.includes(by)) throw new AdminError(400, 'by must be bytes, requests or records');
    const opts: { node?: string; limit?: number } = {};
    if (q.limit !== undefined) {
      if (typeof q.limit !== 'string' || !/^\d+$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > TOP_LIMIT) {
        throw new AdminError(400, `limit must be an integer from 1 to ${TOP_LIMIT}`);
      }
      opts.limit = Number(q.limit);
    }
    if (q.node !== undefined) {
      if (typeof q.node !== 'string' || q.node === '') throw new AdminError(400, 'node must be a node name');
      opts.node = q.node;
    }
    json(ctx, 200, await admin.usage.top(by as UsageOrder, opts));
  });
  router.get('/users/:who', async (ctx) => json(ctx, 200, await admin.usage.show(await admin.resolve(ctx.params.who ?? ''))));
}
