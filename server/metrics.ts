// Counting every request on the gateway's metrics (common/metrics.ts), and the scrape endpoint
// /__metrics__. The scrape answers only a bearer equal to SYNCGATE_METRICS_TOKEN or the admin
// token (compared in constant time); with neither configured it does not exist.
import Router from '@koa/router';
import type Koa from 'koa';
import type { Metrics } from '../common/metrics.js';
import { bearerOf, tokenDigest, tokenMatches } from './auth/bearer.js';

/** Which API answered: the kind of an error is a code of that API's catalog. */
function apiOf(route: string): string {
  if (route === 'token') return 'token';
  if (route === 'admin' || route === 'metrics') return 'admin';
  if (route.startsWith('accounts')) return 'accounts';
  return 'storage';
}

export function requestMetrics(metrics: Metrics): Koa.Middleware {
  return async (ctx, next) => {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const state = ctx.state as { route?: string; errorKind?: string };
      const route = state.route ?? (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const status = ctx.status;
      metrics.httpRequests.inc({ route, method: ctx.method, status: String(status) });
      metrics.httpDuration.observe({ route, method: ctx.method }, seconds);
      // The charts show the service's traffic, not the operators' own (the dashboard polls).
      if (route !== 'admin' && route !== 'metrics') metrics.traffic.record(status, seconds * 1000);
      const received = ctx.request.length;
      if (received) metrics.httpReceivedBytes.inc({ route }, received);
      const sent = ctx.response.length;
      if (sent) metrics.httpSentBytes.inc({ route }, sent);
      // Only answers a client can still read: one that hung up is counted above, not here.
      if (ctx.response.get('X-Weave-Backoff') && !ctx.res.destroyed) metrics.backoffAnswers.inc();
      const kind = state.errorKind ?? (status >= 400 ? `http-${status}` : undefined);
      if (kind !== undefined && status !== 304) metrics.errors.inc({ api: apiOf(route), kind });
      if (route === 'token') metrics.tokenRequests.inc({ outcome: kind ?? 'ok' });
      if (route === 'accounts /v1/account/login') metrics.signIns.inc({ outcome: kind ?? 'ok' });
    }
  };
}

export function metricsRouter(metrics: Metrics, bearers: string[]): Router {
  const accepted = bearers.map(tokenDigest);
  const router = new Router();
  router.get('/__metrics__', async (ctx) => {
    ctx.state.route = 'metrics';
    const given = bearerOf(ctx);
    // Every bearer is compared, so the time taken says nothing about which one nearly matched.
    let ok = false;
    for (const a of accepted) ok = tokenMatches(given, a) || ok;
    if (!ok) {
      ctx.set('WWW-Authenticate', 'Bearer realm="syncgate-metrics"');
      ctx.state.errorKind = 'unauthorized';
      ctx.status = 401;
      ctx.type = 'text/plain';
      ctx.body = 'metrics credential required\n';
      return;
    }
    ctx.type = metrics.contentType;
    ctx.body = await metrics.scrape();
  });
  return router;
}
