// The Couch the tests use: COUCH_URL when it is set (a real Apache CouchDB must pass the same
// tests), otherwise one pouchdb-server from npm, started on a free port in a temp folder with
// an admin user, shared by the whole run and stopped by the root hook.
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

export function testCouchUrl(): Promise<string> {
  running ??= process.env.COUCH_URL ? Promise.resolve({ url: process.env.COUCH_URL, stop: async () => {} }) : startPouchServer();
  return running.then((r) => r.url);
}

export async function stopTestCouch(): Promise<void> {
  const r = await running;
  running = undefined;
  await r?.stop();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A pouchdb-server the test can kill hard and start again on the same port and folder. */
export interface PouchServer extends RunningCouch {
  port: number;
  /** Its process id while it runs (the benchmark reads its CPU time and memory). */
  readonly pid: number | undefined;
  /** SIGKILL: no flush, no goodbye, as a node that dies. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data folder (its admin user is kept there). */
  restart(): Promise<void>;
}

/** Another Couch of its own (a pouchdb-server), for tests that need several nodes. */
export async function startPouchServer(opts: { inMemory?: boolean } = {}): Promise<PouchServer> {
  // Its launcher fixes the validation plugin so replicated writes are stored (see there).
  const main = fileURLToPath(new URL('./pouch-server-main.js', import.meta.url));
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-couch-'));
  const port = await freePort();
  // Its log file goes into the temp folder, not the working directory.
  await writeFile(join(dir, 'config.json'), JSON.stringify({ log: { file: join(dir, 'log.txt') } }));
  const base = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    const args = [main, '-p', String(port), '-o', '127.0.0.1', '-d', dir, '-c', join(dir, 'config.json'), '-n', ...(opts.inMemory ? ['--in-memory'] : [])];
    const c = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = c;
    let stderr = '';
    c.stderr?.on('data', (d) => {
      stderr += String(d);
      if (process.env.SYNCGATE_TEST_LOG) appendFileSync(`${process.env.SYNCGATE_TEST_LOG}.couch-${port}`, String(d));
    });
    c.once('exit', (code, signal) => {
      if (process.env.SYNCGATE_TEST_LOG) appendFileSync(`${process.env.SYNCGATE_TEST_LOG}.couch-${port}`, `exit ${code} ${signal}\n`);
    });
    for (let i = 0; ; i++) {
      if (c.exitCode !== null) throw new Error(`pouchdb-server exited: ${stderr}`);
      try {
        if ((await fetch(`${base}/`)).ok) break;
      } catch {
        // not listening yet
      }
      if (i > 300) throw new Error('pouchdb-server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const kill = async () => {
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }
  };
  await launch();
  const password = randomBytes(12).toString('hex');
  const res = await fetch(`${base}/_config/admins/admin`, { method: 'PUT', body: JSON.stringify(password) });
  if (!res.ok) throw new Error(`could not create the pouchdb-server admin: ${res.status}`);
  return {
    url: `http://admin:${password}@127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
