// Starts a gateway: configuration, secret, store, registry, token endpoint, HTTP listener and
// background work (expiry purge, deletion of replaced uids). Starting twice on the same data
// folder changes nothing (the secret, issuer key and databases are reused).
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import { Failback } from '../federation/failback.js';
import { Evacuator } from '../federation/evacuation.js';
import { OwnCouches } from '../federation/own-couch.js';
import { Mover } from '../federation/user-move.js';
import { NodeAdmin } from '../federation/node-admin.js';
import { NodeHealth } from '../federation/node-health.js';
import { Replicator } from '../federation/replicator.js';
import { NodeSecrets } from '../federation/node-secrets.js';
import { NodeStores } from '../federation/node-stores.js';
import { openRegistryDb } from '../federation/registry-db.js';
import { RoutedStore } from '../federation/routed-store.js';
import { DEFAULT_NODE, Registry } from '../federation/registry.js';
import { NODE_STATES, nodeState } from '../federation/node-state.js';
import { UsageTracker } from '../federation/usage.js';
import { openUsageDb } from '../federation/usage-db.js';
import { CouchBackend, type CouchInfo } from '../storage/couch/couch-backend.js';
import { createBackend, createCouchClient, createStore } from '../storage/create-store.js';
import type { SyncStore } from '../storage/engine/sync-store.js';
import { createApp } from './app.js';
import { Metrics } from '../common/metrics.js';
import { dataFolderSecret, loadMasterSecret } from './auth/master-secret.js';
import { describe, type Config } from './config.js';
import { createLogger } from './logging.js';
import { AccountStore } from './accounts/account-store.js';
import { RegistryIssuerKey } from './tokenserver/shared-issuer-key.js';
import { SignInThrottle } from './accounts/throttle.js';
import { pagesMiddleware } from './routes/pages.js';
import { LOCAL_EMAIL_DOMAIN, LocalAccounts } from './tokenserver/local-accounts.js';
import { createVerifier } from './tokenserver/trusted-issuers.js';

export interface RunningServer {
  url: string;
  port: number;
  store: SyncStore;
  registry: Registry;
  logger: Logger;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Runs `work` every `ms`, never two at once, logging failures. */
function every(ms: number, logger: Logger, what: string, work: () => Promise<unknown>): NodeJS.Timeout {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    work()
      .catch((err) => logger.warn({ err }, `${what} failed`))
      .finally(() => (busy = false));
  }, ms);
  timer.unref();
  return timer;
}

/** The gauges read from the registry and this gateway's monitor at each scrape. */
function watchNodes(metrics: Metrics, registry: Registry, nodeStores: NodeStores): void {
  metrics.source('syncgate_node_state', () =>
    registry.allNodes().flatMap((n) => {
      const state = nodeState(n);
      return NODE_STATES.map((s) => ({ labels: { node: n.name, state: s }, value: s === state ? 1 : 0 }));
    }),
  );
  metrics.source('syncgate_node_user_databases', () => registry.allNodes().map((n) => ({ labels: { node: n.name }, value: n.assigned ?? 0 })));
  metrics.source('syncgate_node_capacity', () => registry.allNodes().map((n) => ({ labels: { node: n.name }, value: n.capacity })));
  metrics.source('syncgate_open_user_databases', async () => (await nodeStores.all()).reduce((sum, s) => sum + s.openUsers, 0));
}

