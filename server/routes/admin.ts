// The admin API under /__admin__/: operators, nodes and (admin-accounts.ts) accounts. It
// answers only a bearer equal to SYNCGATE_ADMIN_TOKEN (compared in constant time); without
// that setting it does not exist. (The dashboard below /__admin__/dashboard, server/dashboard/,
// also takes its own sign-in cookie; nothing here reads a cookie.)
// Bodies and answers are JSON; node credentials never appear in an answer.
import Router from '@koa/router';
import type Koa from 'koa';
import { AdminError, type NodeAdmin } from '../../federation/node-admin.js';
import type { EvacuationProgress } from '../../federation/evacuation.js';
import type { MoveStatus } from '../../federation/user-move.js';
import { bearerMatches, tokenDigest } from '../auth/bearer.js';
import { parseJson, readBody } from '../request/body.js';
import { accountAdminRoutes, type AccountsAdmin } from './admin-accounts.js';
import { usageAdminRoutes, type UsageAdminRoutes } from './admin-usage.js';


/** What this gateway knows of replication and node health (GET /__admin__/replication). */
export interface ReplicationAdmin {
  view(): unknown;
  /** Starts the lag statistics afresh (benchmarks measuring one load level at a time). */
  reset(): void;
}

/** Moving users between nodes (federation/user-move.ts). */
export interface MoveAdmin {
  /** A uid, or the current uid of an account's email. */
  resolve(who: string): Promise<number>;
  request(uid: number, to: string): Promise<MoveStatus>;
  status(uid: number): Promise<MoveStatus>;
}

/** A person's own Couch (federation/own-couch.ts). */
export interface OwnCouchAdmin {
  add(who: string, url: string, replica: boolean): Promise<unknown>;
  remove(who: string): Promise<unknown>;
}

/** Emptying nodes by moving their users (federation/evacuation.ts). */
export interface EvacuationAdmin {
  start(node: string, otherOperators?: boolean): Promise<EvacuationProgress>;
  progress(node: string): Promise<EvacuationProgress>;
}

export function adminRouter(admin: NodeAdmin, token: string, replication?: ReplicationAdmin, accounts?: AccountsAdmin, moves?: MoveAdmin, evacuation?: EvacuationAdmin, ownCouch?: OwnCouchAdmin, usage?: UsageAdminRoutes): Router {
  const expected = tokenDigest(token);
  const router = new Router({ prefix: '/__admin__' });

  router.use(async (ctx, next) => {
    ctx.state.route = 'admin';
    try {
      if (!bearerMatches(ctx, expected)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="syncgate-admin"');
        throw new AdminError(401, 'admin credential required');
      }
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AdminError(404, 'no such admin resource');
    } catch (e) {
      const known = e instanceof AdminError;
      if (!known) ctx.state.error = e;
      ctx.state.errorKind = known ? `http-${e.status}` : 'internal';
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
  if (moves) {
    // Starts the move (it runs in the background, on whichever gateway holds it) and answers
    // where it stands; GET answers the same until the move is over (`lastMove`).
    router.post('/users/:who/move', async (ctx) => {
      const b = await body(ctx);
      if (typeof b.to !== 'string') throw new AdminError(400, 'to (the node to move to) is required');
      json(ctx, 202, await moves.request(await moves.resolve(ctx.params.who ?? ''), b.to));
    });
    router.get('/users/:who/move', async (ctx) => json(ctx, 200, await moves.status(await moves.resolve(ctx.params.who ?? ''))));
  }
  if (ownCouch) {
    // The user's storage moves to their own Couch (checked as any node), or back.
    router.post('/users/:who/couch', async (ctx) => {
      const b = await body(ctx);
      if (typeof b.url !== 'string') throw new AdminError(400, 'url (the Couch URL, with its user and password) is required');
      if (b.replica !== undefined && typeof b.replica !== 'boolean') throw new AdminError(400, 'replica must be true or false');
      json(ctx, 202, await ownCouch.add(ctx.params.who ?? '', b.url, b.replica === true));
    });
    router.delete('/users/:who/couch', async (ctx) => json(ctx, 202, await ownCouch.remove(ctx.params.who ?? '')));
  }
  if (evacuation) {
    // `node drain <node> --move`: its users are moved off (in the background, by every
    // gateway); GET answers how far it is.
    router.post('/nodes/:name/evacuate', async (ctx) => json(ctx, 202, await evacuation.start(ctx.params.name ?? '')));
    router.get('/nodes/:name/evacuation', async (ctx) => json(ctx, 200, await evacuation.progress(ctx.params.name ?? '')));
    // `operator evacuate <name>`: every node of the operator, to other operators' nodes.
    const nodesOf = async (operator: string) => {
      if (!(await admin.operators()).some((o) => o.name === operator)) throw new AdminError(404, `no operator ${operator}`);
      return (await admin.nodes()).filter((n) => n.operator === operator).map((n) => n.name);
    };
    router.post('/operators/:name/evacuate', async (ctx) => {
      const names = await nodesOf(ctx.params.name ?? '');
      json(ctx, 202, await Promise.all(names.map((n) => evacuation.start(n, true))));
    });
    router.get('/operators/:name/evacuation', async (ctx) => json(ctx, 200, await Promise.all((await nodesOf(ctx.params.name ?? '')).map((n) => evacuation.progress(n)))));
  }
  if (accounts) accountAdminRoutes(router, accounts, json, body);
  if (usage) usageAdminRoutes(router, usage, json);
  return router;
}
