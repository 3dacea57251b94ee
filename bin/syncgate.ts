#!/usr/bin/env node
// The syncgate command: `serve` runs a gateway; `token --new-user` prints storage credentials.
import { Command, InvalidArgumentError } from 'commander';
import { randomInt } from 'node:crypto';
import { loadMasterSecret } from '../server/auth/master-secret.js';
import { makeToken } from '../server/auth/tokenlib.js';
import { ConfigError, loadConfig, type Config } from '../server/config.js';
import { PouchBackend } from '../storage/pouch/pouch-backend.js';
import { loadCommand } from '../load/cli.js';
import { watchEvacuation, type Progress } from './evacuation-progress.js';
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
    // A background task that lost its Couch must not take every user down with it: the task
    // is retried by its own timer; the rejection is logged where operators and tests see it.
    process.on('unhandledRejection', (reason) => running.logger.error({ err: reason }, 'unhandled rejection'));
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
  .action(async (opts: { url: string; newUser?: boolean; uid?: number; duration?: number }) => {
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
    const uid = opts.uid ?? (await freshUid(cfg));
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

const serverOption = ['--server <url>', 'base URL of a running gateway (default: SYNCGATE_PUBLIC_URL or HOST:PORT)'] as const;

const account = program.command('account').description('local accounts of the built-in identity provider (self-hosting, scripts, tests)');

account
  .command('create <email>')
  .description('create a local account and print a bearer token and X-KeyID for the token endpoint; with --firefox, an account Firefox signs in to')
  .option('--firefox', 'an account Firefox signs in to: prints a one-time link (7 days) where its owner chooses the password; needs a running gateway and SYNCGATE_ADMIN_TOKEN')
  .option('--json', 'print one JSON line ({"bearer","keyId","token_url"}, or {"email","link","expiresAt"} with --firefox)')
  .option('--url <url>', 'public base URL of the server, for token_url')
  .option(...serverOption)
  .action(async (email: string, opts: { firefox?: boolean; json?: boolean; url?: string; server?: string }) => {
    if (opts.firefox) {
      const answer = await adminRequest('POST', '/accounts', opts, { email });
      return printLink(answer as string, opts, 'to sign up and choose a password');
    }
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
  .command('reset <email>')
  .description('a one-time link (24 hours) to set a new password without the old one: the account gets a new key and empty storage, every device signs in again')
  .option('--json', 'print one JSON line {"email","link","expiresAt"}')
  .option(...serverOption)
  .action(async (email: string, opts: { json?: boolean; server?: string }) => {
    const answer = await adminRequest('POST', `/accounts/${encodeURIComponent(email)}/reset`, opts);
    printLink(answer as string, opts, 'to choose a new password');
  });

account
  .command('delete <email>')
  .description('delete an account: its bearer tokens, sessions and refresh tokens stop working at once (an account Firefox signs in to: needs a running gateway and SYNCGATE_ADMIN_TOKEN)')
  .option(...serverOption)
  .action(async (email: string, opts: { server?: string }) => {
    const cfg = config();
    let deleted = cfg.tokenServer.localAccounts && (await new LocalAccounts(cfg.dataDir).delete(email));
    if (cfg.adminToken) deleted = (await adminRequest('DELETE', `/accounts/${encodeURIComponent(email)}`, opts, undefined, true)) !== undefined || deleted;
    if (!deleted) {
      const hint = cfg.adminToken ? '' : ' (accounts Firefox signs in to are deleted through a running gateway: set SYNCGATE_ADMIN_TOKEN)';
      process.stderr.write(`syncgate account delete: no account ${email}${hint}\n`);
      process.exit(1);
    }
    process.stdout.write(`deleted ${email}\n`);
  });

/** Prints the admin API's one-time link for a person. */
function printLink(answer: string, opts: { json?: boolean }, purpose: string): void {
  const { email, link, expiresAt } = JSON.parse(answer) as { email: string; link: string; expiresAt: string };
  if (opts.json) process.stdout.write(`${JSON.stringify({ email, link, expiresAt })}\n`);
  else process.stdout.write(`Send ${email} this link ${purpose} (once, until ${expiresAt}):\n${link}\n`);
}

/** Calls the admin API of a running gateway (SYNCGATE_ADMIN_TOKEN); prints its JSON answer. */
async function adminCall(method: string, path: string, opts: { server?: string }, body?: unknown): Promise<void> {
  process.stdout.write(`${await adminRequest(method, path, opts, body)}\n`);
}

/** The admin API's answer (JSON text); a refusal is printed and ends the command. */
async function adminRequest(method: string, path: string, opts: { server?: string }, body?: unknown, allow404 = false): Promise<string | undefined> {
  const cfg = config();
  if (!cfg.adminToken) {
    process.stderr.write('syncgate: set SYNCGATE_ADMIN_TOKEN to the admin credential of the gateway\n');
    process.exit(2);
  }
  const url = `${baseUrl(cfg, opts.server)}/__admin__${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${cfg.adminToken}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    process.stderr.write(`syncgate: cannot reach the gateway at ${baseUrl(cfg, opts.server)}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const text = await res.text();
  if (res.status === 404 && allow404) return undefined;
  if (!res.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // not JSON: print as is
    }
    process.stderr.write(`syncgate: ${res.status} ${message}\n`);
    process.exit(1);
  }
  return text;
}


const operator = program.command('operator').description('operators: who runs nodes (admin API of a running gateway)');
operator
  .command('add <name>')
  .option('--synchronous', 'acknowledge writes on this operator\'s nodes only once the replica has them')
  .option(...serverOption)
  .action((name: string, opts: { synchronous?: boolean; server?: string }) => adminCall('POST', '/operators', opts, { name, synchronous: opts.synchronous === true }));
operator
  .command('list')
  .option(...serverOption)
  .action((opts: { server?: string }) => adminCall('GET', '/operators', opts));

const node = program.command('node').description('Couch nodes that hold user databases (admin API of a running gateway)');
node
  .command('add <name>')
  .requiredOption('--operator <name>', 'operator running the node')
  .requiredOption('--url <couch url>', 'http(s)://user:pass@host:5984; the credentials are stored encrypted')
  .requiredOption('--capacity <users>', 'user databases it may hold', positiveInt)
  .option('--weight <w>', 'relative share of new users (default 1)', (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number >= 0');
    return n;
  })
  .option('--synchronous', "acknowledge writes only once the replica has them (default: the operator's setting)")
  .option(...serverOption)
  .action((name: string, opts: { operator: string; url: string; capacity: number; weight?: number; synchronous?: boolean; server?: string }) =>
    adminCall('POST', '/nodes', opts, {
      name,
      operator: opts.operator,
      url: opts.url,
      capacity: opts.capacity,
      ...(opts.weight === undefined ? {} : { weight: opts.weight }),
      ...(opts.synchronous ? { synchronous: true } : {}),
    }),
  );
node
  .command('list')
  .option(...serverOption)
  .action((opts: { server?: string }) => adminCall('GET', '/nodes', opts));
node
  .command('drain <name>')
  .description('take no new users; its users stay (with --move: moved to other nodes, with a progress bar)')
  .option('--move', 'move every user off the node, a few at a time; running it again watches a drain in progress')
  .option(...serverOption)
  .action(async (name: string, opts: { move?: boolean; server?: string }) => {
    if (!opts.move) return adminCall('POST', `/nodes/${encodeURIComponent(name)}/drain`, opts);
    const path = `/nodes/${encodeURIComponent(name)}`;
    await adminRequest('POST', `${path}/evacuate`, opts);
    await watchEvacuation(`drain ${name}`, async () => [JSON.parse((await adminRequest('GET', `${path}/evacuation`, opts)) as string) as Progress]);
  });
operator
  .command('evacuate <name>')
  .description("move every user off the operator's nodes to other operators' nodes, with a progress bar")
  .option(...serverOption)
  .action(async (name: string, opts: { server?: string }) => {
    const path = `/operators/${encodeURIComponent(name)}`;
    await adminRequest('POST', `${path}/evacuate`, opts);
    await watchEvacuation(`evacuate ${name}`, async () => JSON.parse((await adminRequest('GET', `${path}/evacuation`, opts)) as string) as Progress[]);
  });
for (const [state, what] of [
  ['down', 'manual override: mark the node down'],
  ['up', 'clear drain or down'],
] as const) {
  node
    .command(`${state} <name>`)
    .description(what)
    .option(...serverOption)
    .action((name: string, opts: { server?: string }) => adminCall('POST', `/nodes/${encodeURIComponent(name)}/${state}`, opts));
}
node
  .command('remove <name>')
  .description('remove a node that holds no user database')
  .option(...serverOption)
  .action((name: string, opts: { server?: string }) => adminCall('DELETE', `/nodes/${encodeURIComponent(name)}`, opts));

const user = program.command('user').description("a user's storage (admin API of a running gateway)");
user
  .command('move <who>')
  .description('move a user (uid or account email) to another node while they keep syncing; waits until the move is over')
  .requiredOption('--to <node>', 'the node to move to')
  .option('--no-wait', 'start the move and print where it stands')
  .option(...serverOption)
  .action(async (who: string, opts: { to: string; wait: boolean; server?: string }) => {
    const path = `/users/${encodeURIComponent(who)}/move`;
    type Status = { uid: number; node: string; move: { stage: string; to: string } | null; lastMove: { to: string; outcome: string; at: number; reason?: string; switchMs?: number } | null };
    let status = JSON.parse((await adminRequest('POST', path, opts, { to: opts.to })) as string) as Status;
    const started = Date.now();
    if (!opts.wait) {
      process.stdout.write(`${JSON.stringify(status)}\n`);
      return;
    }
    let stage = '';
    while (status.move) {
      if (status.move.stage !== stage) {
        stage = status.move.stage;
        process.stdout.write(`uid ${status.uid}: ${stage} to ${status.move.to}\n`);
      }
      await new Promise((r) => setTimeout(r, 500));
      status = JSON.parse((await adminRequest('GET', path, opts)) as string) as Status;
    }
    const last = status.lastMove;
    if (last?.outcome === 'moved' && status.node === opts.to && last.at >= started - 60_000) {
      process.stdout.write(`uid ${status.uid}: moved to ${status.node} in ${((Date.now() - started) / 1000).toFixed(1)} s (writes refused for ${last.switchMs ?? 0} ms)\n`);
      return;
    }
    process.stderr.write(`syncgate user move: uid ${status.uid} stays on ${status.node}${last?.reason ? `: ${last.reason}` : ''}\n`);
    process.exit(1);
  });

user
  .command('couch <who>')
  .description("move a user's storage to their own Couch (checked as any node; only theirs), or with --remove back to the operators' nodes; waits until it is there")
  .option('--url <couch url>', 'http(s)://user:pass@host:5984 of their Couch; the credentials are stored encrypted')
  .option('--replica', "keep a replica on an operator's node (failover while their Couch is out)")
  .option('--remove', "move the storage back to the operators' nodes and forget their Couch")
  .option(...serverOption)
  .action(async (who: string, opts: { url?: string; replica?: boolean; remove?: boolean; server?: string }) => {
    if (!opts.url === !opts.remove) {
      process.stderr.write('syncgate user couch: give exactly one of --url or --remove\n');
      process.exit(2);
    }
    const path = `/users/${encodeURIComponent(who)}`;
    if (opts.remove) await adminRequest('DELETE', `${path}/couch`, opts);
    else await adminRequest('POST', `${path}/couch`, opts, { url: opts.url, replica: opts.replica === true });
    type Status = { uid: number; node: string; replica: string | null; move: { stage: string } | null; lastMove: { outcome: string; reason?: string } | null };
    for (;;) {
      const status = JSON.parse((await adminRequest('GET', `${path}/move`, opts)) as string) as Status;
      const own = status.node === `own-${status.uid}`;
      if (!status.move && own !== Boolean(opts.remove)) {
        process.stdout.write(`uid ${status.uid}: on ${status.node}${status.replica ? `, replica on ${status.replica}` : ', no replica'}\n`);
        return;
      }
      if (!status.move && status.lastMove?.outcome === 'rolled back' && !opts.remove) {
        process.stderr.write(`syncgate user couch: uid ${status.uid} stays on ${status.node}: ${status.lastMove.reason ?? 'rolled back'}\n`);
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  });

/** A table with a header row, columns padded; numbers right-aligned. */
function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r, j) => r.map((c, i) => (j > 0 && typeof rows[j - 1]?.[i] === 'number' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

user
  .command('top')
  .description('the largest users by stored bytes, records, or requests over the last day (as of the last usage flush)')
  .option('--by <what>', 'bytes | records | requests', (v: string) => {
    if (!['bytes', 'records', 'requests'].includes(v)) throw new InvalidArgumentError('must be bytes, records or requests');
    return v;
  }, 'bytes')
  .option('--node <name>', 'only the users placed on this node')
  .option('--limit <n>', 'how many users (default 20, at most 1000)', positiveInt)
  .option('--json', 'print the admin API\'s answer (one JSON array)')
  .option(...serverOption)
  .action(async (opts: { by: string; node?: string; limit?: number; json?: boolean; server?: string }) => {
    const q = new URLSearchParams({ by: opts.by });
    if (opts.node !== undefined) q.set('node', opts.node);
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    const answer = (await adminRequest('GET', `/users/top?${q}`, opts)) as string;
    if (opts.json) return void process.stdout.write(`${answer}\n`);
    type Row = { uid: number; node: string; records: number; bytes: number; requestsHour: number; requestsDay: number; bytesInDay: number; bytesOutDay: number };
    const rows = JSON.parse(answer) as Row[];
    process.stdout.write(
      `${table(
        ['uid', 'node', 'records', 'bytes', 'requests/hour', 'requests/day', 'bytes in/day', 'bytes out/day'],
        rows.map((r) => [r.uid, r.node, r.records, r.bytes, r.requestsHour, r.requestsDay, r.bytesInDay, r.bytesOutDay]),
      )}\n`,
    );
  });

user
  .command('show <who>')
  .description("one user's (uid or account email) placement, size per collection and traffic over the last hour and day")
  .option('--json', 'print the admin API\'s answer')
  .option(...serverOption)
  .action(async (who: string, opts: { json?: boolean; server?: string }) => {
    const answer = (await adminRequest('GET', `/users/${encodeURIComponent(who)}`, opts)) as string;
    if (opts.json) return void process.stdout.write(`${answer}\n`);
    type Sum = { requests: number; bytesIn: number; bytesOut: number };
    const u = JSON.parse(answer) as {
      uid: number; email: string | null; node: string; replica: string | null; move: { to: string; stage: string } | null;
      collections: Record<string, { records: number; bytes: number }>; records: number; bytes: number; sizes: string;
      traffic: { hour: Sum; day: Sum };
    };
    const lines = [
      `uid ${u.uid}${u.email ? ` (${u.email})` : ''}: node ${u.node}, ${u.replica ? `replica ${u.replica}` : 'no replica'}${u.move ? `, moving to ${u.move.to} (${u.move.stage})` : ''}`,
      '',
      table(
        ['collection', 'records', 'bytes'],
        [...Object.entries(u.collections).sort(([a], [b]) => a.localeCompare(b)).map(([c, v]): Array<string | number> => [c, v.records, v.bytes]), ['total', u.records, u.bytes]],
      ),
      ...(u.sizes === 'live' ? [] : ['(sizes as of the last usage flush: the store did not answer)']),
      '',
      table(['traffic', 'requests', 'bytes in', 'bytes out'], [
        ['last hour', u.traffic.hour.requests, u.traffic.hour.bytesIn, u.traffic.hour.bytesOut],
        ['last day', u.traffic.day.requests, u.traffic.day.bytesIn, u.traffic.day.bytesOut],
      ]),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });

/**
 * A uid whose database does not exist yet, for a storage node behind another tokenserver. The
 * embedded store can say so only while no gateway holds its data folder; otherwise (and on
 * Couch) it is a random one of 2^31.
 */
async function freshUid(cfg: Config): Promise<number> {
  const store = cfg.couchUrl === undefined ? new PouchBackend(cfg.dataDir) : undefined;
  try {
    for (;;) {
      const uid = randomInt(1, 2 ** 31);
      if (!store || !(await store.exists(String(uid)).catch(() => false))) return uid;
    }
  } finally {
    await store?.shutdown().catch(() => undefined);
  }
}

program.addCommand(loadCommand());

await program.parseAsync(process.argv);
