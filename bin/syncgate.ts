#!/usr/bin/env node
// The syncgate command: `serve` runs a gateway; `token --new-user` prints storage credentials.
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { loadMasterSecret } from '../server/auth/master-secret.js';
import { makeToken } from '../server/auth/tokenlib.js';
import { ConfigError, loadConfig, type Config } from '../server/config.js';
import { userDbName } from '../storage/db-name.js';
import { AccountError, keyIdOf, LocalAccounts, type LocalAccount } from '../server/tokenserver/local-accounts.js';

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
    // Loaded here: the other commands start fast without the store and HTTP stack.
    const { startServer } = await import('../server/server.js');
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

/** The base URL Firefox reaches this server at: --url, SYNCGATE_PUBLIC_URL, or HOST:PORT. */
function baseUrl(cfg: Config, url?: string): string {
  if (url) {
    try {
      return new URL(url).toString().replace(/\/+$/, '');
    } catch {
      process.stderr.write(`syncgate: --url is not a URL: ${url}\n`);
      process.exit(2);
    }
  }
  if (cfg.publicUrl) return cfg.publicUrl;
  const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  return `http://${host}:${cfg.port}`;
}

function localAccounts(cfg: Config): LocalAccounts {
  if (!cfg.tokenServer.localAccounts) {
    process.stderr.write('syncgate account: local accounts are turned off (SYNCGATE_LOCAL_ACCOUNTS=false)\n');
    process.exit(2);
  }
  return new LocalAccounts(cfg.dataDir);
}

async function printCredentials(cfg: Config, accounts: LocalAccounts, account: LocalAccount, opts: { json?: boolean; url?: string }): Promise<void> {
  const out = {
    bearer: await accounts.bearer(account, cfg.tokenServer.localTokenTtlSec),
    keyId: keyIdOf(account),
    token_url: `${baseUrl(cfg, opts.url)}/1.0/sync/1.5`,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(
      `account ${account.email}\n` +
        `token server URL (identity.sync.tokenserver.uri): ${out.token_url}\n` +
        `Authorization: Bearer ${out.bearer}\nX-KeyID: ${out.keyId}\n`,
    );
  }
}

const account = program.command('account').description('local accounts of the built-in identity provider (self-hosting, scripts, tests)');

account
  .command('create <email>')
  .description('create a local account and print a bearer token and X-KeyID for the token endpoint')
  .option('--json', 'print one JSON line {"bearer","keyId","token_url"}')
  .option('--url <url>', 'public base URL of the server, for token_url')
  .action(async (email: string, opts: { json?: boolean; url?: string }) => {
    const cfg = config();
    const accounts = localAccounts(cfg);
    try {
      await printCredentials(cfg, accounts, await accounts.create(email), opts);
    } catch (e) {
      if (!(e instanceof AccountError)) throw e;
      process.stderr.write(`syncgate account create: ${e.message}\n`);
      process.exit(1);
    }
  });

account
  .command('token <email>')
  .description('print a fresh bearer token and X-KeyID for an existing local account')
  .option('--json', 'print one JSON line {"bearer","keyId","token_url"}')
  .option('--url <url>', 'public base URL of the server, for token_url')
  .action(async (email: string, opts: { json?: boolean; url?: string }) => {
    const cfg = config();
    const accounts = localAccounts(cfg);
    const found = await accounts.get(email);
    if (!found) {
      process.stderr.write(`syncgate account token: no account ${email}\n`);
      process.exit(1);
    }
    await printCredentials(cfg, accounts, found, opts);
  });

account
  .command('list')
  .description('list local accounts')
  .option('--json', 'one JSON line per account')
  .action(async (opts: { json?: boolean }) => {
    for (const a of await localAccounts(config()).list()) {
      const line = opts.json ? JSON.stringify({ email: a.email, created: new Date(a.createdAt).toISOString() }) : `${a.email}\t${new Date(a.createdAt).toISOString()}`;
      process.stdout.write(`${line}\n`);
    }
  });

account
  .command('delete <email>')
  .description('delete a local account: its bearer tokens stop working at once')
  .action(async (email: string) => {
    if (!(await localAccounts(config()).delete(email))) {
      process.stderr.write(`syncgate account delete: no account ${email}\n`);
      process.exit(1);
    }
    process.stdout.write(`deleted ${email}\n`);
  });

/** A uid whose database does not exist yet, for a storage node behind another tokenserver. */
function freshUid(cfg: Config): number {
  for (;;) {
    const uid = randomInt(1, 2 ** 31);
    if (!existsSync(join(cfg.dataDir, 'users', userDbName(String(uid))))) return uid;
  }
}

await program.parseAsync(process.argv);
