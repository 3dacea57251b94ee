// The command line: `syncgate token --new-user` prints credentials that a gateway started on
// the same data folder (secret generated there on first start) accepts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { credentials } from '../server/accounts/onepw.js';
import { SyncClient, type Credentials } from './support/client.js';
import { spawnGateway, type GatewayProcess } from './support/process.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../bin/syncgate.js', import.meta.url));

describe('syncgate command line', function () {
  this.timeout(30_000);
  let dir: string;
  let gw: GatewayProcess | undefined;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'syncgate-cli-'))));
  afterEach(async () => {
    await gw?.kill('SIGTERM');
    gw = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('syncgate token --new-user prints one JSON line of credentials that the gateway accepts', async () => {
    gw = await spawnGateway({ SYNCGATE_DATA: dir, PORT: '0', SYNC_MASTER_SECRET: '' });
    const env = { ...process.env, SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: '' };
    const { stdout } = await run(process.execPath, [BIN, 'token', '--new-user', '--url', gw.url], { env });
    assert.equal(stdout.trim().split('\n').length, 1);
    const creds = JSON.parse(stdout);
    assert.deepEqual(Object.keys(creds).sort(), ['api_endpoint', 'duration', 'id', 'key', 'uid']);
    assert.equal(creds.api_endpoint, `${gw.url}/1.5/${creds.uid}`);
    assert.equal(creds.duration, 3600);
    assert.equal((await stat(join(dir, 'master-secret'))).mode & 0o077, 0, 'the generated secret is private');

    const u = new SyncClient(creds);
    const res = await u.get('/info/collections');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), {});
    const put = await u.put('/storage/meta/global', { payload: 'x' });
    assert.equal(put.status, 200);
  });

  it('syncgate account create|token|list|delete: a person\'s first sync credentials from the command line, while the gateway runs', async () => {
    gw = await spawnGateway({ SYNCGATE_DATA: dir, PORT: '0', SYNC_MASTER_SECRET: '', SYNCGATE_FXA: 'false' });
    const env = { ...process.env, SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: '' };
    const { stdout } = await run(process.execPath, [BIN, 'account', 'create', 'alice@example.com', '--json', '--url', gw.url], { env });
    assert.equal(stdout.trim().split('\n').length, 1);
    const out = JSON.parse(stdout) as { bearer: string; keyId: string; token_url: string };
    assert.deepEqual(Object.keys(out).sort(), ['bearer', 'keyId', 'token_url']);
    assert.equal(out.token_url, `${gw.url}/1.0/sync/1.5`);
    assert.match(out.keyId, /^\d+-[A-Za-z0-9_-]{22}$/);
    assert.equal((await stat(join(dir, 'issuer-key.json'))).mode & 0o077, 0, 'the issuer key is private');

    // What Firefox does with it: the token endpoint, then Hawk-signed storage calls.
    const token = await fetch(out.token_url, { headers: { Authorization: `Bearer ${out.bearer}`, 'X-KeyID': out.keyId } });
    assert.equal(token.status, 200);
    const u = new SyncClient((await token.json()) as Credentials);
    assert.equal((await u.put('/storage/meta/global', { payload: 'x' }, { 'X-If-Unmodified-Since': '0' })).status, 200);

    await assert.rejects(run(process.execPath, [BIN, 'account', 'create', 'alice@example.com'], { env }), /already exists/);
    await assert.rejects(run(process.execPath, [BIN, 'account', 'create', 'not-an-email'], { env }), /not an email/);
    const again = JSON.parse((await run(process.execPath, [BIN, 'account', 'token', 'alice@example.com', '--json', '--url', gw.url], { env })).stdout);
    assert.equal(again.keyId, out.keyId);
    const second = await fetch(out.token_url, { headers: { Authorization: `Bearer ${again.bearer}`, 'X-KeyID': again.keyId } });
    assert.equal(((await second.json()) as Credentials).uid, u.uid);

    const list = (await run(process.execPath, [BIN, 'account', 'list'], { env })).stdout;
    assert.match(list, /^alice@example\.com\t\d{4}-/m);
    assert.doesNotMatch(list, /eyJ/, 'no tokens in the list');
    await run(process.execPath, [BIN, 'account', 'delete', 'alice@example.com'], { env });
    assert.equal((await run(process.execPath, [BIN, 'account', 'list'], { env })).stdout, '');
    await assert.rejects(run(process.execPath, [BIN, 'account', 'delete', 'alice@example.com'], { env }), /no account/);
    await new Promise((r) => setTimeout(r, 2100));
    const refused = await fetch(out.token_url, { headers: { Authorization: `Bearer ${out.bearer}`, 'X-KeyID': out.keyId } });
    assert.equal(refused.status, 401);
  });

  it('syncgate account create --firefox|reset|delete: links for a person to choose a password, with sign-up off', async () => {
    const ADMIN = 'a'.repeat(32);
    const running = await spawnGateway({ SYNCGATE_DATA: dir, PORT: '0', SYNC_MASTER_SECRET: '', SYNCGATE_FXA: 'false', SYNCGATE_SIGNUP: 'false', SYNCGATE_ADMIN_TOKEN: ADMIN });
    gw = running;
    const env = { ...process.env, SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: '', SYNCGATE_ADMIN_TOKEN: ADMIN };
    const cli = async (...args: string[]) => (await run(process.execPath, [BIN, 'account', ...args, '--server', running.url], { env })).stdout;
    const address = 'bob@example.com';
    const authPW = (password: string) => credentials(address, password).authPW.toString('hex');

    const human = await cli('create', address, '--firefox');
    assert.match(human, new RegExp(`^Send ${address} this link to sign up and choose a password \\(once, until \\d{4}-`));
    const invite = JSON.parse(await cli('create', 'carol@example.com', '--firefox', '--json')) as { email: string; link: string; expiresAt: string };
    assert.deepEqual(Object.keys(invite).sort(), ['email', 'expiresAt', 'link']);
    const link = new URL(/^http\S+$/m.exec(human)?.[0] ?? '');
    assert.equal(link.origin, running.url);
    const signUp = await fetch(`${running.url}/v1/account/create`, { method: 'POST', body: JSON.stringify({ email: address, authPW: authPW('first password'), invite: link.searchParams.get('invite') }) });
    assert.equal(signUp.status, 200, await signUp.text());
    await assert.rejects(cli('create', address, '--firefox'), /409 there is already an account/);

    const reset = new URL(JSON.parse(await cli('reset', address, '--json')).link as string);
    const set = await fetch(`${running.url}/v1/account/reset`, { method: 'POST', body: JSON.stringify({ email: address, authPW: authPW('second password'), token: reset.searchParams.get('reset') }) });
    assert.equal(set.status, 200, await set.text());
    const login = (password: string) => fetch(`${running.url}/v1/account/login`, { method: 'POST', body: JSON.stringify({ email: address, authPW: authPW(password) }) });
    assert.equal((await login('first password')).status, 400);
    assert.equal((await login('second password')).status, 200);

    assert.equal(await cli('delete', address), `deleted ${address}\n`);
    assert.equal((await login('second password')).status, 400);
    await assert.rejects(cli('delete', address), /no account/);
    await assert.rejects(cli('reset', address), /404 no such account/);
  });

  it('syncgate token refuses a missing --url and a bad --duration', async () => {
    const env = { ...process.env, SYNCGATE_DATA: dir };
    await assert.rejects(run(process.execPath, [BIN, 'token', '--new-user'], { env }));
    await assert.rejects(run(process.execPath, [BIN, 'token', '--new-user', '--url', 'http://x', '--duration', '-5'], { env }));
  });

  it('syncgate serve on a data folder another gateway holds exits 1 naming the folder', async () => {
    gw = await spawnGateway({ SYNCGATE_DATA: dir, PORT: '0' });
    const env = { ...process.env, SYNCGATE_DATA: dir, PORT: '0' };
    const err = await run(process.execPath, [BIN, 'serve'], { env }).then(
      () => assert.fail('should exit non-zero'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 1);
    assert.match(err.stderr, /in use by another syncgate process/);
    assert.doesNotMatch(err.stderr, /\n\s+at /, 'no stack trace');
  });

  it('syncgate serve with an invalid PORT exits 2 with a clear message', async () => {
    const env = { ...process.env, SYNCGATE_DATA: dir, PORT: 'eighty' };
    const err = await run(process.execPath, [BIN, 'serve'], { env }).then(
      () => assert.fail('should exit non-zero'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2);
    assert.match(err.stderr, /PORT .* must be an integer/);
  });
});
