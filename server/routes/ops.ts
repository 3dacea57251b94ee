// Operational endpoints outside the protocol: load balancer and monitoring (spec 3.13).
import Router from '@koa/router';
import { createRequire } from 'node:module';
import type { Store } from '../../storage/store.js';
import { sendJson } from '../respond.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { name: string; version: string };

export function opsRouter(store: Store): Router {
  const router = new Router();
  router.get('/__lbheartbeat__', (ctx) => sendJson(ctx, {}));
  router.get('/__version__', (ctx) =>
    sendJson(ctx, { source: 'syncgate', name: pkg.name, version: pkg.version, commit: process.env.SYNCGATE_COMMIT ?? 'unknown' }),
  );
  router.get('/__heartbeat__', async (ctx) => {
    try {
      await store.check();
      sendJson(ctx, { status: 'ok', database: 'ok', version: pkg.version });
    } catch {
      sendJson(ctx, { status: 'error', database: 'error', version: pkg.version }, 503);
    }
  });
  return router;
}
