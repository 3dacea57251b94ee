// The Couch the tests use: COUCH_URL when it is set (a real Apache CouchDB must pass the same
// tests), otherwise one node started on a free port in a temp folder with an admin user,
// shared by the whole run and stopped by the root hook. Nodes are Apache CouchDB when
// COUCHDB_HOME names a CouchDB release folder, pouchdb-servers from npm otherwise.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which store the protocol and durability suites run on in this mocha run. */
export const storeUnderTest: 'embedded' | 'couch' = process.env.SYNCGATE_TEST_STORE === 'couch' ? 'couch' : 'embedded';

export interface RunningCouch {
  url: string;
  stop(): Promise<void>;
}

let running: Promise<RunningCouch> | undefined;

/** The Basic authorization header value for the user and password in a Couch URL. */
export function basicAuth(url: URL): string {
  return `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
}

export function testCouchUrl(): Promise<string> {
  running ??= process.env.COUCH_URL ? Promise.resolve({ url: process.env.COUCH_URL, stop: async () => {} }) : startCouchNode();
  return running.then((r) => r.url);
}

export async function stopTestCouch(): Promise<void> {
  const r = await running;
  running = undefined;
  await r?.stop();
}

/**
 * A free port for a node that may be killed and started again on it. Chosen below Linux's
 * ephemeral range (32768-60999), from which every outgoing connection takes its local port:
 * a port from there, left free while its node is down, can be taken by a connection of a
 * gateway or a client, and the restart then fails with EADDRINUSE.
 */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue; // nodes starting at once in this process
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
}

/** A Couch node the test can kill hard and start again on the same port and folder. */
export interface CouchNode extends RunningCouch {
  port: number;
  /** Its folder: data, configuration (the benchmark reads its size on disk). */
  readonly dir: string;
  /** Its process id while it runs (the benchmark reads its CPU time and memory). */
  readonly pid: number | undefined;
  /** SIGKILL: no flush, no goodbye, as a node that dies. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data folder (its admin user is kept there). */
  restart(): Promise<void>;
}

/**
 * Another Couch node of its own, for tests that need several: an Apache CouchDB started from
 * the release folder COUCHDB_HOME names, when it is set; a pouchdb-server from npm otherwise.
 */
export function startCouchNode(opts: { inMemory?: boolean } = {}): Promise<CouchNode> {
  return process.env.COUCHDB_HOME ? startApacheCouch(process.env.COUCHDB_HOME) : startPouchServer(opts);
}

/**
 * An Apache CouchDB node: its own port, data folder, configuration and Erlang node name, no
 * Erlang distribution (nothing but its HTTP port is opened), one shard per database.
 */
async function startApacheCouch(home: string): Promise<CouchNode> {
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-couchdb-'));
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const data = join(dir, 'data');
  const ini = join(dir, 'local.ini');
  // CouchDB rewrites this file (it hashes the admin password): each node has its own.
  await writeFile(
    ini,
    [
      '[couchdb]', 'single_node = true', `database_dir = ${data}`, `view_index_dir = ${data}`, `uuid = ${randomBytes(16).toString('hex')}`,
      '[cluster]', 'n = 1', 'q = 1',
      '[chttpd]', `port = ${port}`, 'bind_address = 127.0.0.1',
      '[smoosh]', `state_dir = ${data}`,
      // _db_updates within ~10-50 ms of a write instead of up to 0.5 s: the gateways' state
      // caches follow it (README, "Run it on CouchDB").
      '[global_changes]', 'max_write_delay = 10',
      '[admins]', `admin = ${password}`,
      '[log]', 'level = warning',
      '',
    ].join('\n'),
  );
  const args = join(dir, 'vm.args');
  await writeFile(
    args,
    [
      `-name syncgate_test_${port}@127.0.0.1`, `-setcookie ${randomBytes(8).toString('hex')}`,
      '-start_epmd false', '-dist_listen false', '-kernel error_logger silent', '-sasl sasl_error_logger false',
      '+Bd', '-noinput', '-os_mon start_cpu_sup false', '-os_mon start_memsup false', '-os_mon disk_almost_full_threshold 1.0',
      '',
    ].join('\n'),
  );
  const base = `http://127.0.0.1:${port}`;
  const auth = { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` };
  const proc = nodeProcess(
    'CouchDB',
    `couchdb-${port}`,
    () =>
      spawn(join(home, 'bin', 'couchdb'), [], {
        env: { ...process.env, COUCHDB_ARGS_FILE: args, COUCHDB_INI_FILES: `${join(home, 'etc', 'default.ini')} ${ini}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    async () => (await fetch(`${base}/_up`, { headers: auth })).ok,
  );
  await proc.launch();
  // The database behind _db_updates, which a single node does not create by itself.
  const created = await fetch(`${base}/_global_changes?q=1`, { method: 'PUT', headers: auth });
  if (!created.ok) throw new Error(`CouchDB did not create _global_changes: ${created.status} ${await created.text()}`);
  return couchNode(`http://admin:${password}@127.0.0.1:${port}`, port, dir, proc);
}

