// Gateway processes on the test Couch, some reaching it through a CouchProxy that counts what
// they ask and can cut or delay their update feed: the mocha hooks that start and stop them
// (called inside a describe), and Sync clients with tokens for them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToken } from '../../server/auth/tokenlib.js';
import { SyncClient } from './client.js';
import { testCouchUrl } from './couch.js';
import { CouchProxy, nodeHasUpdateFeed } from './couch-proxy.js';
import { spawnGateway, type GatewayProcess } from './process.js';

export interface ProxiedCouch {
  /** The test Couch itself. */
  couchUrl: string;
  /** Whether it offers `_db_updates` (gateways then cache states). */
  feed: boolean;
  /** A fresh proxy for each test. */
  proxy: CouchProxy;
  /** A gateway on the Couch at viaCouch (couchUrl, or proxy.url), its state cache on. */
  gateway(viaCouch: string, extraEnv?: Record<string, string>): Promise<GatewayProcess>;
  client(g: GatewayProcess, uid: number): SyncClient;
  /** Resolves once the gateway behind the proxy follows the feed: it has asked twice (since=now, then the longpoll). */
  feedLive(): Promise<void>;
}

export function proxiedCouch(): ProxiedCouch {
  const secret = randomBytes(24).toString('hex');
  const gateways: GatewayProcess[] = [];
  const dirs: string[] = [];
  const env = {
    async gateway(viaCouch: string, extraEnv: Record<string, string> = {}): Promise<GatewayProcess> {
      const dir = await mkdtemp(join(tmpdir(), 'syncgate-proxied-'));
      dirs.push(dir);
      const g = await spawnGateway({ SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: secret, PORT: '0', COUCH_URL: viaCouch, SYNCGATE_STATE_CACHE_MS: '60000', ...extraEnv });
      gateways.push(g);
      return g;
    },
    client(g: GatewayProcess, uid: number): SyncClient {
      const t = makeToken(secret, { uid, node: g.url, expires: Math.floor(Date.now() / 1000) + 3600 });
      return new SyncClient({ id: t.id, key: t.key, uid, api_endpoint: `${g.url}/1.5/${uid}` });
    },
    async feedLive(): Promise<void> {
      for (let i = 0; env.proxy.feedRequests < 2; i++) {
        assert.ok(i < 200, `the gateway behind the proxy never followed the update feed (${env.proxy.feedRequests} feed requests)`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  } as ProxiedCouch;

  before(async () => {
    env.couchUrl = await testCouchUrl();
    env.feed = await nodeHasUpdateFeed(env.couchUrl);
  });
  beforeEach(async () => {
    env.proxy = new CouchProxy(new URL(env.couchUrl));
    await env.proxy.start();
  });
  afterEach(async () => {
    for (const g of gateways.splice(0)) await g.kill();
    await env.proxy.stop();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  return env;
}
