// Starts a gateway: configuration, secret, store, HTTP listener, background purge. Starting
// twice on the same data folder changes nothing (the secret and databases are reused).
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { createStore } from '../storage/create-store.js';
import type { SyncStore } from '../storage/engine/sync-store.js';
import { createApp } from './app.js';
import { loadMasterSecret } from './auth/master-secret.js';
import { describe, type Config } from './config.js';
import { createLogger } from './logging.js';

export interface RunningServer {
  url: string;
  port: number;
  store: SyncStore;
  logger: Logger;
  close(): Promise<void>;
}

export async function startServer(config: Config, logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const masterSecret = loadMasterSecret(config);
  const store = createStore(config);
  await store.start();
  const app = createApp({ config, store, masterSecret, logger });
  const server: Server = createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  let purging = false;
  const purge = setInterval(() => {
    if (purging) return;
    purging = true;
    store
      .purge()
      .catch((err) => logger.warn({ err }, 'purge failed'))
      .finally(() => (purging = false));
  }, config.purgeIntervalSec * 1000);
  purge.unref();

  logger.info({ url, config: describe(config) }, 'syncgate listening');
  return {
    url,
    port,
    store,
    logger,
    async close() {
      clearInterval(purge);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
      logger.flush();
    },
  };
}
