// The admin API under /__admin__/: operators, nodes and (admin-accounts.ts) accounts. It
// answers only a bearer equal to SYNCGATE_ADMIN_TOKEN (compared in constant time); without
// that setting it does not exist.
// Bodies and answers are JSON; node credentials never appear in an answer.
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type Koa from 'koa';
import { AdminError, type NodeAdmin } from '../../federation/node-admin.js';
import { parseJson, readBody } from '../request/body.js';
import { accountAdminRoutes, type AccountsAdmin } from './admin-accounts.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** What this gateway knows of replication and node health (GET /__admin__/replication). */
export interface ReplicationAdmin {
  view(): unknown;
  /** Starts the lag statistics afresh (benchmarks measuring one load level at a time). */
  reset(): void;
}

export function adminRouter(admin: NodeAdmin, token: string, replication?: ReplicationAdmin, accounts?: AccountsAdmin): Router {
  const expected = digest(token);
  const router = new Router({ prefix: '/__admin__' });

  router.use(async (ctx, next) => {
    ctx.state.route = 'admin';
    try {
      const header = ctx.get('Authorization');
      const given = /^Bearer (.+)$/i.exec(header)?.[1] ?? '';
      // Digests of equal length: the comparison time says nothing about the token.
      if (!timingSafeEqual(digest(given), expected)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="syncgate-admin"');
        throw new AdminError(401, 'admin credential required');
      }
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AdminError(404, 'no such admin resource');
    } catch (e) {
      const known = e instanceof AdminError;
      if (!known) ctx.state.error = e;
      ctx.status = known ? e.status : 500;
      ctx.type = 'application/json';
      ctx.body = JSON.stringify({ error: known ? e.message : 'internal error' });
    }
  });

  const json = (ctx: Koa.Context, status: number, body: unknown) => {
    ctx.status = status;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(body);
  };
  const body = async (ctx: Koa.Context): Promise<Record<string, unknown>> => {
    let parsed: unknown;
    try {
      parsed = parseJson(await readBody(ctx, 64 * 1024));
    } catch {
      throw new AdminError(400, 'the body must be a JSON object');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AdminError(400, 'the body must be a JSON object');
    return parsed as Record<string, unknown>;
  };

  router.get('/operators', async (ctx) =>
    json(ctx, 200, (await admin.operators()).map((o) => ({ name: o.name, synchronous: o.synchronous }))),
  );
  router.post('/operators', async (ctx) => {
    const b = await body(ctx);
    if (typeof b.name !== 'string') throw new AdminError(400, 'name is required');
    const op = await admin.addOperator(b.name, b.synchronous === true);
    json(ctx, 201, { name: op.name, synchronous: op.synchronous });
  });
  router.get('/nodes', async (ctx) => json(ctx, 200, await admin.nodes()));
  router.post('/nodes', async (ctx) => {
    const b = await body(ctx);
    if (typeof b.name !== 'string' || typeof b.operator !== 'string' || typeof b.url !== 'string' || typeof b.capacity !== 'number') {
      throw new AdminError(400, 'name, operator, url (strings) and capacity (number) are required');
    }
    const input = { name: b.name, operator: b.operator, url: b.url, capacity: b.capacity } as Parameters<NodeAdmin['addNode']>[0];
    if (b.weight !== undefined) {
      if (typeof b.weight !== 'number') throw new AdminError(400, 'weight must be a number');
      input.weight = b.weight;
    }
    if (b.synchronous !== undefined) {
      if (typeof b.synchronous !== 'boolean') throw new AdminError(400, 'synchronous must be true or false');
      input.synchronous = b.synchronous;
    }
    json(ctx, 201, await admin.addNode(input));
  });
  for (const state of ['drain', 'down', 'up'] as const) {
    router.post(`/nodes/:name/${state}`, async (ctx) => json(ctx, 200, await admin.setState(ctx.params.name ?? '', state)));
  }
  // This gateway's view: replication queue and lag, and what its health monitor sees.
  router.get('/replication', async (ctx) => json(ctx, 200, replication?.view() ?? {}));
  router.post('/replication/reset', async (ctx) => {
    replication?.reset();
    json(ctx, 200, { reset: true });
  });
  router.get('/uids/:uid', async (ctx) => {
    const placed = await admin.placement(Number(ctx.params.uid));
    if (!placed) throw new AdminError(404, 'no such uid in the registry');
    json(ctx, 200, placed);
  });
  router.delete('/nodes/:name', async (ctx) => {
    await admin.removeNode(ctx.params.name ?? '');
    json(ctx, 200, { removed: ctx.params.name });
  });
  if (accounts) accountAdminRoutes(router, accounts, json, body);
  return router;
}
