// The one typed configuration of the program: from the environment and, when SYNCGATE_CONFIG
// names one, a JSON file (the environment wins). Validated at start; every problem is listed
// in one clear message. Secrets are never part of what describe() prints.
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { scrubUrl } from '../storage/couch/couch-client.js';

export interface Limits {
  maxPostRecords: number;
  maxPostBytes: number;
  maxRecordPayloadBytes: number;
  maxRequestBytes: number;
  maxTotalRecords: number;
  maxTotalBytes: number;
  maxQuotaLimit: number;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** Public origin (and path prefix) clients use; pins host and port for Hawk when set. */
  publicUrl?: string;
  /** Take host and scheme from Forwarded / X-Forwarded-* headers. */
  trustProxy: boolean;
  masterSecret?: string;
  tokenDuration: number;
  /** How long an expired token still reads info/collections (spec 3.1). */
  expiredTokenGraceSec: number;
  limits: Limits;
  /** Per-user quota in bytes; 0 is off. */
  quotaBytes: number;
  batchLifetimeSec: number;
  maxOpenUsers: number;
  /** Threads that run the embedded store's databases; 0: the gateway's own thread. */
  storageThreads: number;
  purgeIntervalSec: number;
  /** Requests running at once; more wait in the admission queue (server/overload.ts). 0: no limit. */
  maxConcurrent: number;
  /** Longest wait in the admission queue while it drains; a tenth of it while it stands. */
  queueTimeoutMs: number;
  /** In-flight requests above which answers carry X-Weave-Backoff; 0 is never. */
  backoffInflight: number;
  /** In-flight requests above which new requests are shed with 503; 0 is never. */
  maxInflight: number;
  backoffSeconds: number;
  logLevel: string;
  /** Couch node for every user database; unset means the embedded store. Holds credentials. */
  couchUrl?: string;
  couchTimeoutMs: number;
  /** How long a gateway's unfinished write blocks a user before another gateway finishes it. */
  writeLeaseMs: number;
  /** How long reads may reuse a user's committed state on a node with `_db_updates` (0: off). */
  stateCacheMs: number;
  tokenServer: TokenServerConfig;
  /** Bearer credential of the admin API (/__admin__); unset: no admin API. */
  adminToken?: string;
  /** Bearer credential of /__metrics__ besides the admin token; with neither, no metrics endpoint. */
  metricsToken?: string;
  /** Seconds between writes of per-user usage (each user touched since the last one). */
  usageFlushSec: number;
  /** Key for node credentials at rest; unset: generated once into the data folder. */
  nodeSecret?: string;
  federation: FederationConfig;
}

/** Replication between nodes, health checks and failover (federation/). */
export interface FederationConfig {
  /** Delay between a write and the replication that carries it to the other copy. */
  replicationDelayMs: number;
  /** Replications one gateway runs at once. */
  replicationConcurrency: number;
  healthIntervalMs: number;
  /** Check interval while a node is suspected (a failed check or request). */
  healthSuspectIntervalMs: number;
  /** Failed checks in a row before the node's users are served from their replicas. */
  healthFailures: number;
  healthTimeoutMs: number;
  /** How long a gateway merging a returned node holds it before another may take over. */
  failbackLeaseMs: number;
  /** How long a gateway moving a user holds the move before another may take over. */
  moveLeaseMs: number;
  /** User moves one gateway runs at once. */
  moveConcurrency: number;
  /** How long the copies a moved user left stay (marked retired) before they are deleted. */
  moveGraceMs: number;
  /**
   * People may move their storage to their own Couch from the account page. The gateway then
   * connects to a URL a person gives: off where it must reach nothing but the operators' nodes.
   */
  ownCouch: boolean;
}

/** The token endpoint (spec 9) and the identity providers whose access tokens it accepts. */
export interface TokenServerConfig {
  /** Trust Firefox Accounts' access tokens (its JWKS, and /v1/verify for opaque tokens). */
  fxa: boolean;
  fxaOAuthUrl: string;
  fxaJwksUrl: string;
  /** Expected `iss` of FxA tokens; unset accepts any, as Mozilla's tokenserver does. */
  fxaIssuer?: string;
  fxaAudience?: string;
  fxaEmailDomain: string;
  /** The scope a token must hold. */
  scope: string;
  clockSkewSec: number;
  /** syncgate's own issuer for local accounts (`syncgate account create`). */
  localAccounts: boolean;
  /** Lifetime of the bearer tokens `syncgate account` prints. */
  localTokenTtlSec: number;
  /** Anyone may create an account on the sign-in page; off: only `syncgate account create` makes them. */
  signup: boolean;
  allowNewUsers: boolean;
  /** How long the storage of a uid replaced by a key change is kept before deletion. */
  purgeReplacedAfterSec: number;
  nodeType: string;
}

