// The Couch the tests use: COUCH_URL when it is set (a real Apache CouchDB must pass the same
// tests), otherwise one pouchdb-server from npm, started on a free port in a temp folder with
// an admin user, shared by the whole run and stopped by the root hook.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

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

/** Another Couch of its own (a pouchdb-server), for tests that need several nodes. */
export async function startPouchServer(): Promise<RunningCouch> {
  const require = createRequire(import.meta.url);
  const bin = join(dirname(require.resolve('pouchdb-server/package.json')), 'bin', 'pouchdb-server');
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-couch-'));
  const port = await freePort();
  // Its log file goes into the temp folder, not the working directory.
  await writeFile(join(dir, 'config.json'), JSON.stringify({ log: { file: join(dir, 'log.txt') } }));
  const child: ChildProcess = spawn(process.execPath, [bin, '-p', String(port), '-o', '127.0.0.1', '-d', dir, '-c', join(dir, 'config.json'), '-n'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`pouchdb-server exited: ${stderr}`);
    try {
      if ((await fetch(`${base}/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 200) throw new Error('pouchdb-server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const password = randomBytes(12).toString('hex');
  const res = await fetch(`${base}/_config/admins/admin`, { method: 'PUT', body: JSON.stringify(password) });
  if (!res.ok) throw new Error(`could not create the pouchdb-server admin: ${res.status}`);
  return {
    url: `http://admin:${password}@127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