interface NodeProcess {
  launch(): Promise<void>;
  kill(): Promise<void>;
  pid(): number | undefined;
}

/** A node's process: started until it answers `ready`, killed hard (SIGKILL, no goodbye). */
function nodeProcess(what: string, logName: string, start: () => ChildProcess, ready: () => Promise<boolean>): NodeProcess {
  let child: ChildProcess | undefined;
  const log = (text: string) => process.env.SYNCGATE_TEST_LOG && appendFileSync(`${process.env.SYNCGATE_TEST_LOG}.${logName}`, text);
  return {
    async launch() {
      const c = start();
      child = c;
      let stderr = '';
      c.stderr?.on('data', (d) => {
        stderr = (stderr + String(d)).slice(-4000);
        log(String(d));
      });
      c.once('exit', (code, signal) => log(`exit ${code} ${signal}\n`));
      for (let i = 0; ; i++) {
        if (c.exitCode !== null) throw new Error(`${what} exited: ${stderr}`);
        try {
          if (await ready()) break;
        } catch {
          // not listening yet
        }
        if (i > 600) throw new Error(`${what} did not start`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill() {
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await exited;
      }
    },
    pid: () => child?.pid,
  };
}

function couchNode(url: string, port: number, dir: string, proc: NodeProcess): CouchNode {
  return {
    url,
    port,
    dir,
    get pid() {
      return proc.pid();
    },
    kill: () => proc.kill(),
    restart: async () => {
      await proc.kill();
      await proc.launch();
    },
    async stop() {
      await proc.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A pouchdb-server from npm, for tests and benchmarks on a machine without CouchDB. */
export async function startPouchServer(opts: { inMemory?: boolean } = {}): Promise<CouchNode> {
  // Its launcher fixes the validation plugin so replicated writes are stored (see there).
  const main = fileURLToPath(new URL('./pouch-server-main.js', import.meta.url));
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-couch-'));
  const port = await freePort();
  // Its log file goes into the temp folder, not the working directory.
  await writeFile(join(dir, 'config.json'), JSON.stringify({ log: { file: join(dir, 'log.txt') } }));
  const base = `http://127.0.0.1:${port}`;
  const args = [main, '-p', String(port), '-o', '127.0.0.1', '-d', dir, '-c', join(dir, 'config.json'), '-n', ...(opts.inMemory ? ['--in-memory'] : [])];
  const proc = nodeProcess(
    'pouchdb-server',
    `couch-${port}`,
    () => spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }),
    async () => (await fetch(`${base}/`)).ok,
  );
  await proc.launch();
  const password = randomBytes(12).toString('hex');
  const res = await fetch(`${base}/_config/admins/admin`, { method: 'PUT', body: JSON.stringify(password) });
  if (!res.ok) throw new Error(`could not create the pouchdb-server admin: ${res.status}`);
  return couchNode(`http://admin:${password}@127.0.0.1:${port}`, port, dir, proc);
}