export async function startServer(config: Config, logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const masterSecret = loadMasterSecret(config);
  const metrics = new Metrics();
  const couch = createCouchClient(config, { metrics, node: DEFAULT_NODE });
  const backend = createBackend(config, couch);
  const store = createStore(config, backend, DEFAULT_NODE);
  const info = (await store.start()) as Partial<CouchInfo> | undefined;
  if (info?.vendor === 'couchdb' && !info.updates) {
    logger.warn('COUCH_URL offers no _db_updates (create its _global_changes database): every read asks Couch, none reuses a cached state');
  }
  const registryDb = openRegistryDb({
    dataDir: config.dataDir,
    ...(couch && backend instanceof CouchBackend ? { couch: { client: couch, backend } } : {}),
  });
  const registry = new Registry(registryDb.db, {
    allowNewUsers: config.tokenServer.allowNewUsers,
    purgeAfterMs: config.tokenServer.purgeReplacedAfterSec * 1000,
    // Embedded too: admin changes of this process are followed at once, the feed is for others.
    followChanges: true,
    followIntervalMs: registryDb.shared ? 1000 : 5000,
    onFollowState: (err) =>
      err === undefined
        ? logger.info('registry answers again: its changes are read from where they stopped')
        : logger.warn({ err }, 'registry unreachable: users already placed are served from cached placements; new users and key changes get 503'),
  });
  await registry.start();
  const secrets = new NodeSecrets(config.nodeSecret ?? dataFolderSecret(config, 'node-secret'));
  const nodeStores = new NodeStores(registry, store, secrets, config, metrics);
  const fed = config.federation;
  const health = new NodeHealth(
    registry,
    (n) => nodeStores.endpoint(n),
    {
      intervalMs: fed.healthIntervalMs,
      suspectIntervalMs: fed.healthSuspectIntervalMs,
      failuresToTrip: fed.healthFailures,
      successesToRecover: fed.healthFailures,
      checkTimeoutMs: fed.healthTimeoutMs,
      metrics,
    },
    logger,
  );
  nodeStores.isTripped = (n) => health.isTripped(n);
  const replicator = new Replicator({
    delayMs: fed.replicationDelayMs,
    concurrency: fed.replicationConcurrency,
    endpoint: (n) => nodeStores.endpoint(n),
    reachable: (n) => nodeStores.reachable(n),
    mergedByFailback: (n) => nodeStores.mergedByFailback(n),
    onError: (err, _uid, from, to) => logger.warn({ err, from, to }, 'replication failed; retried later'),
    metrics,
    onSkipped: (skipped, from, to) => logger.warn({ from, to, skipped: skipped.length, first: skipped[0] }, 'replication: revisions the source could not give'),
  });
  const failback = new Failback(registry, nodeStores, { owner: randomBytes(8).toString('hex'), leaseMs: config.federation.failbackLeaseMs, propagationMs: registryDb.shared ? 2500 : 0, metrics }, logger);
  const mover = new Mover(
    registry,
    nodeStores,
    { owner: randomBytes(8).toString('hex'), leaseMs: fed.moveLeaseMs, propagationMs: registryDb.shared ? 2500 : 0, graceMs: fed.moveGraceMs, concurrency: fed.moveConcurrency, metrics },
    logger,
  );
  watchNodes(metrics, registry, nodeStores);
  const localAccounts = config.tokenServer.localAccounts ? new LocalAccounts(config.dataDir, new RegistryIssuerKey(registryDb.db, masterSecret)) : undefined;
  const accountStore = localAccounts ? new AccountStore(registryDb.db) : undefined;
  const evacuator = new Evacuator(registry, nodeStores, mover, { concurrency: fed.moveConcurrency }, logger);
  const nodeAdmin = new NodeAdmin(registryDb.db, secrets, () => registry.follow());
  const ownCouches = new OwnCouches(registry, nodeAdmin, mover, evacuator);
  // A person's email names a local account or one Firefox signs in to; the registry knows each
  // by its `sub` (trusted-issuers.ts).
  const resolveUser = async (who: string) => {
    const subs = [(await localAccounts?.get(who))?.sub, (await accountStore?.byEmail(who))?.uid];
    return mover.resolve(who, [who, ...subs.filter((s): s is string => s !== undefined).map((s) => `${s}@${LOCAL_EMAIL_DOMAIN}`)]);
  };
  // The account page names the account by its `sub`, as the registry does.
  const ownCouchOfAccount = {
    add: async (sub: string, url: string, replica: boolean) => ownCouches.add(await mover.resolve(`${sub}@${LOCAL_EMAIL_DOMAIN}`), url, replica),
    remove: async (sub: string) => ownCouches.remove(await mover.resolve(`${sub}@${LOCAL_EMAIL_DOMAIN}`)),
  };
  // Per-user usage: counted per request in memory, written per flush; its own store view, so
  // counting a user's records schedules no replication.
  const usageDb = openUsageDb({ dataDir: config.dataDir, ...(couch && backend instanceof CouchBackend ? { couch: { client: couch, backend } } : {}) });
  const usage = new UsageTracker(usageDb.db, registry, new RoutedStore(nodeStores), { logger, metrics });
  const admin = config.adminToken
    ? {
        ownCouch: {
          add: async (who: string, url: string, replica: boolean) => ownCouches.add(await resolveUser(who), url, replica),
          remove: async (who: string) => ownCouches.remove(await resolveUser(who)),
        },
        evacuation: evacuator,
        nodes: nodeAdmin,
        token: config.adminToken,
        replication: { view: () => ({ replication: replicator.stats(), health: health.view() }), reset: () => replicator.resetStats() },
        dashboard: {
          nodes: () => registry.allNodes(),
          operators: () => nodeAdmin.operators(),
          events: (limit: number) => registry.recentEvents(limit),
          replication: () => replicator.stats(),
          health: () => health.view(),
          topUsers: async (limit: number) => usage.top('bytes', { limit }),
        },
        moves: {
          resolve: resolveUser,
          request: (uid: number, to: string) => mover.request(uid, to),
          status: (uid: number) => mover.status(uid),
        },
        usage: { usage, resolve: resolveUser },
      }
    : undefined;
  const verifier = await createVerifier(config, localAccounts, accountStore);

  const app = createApp({ config, store: new RoutedStore(nodeStores, { replicator, nodeFailed: (n) => health.reportFailure(n) }), masterSecret, logger, metrics, usage, tokens: { registry, verifier }, localAccounts, admin, ...(accountStore ? { accounts: { store: accountStore, throttle: new SignInThrottle(), ...(fed.ownCouch ? { ownCouch: ownCouchOfAccount } : {}) } } : {}) }, accountStore ? await pagesMiddleware() : undefined);
  const server: Server = createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  health.start();
  replicator.start();
  const timers = [
    every(1000, logger, 'failback', () => failback.tick()),
    every(1000, logger, 'user moves', () => mover.tick()),
    every(2000, logger, 'node evacuation', () => evacuator.tick()),
    every(config.purgeIntervalSec * 1000, logger, 'purge', async () => {
      for (const s of await nodeStores.all()) await s.purge();
    }),
    every(config.usageFlushSec * 1000, logger, 'usage flush', () => usage.flush()),
    every(60_000, logger, 'sweep of unused sign-in tokens', async () => accountStore?.sweep()),
    every(config.purgeIntervalSec * 1000, logger, 'purge of replaced uids', () =>
      registry.purgeReplaced(async (uid, node) => {
        await nodeStores.destroy(String(uid), node);
        await usage.forget(uid);
        // The replica goes too; a node that is out keeps it until the next purge of the uid.
        const replica = (await registry.placement(uid))?.replica;
        if (replica !== undefined && replica !== node) await nodeStores.destroy(String(uid), replica).catch(() => undefined);
        logger.info({ uidsPurged: 1 }, 'storage of a replaced uid deleted');
      }, 20, async (uid, node) => {
        await nodeStores.destroy(String(uid), node);
        logger.info({ uid, node }, 'copy left by a move deleted');
      }),
    ),
  ];

  logger.info({ url, config: describe(config) }, 'syncgate listening');
  logger.flush(); // supervisors and tests wait for this line
  return {
    url,
    port,
    store,
    registry,
    logger,
    metrics,
    async close() {
      for (const t of timers) clearInterval(t);
      health.stop();
      replicator.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await registry.stop();
      await registryDb.close();
      await usageDb.close();
      await nodeStores.close();
      await store.close();
      logger.flush();
    },
  };
}
