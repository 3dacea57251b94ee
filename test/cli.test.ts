// The command line: `syncgate token --new-user` prints credentials that a gateway started on
// the same data folder (secret generated there on first start) accepts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SyncClient } from './support/client.js';
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
