// Starts a real gateway for a test: its own temp data folder, a random port on 127.0.0.1,
// and a fresh master secret. Tests talk to it over HTTP only.
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { makeToken } from '../../server/auth/tokenlib.js';
import { loadConfig, type Config } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { SyncClient, type Credentials } from './client.js';
import { storeUnderTest, testCouchUrl } from './couch.js';

export interface TestGateway {
  url: string;
  config: Config;
  secret: string;
  server: RunningServer;
  /** A client for a new, empty user. */
  newUser(opts?: { uid?: number; expiresIn?: number }): SyncClient;
  credentials(uid: number, expiresIn?: number): Credentials;
  close(): Promise<void>;
}

/** `log`: where the gateway's log lines go (at debug level), for tests that read them. */
export async function startGateway(env: Record<string, string> = {}, dataDir?: string, opts: { log?: NodeJS.WritableStream } = {}): Promise<TestGateway> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'syncgate-test-')));
  const secret = env.SYNC_MASTER_SECRET ?? randomBytes(24).toString('hex');
  const couch = storeUnderTest === 'couch' && env.COUCH_URL === undefined ? { COUCH_URL: await testCouchUrl() } : {};
  const config = loadConfig({
    ...couch,
    SYNCGATE_WRITE_LEASE_MS: '1000',
    SYNCGATE_DATA: dir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.SYNCGATE_TEST_LOG ?? 'silent',
    SYNC_MASTER_SECRET: secret,
    ...env,
  });
  const logger = opts.log ? pino({ level: 'debug' }, opts.log) : pino({ level: process.env.SYNCGATE_TEST_LOG ?? 'silent' });
  const server = await startServer(config, logger);
  const credentials = (uid: number, expiresIn = 3600): Credentials => {
    const t = makeToken(secret, { uid, node: server.url, expires: Math.floor(Date.now() / 1000) + expiresIn });
    return { id: t.id, key: t.key, uid, api_endpoint: `${server.url}/1.5/${uid}` };
  };
  return {
    url: server.url,
    config,
    secret,
    server,
    credentials,
    newUser: (opts = {}) => new SyncClient(credentials(opts.uid ?? randomInt(1, 2 ** 31), opts.expiresIn)),
    async close() {
      await server.close();
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh BSO id-like string. */
export const bsoId = (): string => randomBytes(9).toString('base64url');
