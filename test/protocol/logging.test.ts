// One structured log line per request; the user appears only as a keyed hash.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp } from '../../server/app.js';
import { makeToken } from '../../server/auth/tokenlib.js';
import { loadConfig } from '../../server/config.js';
import { createStore } from '../../storage/create-store.js';
import { SyncClient } from '../support/client.js';

describe('request logs', () => {
  it('GET info/collections logs one JSON line with method, route, status and a hashed user, never the uid or token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-log-'));
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const secret = 'a-test-master-secret-of-enough-length';
    const config = loadConfig({ SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: secret });
    const store = createStore(config);
    const app = createApp({ config, store, masterSecret: secret, logger: pino({ level: 'info' }, sink) });
    const server = createServer(app.callback()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const uid = 987654321;
      const t = makeToken(secret, { uid, node: url, expires: Math.floor(Date.now() / 1000) + 60 });
      const u = new SyncClient({ id: t.id, key: t.key, uid, api_endpoint: `${url}/1.5/${uid}` });
      assert.equal((await u.get('/info/collections')).status, 200);
      assert.equal((await u.get('/storage/nope/../../x')).status, 404);
      await new Promise((r) => setTimeout(r, 50));
      const requestLines = lines.filter((l) => l.msg === 'request');
      assert.equal(requestLines.length, 2);
      const first = requestLines[0]!;
      assert.equal(first.method, 'GET');
      assert.equal(first.route, 'info/collections');
      assert.equal(first.status, 200);
      assert.match(String(first.user), /^[0-9a-f]{16}$/);
      const all = JSON.stringify(lines);
      assert.ok(!all.includes(String(uid)), 'the uid never appears in logs');
      assert.ok(!all.includes(t.id.slice(0, 20)), 'the token never appears in logs');
    } finally {
      server.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
