// The Koa application: logging, X-Weave-Timestamp, the error catalog, then the routes.
import cors from '@koa/cors';
import Koa from 'koa';
import type { Logger } from 'pino';
import { formatSeconds, nowMs, parseSeconds } from '../common/timestamps.js';
import type { Store } from '../storage/store.js';
import type { Config } from './config.js';
import { errorMiddleware } from './errors.js';
import { requestLog, uidHasher } from './logging.js';
import { AdmissionQueue, overload } from './overload.js';
import type { Metrics } from '../common/metrics.js';
import { metricsRouter, requestMetrics } from './metrics.js';
import { usageCounting, type UsageRecorder } from './usage.js';
import type { UsageAdminRoutes } from './routes/admin-usage.js';
import { opsRouter } from './routes/ops.js';
import { syncRouter } from './routes/index.js';
import type { NodeAdmin } from '../federation/node-admin.js';
import { adminRouter, type EvacuationAdmin, type MoveAdmin, type OwnCouchAdmin, type ReplicationAdmin } from './routes/admin.js';
import { jwksRouter } from './routes/jwks.js';
import type { DashboardSources } from './dashboard/data.js';
import { dashboardRouter } from './dashboard/routes.js';
import { tokenRouter, type TokenDeps } from './routes/token.js';
import { LOCAL_EMAIL_DOMAIN, type LocalAccounts } from './tokenserver/local-accounts.js';
import type { AccountStore } from './accounts/account-store.js';
import type { SignInThrottle } from './accounts/throttle.js';
import { accountsRouter, type OwnCouchService } from './routes/accounts.js';
import { oauthRouter } from './routes/oauth.js';
import { profileRouter, wellKnownRouter } from './routes/profile.js';

export interface AppDeps {
  config: Config;
  store: Store;
  masterSecret: string;
  logger: Logger;
  /** This gateway's Prometheus metrics; counted on every request and scraped at /__metrics__. */
  metrics?: Metrics;
  /** Per-user usage: every storage request of a user is counted (federation/usage.ts). */
  usage?: UsageRecorder;
  /** The token endpoint; a storage-only gateway (behind Mozilla's tokenserver) has none. */
  tokens?: Pick<TokenDeps, 'registry' | 'verifier'>;
  localAccounts?: LocalAccounts;
  /** The accounts server Firefox signs in to (needs localAccounts: its issuer signs the access tokens). */
  accounts?: { store: AccountStore; throttle: SignInThrottle; ownCouch?: OwnCouchService };
  /** The admin API, when an admin credential is configured. */
  admin?: { nodes: NodeAdmin; token: string; replication?: ReplicationAdmin; moves?: MoveAdmin; evacuation?: EvacuationAdmin; ownCouch?: OwnCouchAdmin; usage?: UsageAdminRoutes; dashboard?: Omit<DashboardSources, 'traffic'> };
}

/** Every response carries the server time, never behind the X-Last-Modified it sends (spec 4.2). */
const weaveTimestamp: Koa.Middleware = async (ctx, next) => {
  const start = nowMs();
  try {
    await next();
  } finally {
    const lm = parseSeconds(ctx.response.get('X-Last-Modified') || '0') ?? 0;
    ctx.set('X-Weave-Timestamp', formatSeconds(Math.max(start, lm)));
  }
};

/**
 * CORS as syncstorage-rs answers it (spec 2, step 1): a preflight is answered before routing
 * and authentication, on any path; any origin may call, since every request carries its own
 * Hawk or bearer credential and no cookie is ever honoured by the Sync protocol routes. The one
 * cookie, the dashboard's sign-in, is SameSite=Strict with Path=/__admin__ and read only by the
 * dashboard's own routes; CORS never allows credentials, so no other site reads an answer to it.
 */
const corsPolicy = cors({
  origin: (ctx) => ctx.get('Origin'),
  allowMethods: 'DELETE,GET,POST,PUT',
  maxAge: 1_728_000,
  exposeHeaders: [
    'X-Last-Modified',
    'X-Weave-Timestamp',
    'X-Weave-Records',
    'X-Weave-Next-Offset',
    'X-Weave-Quota-Remaining',
    'X-Weave-Backoff',
    'X-Weave-Alert',
    'Retry-After',
    'X-Timestamp',
  ],
});

export function createApp(deps: AppDeps, pages?: Koa.Middleware): Koa {
  const app = new Koa();
  app.proxy = deps.config.trustProxy;
  app.silent = true;
  app.use(requestLog(deps.logger, uidHasher(deps.masterSecret)));
  if (deps.metrics) app.use(requestMetrics(deps.metrics));
  if (deps.usage) app.use(usageCounting(deps.usage));
  app.use(weaveTimestamp);
  app.use(errorMiddleware);
  app.use(corsPolicy);
  const admission = new AdmissionQueue(deps.config);
  if (deps.metrics) {
    const { metrics } = deps;
    metrics.source('syncgate_requests_in_flight', () => admission.inflight);
    metrics.source('syncgate_requests_waiting', () => admission.waiting);
    admission.onShed = () => metrics.shed.inc();
  }
  app.use(overload(deps.config, admission));
  const ops = opsRouter(deps.store);
  const sync = syncRouter(deps);
  app.use(ops.routes());
  const scrapers = [deps.config.metricsToken, deps.config.adminToken].filter((t): t is string => t !== undefined);
  if (deps.metrics && scrapers.length > 0) app.use(metricsRouter(deps.metrics, scrapers).routes());
  if (deps.tokens) app.use(tokenRouter({ config: deps.config, masterSecret: deps.masterSecret, ...deps.tokens }).routes());
  if (deps.localAccounts) app.use(jwksRouter(deps.localAccounts).routes());
  const registry = deps.tokens?.registry;
  // The token server names a signed-in account `<sub>@<LOCAL_EMAIL_DOMAIN>` (trusted-issuers.ts).
  const revokeStorage = async (sub: string, how: 'reset' | 'deleted') => registry?.revokeAccount(`${sub}@${LOCAL_EMAIL_DOMAIN}`, how);
  if (deps.localAccounts && deps.accounts) {
    const issued = { config: deps.config, accounts: deps.accounts.store, issuer: deps.localAccounts };
    app.use(wellKnownRouter(deps.config).routes());
    app.use(accountsRouter({ ...issued, throttle: deps.accounts.throttle, revokeStorage, ...(deps.accounts.ownCouch ? { ownCouch: deps.accounts.ownCouch } : {}) }).routes());
    app.use(oauthRouter(issued).routes());
    app.use(profileRouter(issued).routes());
    if (pages) app.use(pages);
  }
  if (deps.admin) {
    if (deps.admin.dashboard) {
      const traffic = deps.metrics?.traffic;
      app.use(dashboardRouter(deps.admin.token, { ...deps.admin.dashboard, ...(traffic ? { traffic: () => traffic.series() } : {}) }).routes());
    }
    const accounts = deps.accounts && { store: deps.accounts.store, config: deps.config, revokeStorage };
    app.use(adminRouter(deps.admin.nodes, deps.admin.token, deps.admin.replication, accounts, deps.admin.moves, deps.admin.evacuation, deps.admin.ownCouch, deps.admin.usage).routes());
  }
  app.use(sync.routes());
  app.use(sync.allowedMethods());
  return app;
}
