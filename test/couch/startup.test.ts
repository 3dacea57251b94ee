// `syncgate serve` with COUCH_URL: the startup checks (storage/couch/couch-backend.ts verify())
// turn every unusable Couch into one clear line on stderr and a non-zero exit — no stack
// trace, and never the Couch password, which is also scrubbed from the startup log line.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testCouchUrl, basicAuth } from '../support/couch.js';

const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));
/** Generous: a failing start must exit on its own long before this. */
const EXIT_DEADLINE_MS = 45_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `syncgate serve` expecting it to exit by itself; kills it at the deadline. */
function serveUntilExited(env: Record<string, string>): Promise<Exit> {
  const { COUCH_URL: _inherited, SYNC_MASTER_SECRET: _secret, ...inherited } = process.env;
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...inherited, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += String(d)));
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const deadline = setTimeout(() => child.kill('SIGKILL'), EXIT_DEADLINE_MS);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(deadline);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** Basic auth header and credential-free base of a Couch URL (fetch refuses URLs with credentials). */
function split(url: string): { base: string; auth: string; password: string } {
  const u = new URL(url);
  const auth = basicAuth(u);
  return { base: `${u.protocol}//${u.host}`, auth, password: decodeURIComponent(u.password) };
}

function assertOneCleanLine(run: Exit, what: string): string {
  const all = `exit ${run.code}/${run.signal}; stderr: ${run.stderr}; stdout: ${run.stdout}`;
  assert.equal(run.signal, null, `${what}: killed at the deadline instead of exiting — ${all}`);
  assert.notEqual(run.code, 0, `${what}: must exit non-zero — ${all}`);
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr — ${all}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `${what}: no stack trace — ${all}`);
  assert.doesNotMatch(run.stderr, /\.(ts|js):\d+/, `${what}: no source locations — ${all}`);
  return lines[0] ?? '';
}

function assertSecretAbsent(run: Exit, secret: string, what: string): void {
  assert.ok(!run.stderr.includes(secret), `${what}: the password appears on stderr: ${run.stderr}`);
  assert.ok(!run.stdout.includes(secret), `${what}: the password appears on stdout: ${run.stdout}`);
}