const MB = 1024 * 1024;

export const DEFAULT_LIMITS: Limits = {
  maxPostRecords: 100,
  maxPostBytes: 2.5 * MB,
  maxRecordPayloadBytes: 2.5 * MB,
  maxRequestBytes: 2.5 * MB + 4096,
  maxTotalRecords: 10_000,
  maxTotalBytes: 100 * 2.5 * MB,
  maxQuotaLimit: 2 * MB * 1000, // RS: 2 × "GIGABYTE", where GIGABYTE = MEGABYTE × 1000
};

export class ConfigError extends Error {}

type Source = Record<string, string | undefined>;


export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  let file: Record<string, unknown> = {};
  if (env.SYNCGATE_CONFIG) {
    try {
      file = JSON.parse(readFileSync(env.SYNCGATE_CONFIG, 'utf8')) as Record<string, unknown>;
      if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new Error('not a JSON object');
    } catch (e) {
      throw new ConfigError(`SYNCGATE_CONFIG=${env.SYNCGATE_CONFIG}: ${(e as Error).message}`);
    }
  }
  const pick = (envName: string, fileName: string): string | undefined => {
    const v = (env as Source)[envName];
    if (v !== undefined && v !== '') return v;
    const f = file[fileName];
    return f === undefined || f === null ? undefined : String(f);
  };
  const str = (envName: string, fileName: string, dflt: string): string => pick(envName, fileName) ?? dflt;
  const int = (envName: string, fileName: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
    const v = pick(envName, fileName);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || n < min || n > max) {
      problems.push(`${envName} (or "${fileName}" in the config file) must be an integer from ${min} to ${max}, got "${v}"`);
      return dflt;
    }
    return n;
  };
  const bool = (envName: string, fileName: string, dflt = false): boolean => {
    const v = pick(envName, fileName)?.toLowerCase();
    if (v === undefined) return dflt;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    problems.push(`${envName} must be true or false, got "${v}"`);
    return dflt;
  };

  const limits: Limits = {
    maxPostRecords: int('SYNCGATE_MAX_POST_RECORDS', 'max_post_records', DEFAULT_LIMITS.maxPostRecords, 1),
    maxPostBytes: int('SYNCGATE_MAX_POST_BYTES', 'max_post_bytes', DEFAULT_LIMITS.maxPostBytes, 1),
    maxRecordPayloadBytes: int('SYNCGATE_MAX_RECORD_PAYLOAD_BYTES', 'max_record_payload_bytes', DEFAULT_LIMITS.maxRecordPayloadBytes, 1),
    maxRequestBytes: int('SYNCGATE_MAX_REQUEST_BYTES', 'max_request_bytes', DEFAULT_LIMITS.maxRequestBytes, 1),
    maxTotalRecords: int('SYNCGATE_MAX_TOTAL_RECORDS', 'max_total_records', DEFAULT_LIMITS.maxTotalRecords, 1),
    maxTotalBytes: int('SYNCGATE_MAX_TOTAL_BYTES', 'max_total_bytes', DEFAULT_LIMITS.maxTotalBytes, 1),
    maxQuotaLimit: DEFAULT_LIMITS.maxQuotaLimit,
  };
  const quotaBytes = int('SYNCGATE_QUOTA_BYTES', 'quota_bytes', 0, 0);
  if (quotaBytes > 0) limits.maxQuotaLimit = quotaBytes;

  const publicUrl = pick('SYNCGATE_PUBLIC_URL', 'public_url');
  if (publicUrl !== undefined) {
    try {
      const u = new URL(publicUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      problems.push(`SYNCGATE_PUBLIC_URL must be an http(s) URL, got "${publicUrl}"`);
    }
  }
  const masterSecret = pick('SYNC_MASTER_SECRET', 'master_secret');
  if (masterSecret !== undefined && masterSecret.length < 16) {
    problems.push('SYNC_MASTER_SECRET must be at least 16 characters');
  }
  const logLevel = str('LOG_LEVEL', 'log_level', 'info');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "${logLevel}"`);
  }

  const config: Omit<Config, 'tokenServer'> & { tokenServer?: TokenServerConfig } = {
    host: str('HOST', 'host', '127.0.0.1'),
    port: int('PORT', 'port', 8000, 0, 65535),
    dataDir: resolve(str('SYNCGATE_DATA', 'data_dir', './data')),
    trustProxy: bool('SYNCGATE_TRUST_PROXY', 'trust_proxy'),
    tokenDuration: int('SYNCGATE_TOKEN_DURATION', 'token_duration', 3600, 1),
    expiredTokenGraceSec: int('SYNCGATE_EXPIRED_TOKEN_GRACE', 'expired_token_grace', 7200, 0),
    limits,
    quotaBytes,
    batchLifetimeSec: int('SYNCGATE_BATCH_LIFETIME', 'batch_lifetime', 7200, 1),
    maxOpenUsers: int('SYNCGATE_MAX_OPEN_USERS', 'max_open_users', 200, 1),
    // The embedded store's PouchDB work beside the gateway's thread: Mozilla's load-test mix
    // measured 118 sessions/s with none, 122 with 1, 149 with 2 and 4 (200 users, 2 cores).
    storageThreads: int('SYNCGATE_STORAGE_THREADS', 'storage_threads', availableParallelism() > 1 ? 2 : 0, 0),
    purgeIntervalSec: int('SYNCGATE_PURGE_INTERVAL', 'purge_interval', 30, 1),
    // The embedded store is bound by this process's CPU: beyond 16 at once requests only share
    // it and all get slower. A Couch gateway mostly waits on its nodes, so it runs more.
    maxConcurrent: int('SYNCGATE_MAX_CONCURRENT', 'max_concurrent', pick('COUCH_URL', 'couch_url') === undefined ? 16 : 64, 0),
    queueTimeoutMs: int('SYNCGATE_QUEUE_TIMEOUT_MS', 'queue_timeout_ms', 500, 1),
    backoffInflight: int('SYNCGATE_BACKOFF_INFLIGHT', 'backoff_inflight', 256, 0),
    maxInflight: int('SYNCGATE_MAX_INFLIGHT', 'max_inflight', 1024, 0),
    backoffSeconds: int('SYNCGATE_BACKOFF_SECONDS', 'backoff_seconds', 60, 1),
    logLevel,
    couchTimeoutMs: int('SYNCGATE_COUCH_TIMEOUT_MS', 'couch_timeout_ms', 15_000, 100),
    writeLeaseMs: int('SYNCGATE_WRITE_LEASE_MS', 'write_lease_ms', 10_000, 100),
    stateCacheMs: int('SYNCGATE_STATE_CACHE_MS', 'state_cache_ms', 900_000, 0),
    usageFlushSec: int('SYNCGATE_USAGE_FLUSH_SEC', 'usage_flush_sec', 60, 1, 3600),
    federation: {
      replicationDelayMs: int('SYNCGATE_REPLICATION_DELAY_MS', 'replication_delay_ms', 1000, 0),
      replicationConcurrency: int('SYNCGATE_REPLICATION_CONCURRENCY', 'replication_concurrency', 8, 1, 256),
      healthIntervalMs: int('SYNCGATE_HEALTH_INTERVAL_MS', 'health_interval_ms', 2000, 100),
      healthSuspectIntervalMs: int('SYNCGATE_HEALTH_SUSPECT_INTERVAL_MS', 'health_suspect_interval_ms', 500, 50),
      healthFailures: int('SYNCGATE_HEALTH_FAILURES', 'health_failures', 3, 1, 100),
      healthTimeoutMs: int('SYNCGATE_HEALTH_TIMEOUT_MS', 'health_timeout_ms', 2000, 50),
      failbackLeaseMs: int('SYNCGATE_FAILBACK_LEASE_MS', 'failback_lease_ms', 30_000, 1000),
      moveLeaseMs: int('SYNCGATE_MOVE_LEASE_MS', 'move_lease_ms', 30_000, 1000),
      moveConcurrency: int('SYNCGATE_MOVE_CONCURRENCY', 'move_concurrency', 4, 1, 64),
      moveGraceMs: int('SYNCGATE_MOVE_GRACE_SEC', 'move_grace_sec', 3600, 0) * 1000,
      ownCouch: bool('SYNCGATE_OWN_COUCH', 'own_couch', true),
    },
  };
  const fxaOAuthUrl = str('SYNCGATE_FXA_OAUTH_URL', 'fxa_oauth_url', 'https://oauth.accounts.firefox.com').replace(/\/+$/, '');
  const tokenServer: TokenServerConfig = {
    fxa: bool('SYNCGATE_FXA', 'fxa', true),
    fxaOAuthUrl,
    fxaJwksUrl: str('SYNCGATE_FXA_JWKS_URL', 'fxa_jwks_url', `${fxaOAuthUrl}/v1/jwks`),
    fxaEmailDomain: str('SYNCGATE_FXA_EMAIL_DOMAIN', 'fxa_email_domain', 'api.accounts.firefox.com'),
    scope: str('SYNCGATE_OAUTH_SCOPE', 'oauth_scope', 'https://identity.mozilla.com/apps/oldsync'),
    clockSkewSec: int('SYNCGATE_JWT_CLOCK_SKEW', 'jwt_clock_skew', 60, 0, 600),
    localAccounts: bool('SYNCGATE_LOCAL_ACCOUNTS', 'local_accounts', true),
    localTokenTtlSec: int('SYNCGATE_LOCAL_TOKEN_TTL', 'local_token_ttl', 30 * 86400, 60),
    signup: bool('SYNCGATE_SIGNUP', 'signup', true),
    allowNewUsers: bool('SYNCGATE_ALLOW_NEW_USERS', 'allow_new_users', true),
    purgeReplacedAfterSec: int('SYNCGATE_PURGE_REPLACED_AFTER', 'purge_replaced_after', 86400, 0),
    nodeType: str('SYNCGATE_NODE_TYPE', 'node_type', 'couchdb'),
  };
  for (const [name, url] of [['SYNCGATE_FXA_OAUTH_URL', tokenServer.fxaOAuthUrl], ['SYNCGATE_FXA_JWKS_URL', tokenServer.fxaJwksUrl]] as const) {
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      problems.push(`${name} must be an http(s) URL, got "${url}"`);
    }
  }
  const fxaIssuer = pick('SYNCGATE_FXA_ISSUER', 'fxa_issuer');
  if (fxaIssuer !== undefined) tokenServer.fxaIssuer = fxaIssuer;
  const fxaAudience = pick('SYNCGATE_FXA_AUDIENCE', 'fxa_audience');
  if (fxaAudience !== undefined) tokenServer.fxaAudience = fxaAudience;
  config.tokenServer = tokenServer;
  const adminToken = pick('SYNCGATE_ADMIN_TOKEN', 'admin_token');
  if (adminToken !== undefined) {
    if (adminToken.length < 16) problems.push('SYNCGATE_ADMIN_TOKEN must be at least 16 characters');
    else config.adminToken = adminToken;
  }
  const metricsToken = pick('SYNCGATE_METRICS_TOKEN', 'metrics_token');
  if (metricsToken !== undefined) {
    if (metricsToken.length < 16) problems.push('SYNCGATE_METRICS_TOKEN must be at least 16 characters');
    else config.metricsToken = metricsToken;
  }
  const nodeSecret = pick('SYNCGATE_NODE_SECRET', 'node_secret');
  if (nodeSecret !== undefined) {
    if (nodeSecret.length < 16) problems.push('SYNCGATE_NODE_SECRET must be at least 16 characters');
    else config.nodeSecret = nodeSecret;
  }
  if (publicUrl !== undefined) config.publicUrl = publicUrl.replace(/\/+$/, '');
  if (masterSecret !== undefined) config.masterSecret = masterSecret;
  const couchUrl = pick('COUCH_URL', 'couch_url');
  if (couchUrl !== undefined) {
    try {
      const u = new URL(couchUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      config.couchUrl = couchUrl.replace(/\/+$/, '');
    } catch {
      problems.push('COUCH_URL must be an http(s) URL such as http://user:pass@127.0.0.1:5984');
    }
  }
  if (limits.maxRequestBytes < limits.maxRecordPayloadBytes) {
    problems.push('SYNCGATE_MAX_REQUEST_BYTES must be at least SYNCGATE_MAX_RECORD_PAYLOAD_BYTES');
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return config as Config;
}

/** The configuration as it may be logged: secrets replaced. */
export function describe(config: Config): Record<string, unknown> {
  const described: Record<string, unknown> = {
    ...config,
    masterSecret: config.masterSecret ? '[set]' : '[data folder]',
    adminToken: config.adminToken ? '[set]' : '[none: no admin API]',
    metricsToken: config.metricsToken ? '[set]' : config.adminToken ? '[admin token]' : '[none: no /__metrics__]',
    nodeSecret: config.nodeSecret ? '[set]' : '[data folder]',
  };
  if (config.couchUrl) described.couchUrl = scrubUrl(config.couchUrl);
  return described;
}

