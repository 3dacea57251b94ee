// The registry's Couch dies (SIGKILL) while clients sync through two gateways. What needs the
// registry stops; nothing else does:
//   - both gateways stay up (the _changes follower and every background task survive it);
//   - users already placed keep syncing from the gateways' cached placements and nodes, and a
//     token request that changes nothing is answered from the cached account;
//   - a new user (a registry write) gets 503 + Retry-After;
//   - once the registry is back, a new user is placed and syncs, and no acknowledged write of
//     the outage is missing.
// And a gateway on one Couch (COUCH_URL) whose Couch is killed: 503 + Retry-After, never an exit.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToken } from '../../server/auth/tokenlib.js';
import { keyIdOf, LocalAccounts, type LocalAccount } from '../../server/tokenserver/local-accounts.js';
import { adminApi, federationEnv } from '../support/admin.js';
import { SyncClient } from '../support/client.js';
import { startCouchNode, type CouchNode } from '../support/couch.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tally {
  ok: number;
  unavailable: number;
  /** Connection refused or reset: a gateway that is gone. */
  refused: number;
  other: string[];
}

describe('registry outage: the registry Couch killed while clients sync through two gateways', function () {
  this.timeout(120_000);
  let registryCouch: CouchNode;
  let nodes: CouchNode[] = [];
  const gws: GatewayProcess[] = [];
  let dir: string;
  let accounts: LocalAccounts;
  let log = '';

  const admin = adminApi(() => gws[0]?.url, ADMIN);
  const token = async (gw: GatewayProcess, acct: LocalAccount) =>
    requestToken(gw.url, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });

  before(async () => {
    [registryCouch, ...nodes] = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode()]) as [CouchNode, CouchNode, CouchNode];
    dir = await mkdtemp(join(tmpdir(), 'syncgate-registry-outage-'));
    const env = federationEnv(dir, registryCouch.url, ADMIN, { SYNCGATE_COUCH_TIMEOUT_MS: '3000' });
    for (let i = 0; i < 2; i++) {
      const gw = await spawnGateway(env);
      gw.child.stdout?.on('data', (d) => (log += String(d)));
      gws.push(gw);
    }
    accounts = new LocalAccounts(dir);
    for (const [i, n] of ['a', 'b'].entries()) {
      await admin('POST', '/operators', { name: `op-${n}` });
      await admin('POST', '/nodes', { name: n, operator: `op-${n}`, url: nodes[i]?.url, capacity: 100 });
    }
    await admin('POST', '/nodes/default/drain');
  });

  after(async () => {
    for (const gw of gws) await gw.kill('SIGTERM');
    await Promise.all([registryCouch, ...nodes].map((c) => c?.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('both gateways stay up, placed users keep syncing, a new user gets 503 + Retry-After, and after the registry returns a new user is placed', async () => {
    // Users placed before the outage, each seen once by both gateways (as behind a balancer).
    const users: Array<{ acct: LocalAccount; clients: SyncClient[]; acked: string[] }> = [];
    for (let i = 0; i < 4; i++) {
      const acct = await accounts.create(`placed-${i}-${randomBytes(3).toString('hex')}@example.com`);
      const res = await token(gws[0] as GatewayProcess, acct);
      assert.equal(res.status, 200, res.text);
      const creds = credentialsOf(res);
      assert.match((await admin('GET', `/uids/${creds.uid}`)).node, /^[ab]$/);
      const clients = gws.map((g) => new SyncClient({ ...creds, api_endpoint: `${g.url}/1.5/${creds.uid}` }));
      // The second gateway learns of the nodes added through the first from the feed (1 s).
      for (const c of clients) {
        let status = 0;
        for (let t = 0; t < 50 && status !== 200; t++) {
          status = (await c.get('/info/collections')).status;
          if (status !== 200) await sleep(100);
        }
        assert.equal(status, 200);
      }
      users.push({ acct, clients, acked: [] });
    }

    const tally: Tally = { ok: 0, unavailable: 0, refused: 0, other: [] };
    let syncing = true;
    const loop = async (u: (typeof users)[number]) => {
      for (let n = 0; syncing; n++) {
        const client = u.clients[n % u.clients.length] as SyncClient;
        const id = `r${n}`;
        try {
          const res = n % 2 === 0 ? await client.post('/storage/history', [{ id, payload: `p${n}` }]) : await client.get('/info/collections');
          if (res.status === 200) {
            tally.ok++;
            if (n % 2 === 0 && res.json().success.includes(id)) u.acked.push(id);
          } else if (res.status === 503 && res.header('retry-after')) tally.unavailable++;
          else tally.other.push(`${res.status} ${res.text.slice(0, 60)}`);
        } catch {
          tally.refused++;
        }
        await sleep(20);
      }
    };
    const loops = users.map(loop);
    await sleep(1000);

    await registryCouch.kill();
    const killedAt = Date.now();
    const outageStart = { ...tally };
    await sleep(1500); // every follower has tried the dead registry by now

    // A new user needs a registry write: 503 + Retry-After, on either gateway.
    const newcomer = await accounts.create(`new-${randomBytes(3).toString('hex')}@example.com`);
    for (const gw of gws) {
      const res = await token(gw, newcomer);
      assert.equal(res.status, 503, res.text);
      assert.ok(Number(res.header('retry-after')) > 0, 'Retry-After on the 503');
    }
    // A placed user's token request changes nothing: answered from the account gateway 1 cached.
    const again = await token(gws[0] as GatewayProcess, (users[0] as (typeof users)[number]).acct);
    assert.equal(again.status, 200, `a placed user's token during the outage: ${again.text}`);
    assert.equal(credentialsOf(again).uid, (users[0] as (typeof users)[number]).clients[0]?.uid);

    await sleep(2500);
    const measuredAt = Date.now();
    const during = { ok: tally.ok - outageStart.ok, unavailable: tally.unavailable - outageStart.unavailable, refused: tally.refused - outageStart.refused };
    for (const gw of gws) assert.equal(gw.child.exitCode, null, 'the gateway process is still running');

    await registryCouch.restart();
    const backAt = Date.now();
    let placedAfter: Awaited<ReturnType<typeof token>> | undefined;
    for (let i = 0; i < 100; i++) {
      placedAfter = await token(gws[1] as GatewayProcess, newcomer);
      if (placedAfter.status === 200) break;
      await sleep(200);
    }
    assert.equal(placedAfter?.status, 200, `a new user is placed once the registry is back: ${placedAfter?.text}`);
    const newcomerMs = Date.now() - backAt;
    const fresh = new SyncClient(credentialsOf(placedAfter as Awaited<ReturnType<typeof token>>));
    assert.match((await admin('GET', `/uids/${fresh.uid}`)).node, /^[ab]$/);
    assert.equal((await fresh.put('/storage/history/first', { payload: 'x' })).status, 200);

    syncing = false;
    await Promise.all(loops);
    console.log(
      `      registry outage of ${((backAt - killedAt) / 1000).toFixed(1)} s: ${during.ok} requests of placed users served in its first ${((measuredAt - killedAt) / 1000).toFixed(1)} s, ${during.unavailable} answered 503, ${during.refused} refused; new user placed ${newcomerMs} ms after the registry returned`,
    );
    for (const gw of gws) assert.equal(gw.child.exitCode, null, 'the gateway process is still running');
    assert.equal(tally.refused, 0, 'no request was refused: both gateways stayed up');
    assert.deepEqual(tally.other, [], 'every answer was 200 or 503 with Retry-After');
    assert.equal(during.unavailable, 0, 'users already placed were never refused during the outage');
    assert.ok(during.ok > 50, `placed users kept syncing during the outage (${during.ok} answers)`);
    assert.match(log, /"msg":"registry unreachable/);
    for (const u of users) {
      const listed = await (u.clients[1] as SyncClient).get('/storage/history');
      assert.equal(listed.status, 200);
      const stored = new Set(listed.json() as string[]);
      assert.deepEqual(u.acked.filter((id) => !stored.has(id)), [], 'every acknowledged write is stored');
    }
  });
});

describe('one Couch (COUCH_URL) killed under a syncing client', function () {
  this.timeout(120_000);
  let couch: CouchNode;
  let gw: GatewayProcess;
  let dir: string;
  const secret = randomBytes(24).toString('hex');

  before(async () => {
    couch = await startCouchNode();
    dir = await mkdtemp(join(tmpdir(), 'syncgate-couch-outage-'));
    gw = await spawnGateway({ SYNCGATE_DATA: dir, PORT: '0', COUCH_URL: couch.url, SYNC_MASTER_SECRET: secret, SYNCGATE_FXA: 'false', SYNCGATE_COUCH_TIMEOUT_MS: '3000' });
  });
  after(async () => {
    await gw.kill('SIGTERM');
    await couch.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the gateway answers 503 + Retry-After while its Couch is down, never exits, and serves every acknowledged write once Couch is back', async () => {
    const uid = 1 + Math.floor(Math.random() * 2 ** 30);
    const t = makeToken(secret, { uid, node: gw.url, expires: Math.floor(Date.now() / 1000) + 3600 });
    const client = new SyncClient({ id: t.id, key: t.key, uid, api_endpoint: `${gw.url}/1.5/${uid}` });
    assert.equal((await client.put('/storage/history/before', { payload: 'x' })).status, 200);

    await couch.kill();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await client.put(`/storage/history/down${i}`, { payload: 'x' });
      statuses.push(res.status);
      if (res.status === 503) assert.ok(res.header('retry-after'), '503 carries Retry-After');
      await sleep(150);
    }
    assert.ok(statuses.every((s) => s === 503), `every write while Couch is down: 503 (${statuses.join(',')})`);
    assert.equal(gw.child.exitCode, null, 'the gateway is still running');
    assert.equal((await fetch(`${gw.url}/__heartbeat__`)).status, 503, 'its heartbeat says the store cannot serve');

    await couch.restart();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await client.put('/storage/history/after', { payload: 'y' })).status;
      if (status !== 200) await sleep(200);
    }
    assert.equal(status, 200, 'writes are served again once Couch is back');
    assert.deepEqual(((await client.get('/storage/history')).json() as string[]).sort(), ['after', 'before']);
    assert.equal(gw.child.exitCode, null);
  });
});