describe('syncgate serve with COUCH_URL: startup checks', function () {
  this.timeout(60_000);
  let dir: string;
  let couchUrl: string;
  let child: ChildProcess | undefined;

  before(async () => (couchUrl = await testCouchUrl()));
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'syncgate-startup-'))));
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    child = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('COUCH_URL on a closed port: exits non-zero with one line saying it cannot reach Couch, naming the URL without the password', async () => {
    const port = await closedPort();
    const secret = `pw${randomBytes(8).toString('hex')}`;
    const run = await serveUntilExited({ SYNCGATE_DATA: dir, COUCH_URL: `http://admin:${secret}@127.0.0.1:${port}` });
    const line = assertOneCleanLine(run, 'closed port');
    assert.match(line, /cannot reach Couch/, line);
    assert.ok(line.includes(`http://127.0.0.1:${port}`), `names the scrubbed URL: ${line}`);
    assert.doesNotMatch(line, /admin:|admin@/, `no user info in the URL: ${line}`);
    assertSecretAbsent(run, secret, 'closed port');
  });

  it('COUCH_URL with a wrong password: exits non-zero with one line saying the credentials were refused; the wrong password appears nowhere', async () => {
    const { base, password } = split(couchUrl);
    const wrong = `wrong${randomBytes(8).toString('hex')}`;
    const url = new URL(couchUrl);
    url.password = wrong;
    const run = await serveUntilExited({ SYNCGATE_DATA: dir, COUCH_URL: url.toString() });
    const line = assertOneCleanLine(run, 'wrong password');
    assert.match(line, /refused the credentials/, line);
    assert.ok(line.includes(base), `names the Couch: ${line}`);
    assertSecretAbsent(run, wrong, 'wrong password');
    assertSecretAbsent(run, password, 'wrong password (the real one)');
  });

  it('COUCH_URL with a user that is not a server admin: exits non-zero with one line saying it needs admin rights', async () => {
    const { base, auth } = split(couchUrl);
    const name = `gw${randomBytes(4).toString('hex')}`;
    const userPassword = `pw${randomBytes(8).toString('hex')}`;
    const created = await fetch(`${base}/_users/org.couchdb.user:${name}`, {
      method: 'PUT',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, password: userPassword, roles: [], type: 'user' }),
    });
    assert.ok(created.ok, `creating the Couch user: ${created.status} ${await created.text()}`);
    const session = await fetch(`${base}/_session`, {
      headers: { Authorization: `Basic ${Buffer.from(`${name}:${userPassword}`).toString('base64')}` },
    });
    assert.equal(session.status, 200, 'the new user can log in (so only its rights are wrong)');

    const run = await serveUntilExited({ SYNCGATE_DATA: dir, COUCH_URL: `http://${name}:${userPassword}@${new URL(base).host}` });
    const line = assertOneCleanLine(run, 'non-admin user');
    assert.match(line, /not a server admin/, line);
    assert.ok(line.includes(name), `names the user: ${line}`);
    assertSecretAbsent(run, userPassword, 'non-admin user');
  });

  it('COUCH_URL that is not a URL: exits 2 with a configuration message, without echoing the value', async () => {
    for (const value of ['not a url', 'admin:hunter2secret@couch.example:5984', 'couch.example:5984']) {
      const run = await serveUntilExited({ SYNCGATE_DATA: dir, COUCH_URL: value });
      const all = `stderr: ${run.stderr}; stdout: ${run.stdout}`;
      assert.equal(run.code, 2, `${value}: ${all}`);
      assert.doesNotMatch(run.stderr, /^\s+at /m, `${value}: no stack trace — ${all}`);
      const about = run.stderr.split('\n').filter((l) => /COUCH_URL/.test(l));
      assert.equal(about.length, 1, `${value}: one line about COUCH_URL — ${all}`);
      assert.match(about[0] ?? '', /COUCH_URL must be an http\(s\) URL/);
      assert.ok(!run.stderr.includes('hunter2secret') && !run.stdout.includes('hunter2secret'), `${value}: value echoed — ${all}`);
    }
  });

  it('with the right COUCH_URL it starts, /__heartbeat__ answers 200, and the startup log line carries couchUrl without the password', async () => {
    const { password } = split(couchUrl);
    const { COUCH_URL: _inherited, SYNC_MASTER_SECRET: _secret, ...inherited } = process.env;
    const proc = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...inherited, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', SYNCGATE_DATA: dir, COUCH_URL: couchUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stderr?.on('data', (d) => (stderr += String(d)));
    const listening = await new Promise<Record<string, any>>((resolve, reject) => {
      proc.stdout?.on('data', (d) => {
        stdout += String(d);
        for (const line of stdout.split('\n')) {
          if (!line.includes('syncgate listening')) continue;
          try {
            resolve(JSON.parse(line));
          } catch {
            // line not complete yet
          }
        }
      });
      proc.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${stderr}`)));
    });

    const config = listening.config as Record<string, unknown> | undefined;
    assert.ok(config, `the startup line has a config field: ${JSON.stringify(listening)}`);
    const expected = new URL(couchUrl);
    assert.equal(config.couchUrl, `http://${expected.host}`, 'couchUrl is logged scrubbed');

    const hb = await fetch(`${listening.url}/__heartbeat__`);
    assert.equal(hb.status, 200);
    assert.equal(((await hb.json()) as { status: string }).status, 'ok');

    // Everything printed so far, the startup line included, is free of the password.
    assert.ok(!stdout.includes(password), `the Couch password appears on stdout: ${stdout}`);
    assert.ok(!stderr.includes(password), `the Couch password appears on stderr: ${stderr}`);
    assert.ok(!stdout.includes(`${expected.username}:`), 'no user:password pair on stdout');
  });
});
