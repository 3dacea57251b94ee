#!/usr/bin/env node
// The syncgate command: `serve` runs a gateway; `token --new-user` prints storage credentials.
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { loadMasterSecret } from '../server/auth/master-secret.js';
import { makeToken } from '../server/auth/tokenlib.js';
import { ConfigError, loadConfig, type Config } from '../server/config.js';
import { startServer } from '../server/server.js';
import { userDbName } from '../storage/db-name.js';

function config(): Config {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`syncgate: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

const positiveInt = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(v);
};

const program = new Command('syncgate').description('Firefox Sync 1.5 storage server');

program
  .command('serve')
  .description('run the gateway (HOST, PORT, SYNCGATE_DATA, ... from the environment)')
  .action(async () => {
    const running = await startServer(config()).catch((e: Error) => {
      process.stderr.write(`syncgate: cannot start: ${e.message}\n`);
      process.exit(1);
    });
    const stop = (signal: string) => {
      running.logger.info({ signal }, 'shutting down');
      running.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

program
  .command('token')
  .description('print storage credentials (tokenlib id/key) signed with the master secret')
  .requiredOption('--url <url>', 'public base URL of this gateway, e.g. http://127.0.0.1:8000')
  .option('--new-user', 'allocate a uid with no storage yet')
  .option('--uid <uid>', 'credentials for this existing uid', positiveInt)
  .option('--duration <seconds>', 'token lifetime', positiveInt)
  .action((opts: { url: string; newUser?: boolean; uid?: number; duration?: number }) => {
    const cfg = config();
    if (!opts.newUser === (opts.uid === undefined)) {
      process.stderr.write('syncgate token: give exactly one of --new-user or --uid\n');
      process.exit(2);
    }
    let base: string;
    try {
      base = new URL(opts.url).toString().replace(/\/+$/, '');
    } catch {
      process.stderr.write(`syncgate token: --url is not a URL: ${opts.url}\n`);
      process.exit(2);
    }
    const uid = opts.uid ?? freshUid(cfg);
    const duration = opts.duration ?? cfg.tokenDuration;
    const secret = loadMasterSecret(cfg);
    const token = makeToken(secret, { uid, node: base, expires: Math.floor(Date.now() / 1000) + duration });
    process.stdout.write(
      `${JSON.stringify({ id: token.id, key: token.key, uid, api_endpoint: `${base}/1.5/${uid}`, duration })}\n`,
    );
  });

/** A uid whose database does not exist yet. The registry (token server) replaces this. */
function freshUid(cfg: Config): number {
  for (;;) {
    const uid = randomInt(1, 2 ** 31);
    if (!existsSync(join(cfg.dataDir, 'users', userDbName(String(uid))))) return uid;
  }
}

await program.parseAsync(process.argv);
