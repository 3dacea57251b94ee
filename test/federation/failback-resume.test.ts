// Failback copies the records only the returning node had to the serving copy, then restamps
// them so a device that synced from that copy meanwhile lists them. Here the gateway doing it
// dies between the two (SIGKILL at a failpoint): the gateway that takes over copies nothing
// new, and must still restamp what the dead one copied (federation/restamp-intent.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { adminApi, federationEnv } from '../support/admin.js';
import { SyncClient } from '../support/client.js';
import { startCouchNode, type CouchNode } from '../support/couch.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('failback stopped between copy and restamp (the merging gateway killed)', function () {
  this.timeout(180_000);
  let registryCouch: CouchNode;
  const nodes = new Map<string, CouchNode>();
  let dir: string;
  let env: Record<string, string>;
  let gw: GatewayProcess | undefined;
  let log = '';
  const admin = adminApi(() => gw?.url, ADMIN);
  const nodeState = async (name: string): Promise<string> => (await admin('GET', '/nodes')).find((n: { name: string }) => n.name === name)?.state;
  const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 60_000) => {
    const by = Date.now() + ms;
    while (!(await ok())) {
      assert.ok(Date.now() < by, `timed out waiting for ${what}`);
      await sleep(250);
    }
  };
  const spawn = async (extra: Record<string, string> = {}) => {
    const g = await spawnGateway({ ...env, ...extra });
    g.child.stdout?.on('data', (d) => (log += String(d)));
    return g;
  };

  before(async () => {
    const [r, a, b] = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode()]);
    registryCouch = r as CouchNode;
    nodes.set('a', a as CouchNode).set('b', b as CouchNode);
    dir = await mkdtemp(join(tmpdir(), 'syncgate-failback-resume-'));
    env = federationEnv(dir, registryCouch.url, ADMIN, {
      SYNCGATE_HEALTH_TIMEOUT_MS: '5000',
      // Nothing replicates by itself: every write before the kill is on the primary alone.
      SYNCGATE_REPLICATION_DELAY_MS: '600000',
      SYNCGATE_FAILBACK_LEASE_MS: '2000',
    });
    gw = await spawn({ SYNCGATE_FAILPOINT: 'failback:after-copy' });
    for (const n of ['a', 'b']) {
      await admin('POST', '/operators', { name: `op-${n}` });
      await admin('POST', '/nodes', { name: n, operator: `op-${n}`, url: nodes.get(n)?.url, capacity: 100 });
    }
    await admin('POST', '/nodes/default/drain');
  });

  after(async () => {
    await gw?.kill('SIGTERM');
    await Promise.all([registryCouch, ...nodes.values()].map((c) => c?.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('the gateway that takes over restamps what the dead one copied: a device that synced from the replica lists every record', async () => {
    const accounts = new LocalAccounts(dir);
    const acct = await accounts.create(`resume-${randomBytes(4).toString('hex')}@example.com`);
    const res = await requestToken(gw?.url as string, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });
    assert.equal(res.status, 200, res.text);
    const creds = credentialsOf(res);
    const placed = await admin('GET', `/uids/${creds.uid}`);
    const victim = placed.node as string;
    const client = (g: GatewayProcess) => new SyncClient({ ...creds, api_endpoint: `${g.url}/1.5/${creds.uid}` });

    const before = Array.from({ length: 5 }, (_, i) => ({ id: `before-${i}`, payload: `b${i}` }));
    assert.equal((await client(gw as GatewayProcess).post('/storage/history', before)).status, 200);

    await nodes.get(victim)?.kill();
    await waitFor(`node ${victim} marked failed`, async () => (await nodeState(victim)) === 'failed');
    // Served from the replica now, which has none of the records above.
    let written = false;
    await waitFor('a write on the replica', async () => (written = (await client(gw as GatewayProcess).post('/storage/history', [{ id: 'outage', payload: 'o' }])).status === 200));
    assert.ok(written);
    const device = await client(gw as GatewayProcess).get('/storage/history?full=1');
    assert.equal(device.status, 200);
    assert.deepEqual((device.json() as Array<{ id: string }>).map((r) => r.id), ['outage'], 'the replica had only the outage write');
    const lastSync = Number(device.header('x-last-modified'));

    // Back: the gateway starts the failback and dies right after copying the first user.
    await nodes.get(victim)?.restart();
    await waitFor('the merging gateway to die at the failpoint', async () => gw?.child.exitCode !== null || gw?.child.signalCode !== null);
    assert.equal(gw?.child.signalCode, 'SIGKILL', 'killed at the failpoint, after the copy');
    assert.match(log, /node answers again/);
    assert.doesNotMatch(log, /node merged back/);

    gw = await spawn();
    await waitFor(`node ${victim} merged back by the second gateway`, async () => (await nodeState(victim)) === 'active');
    const merged = /"failback":\{"node":"[ab]","users":(\d+),"restamped":(\d+)[^}]*\},"msg":"node merged back/;
    await waitFor('the failback report (logs are buffered)', async () => merged.test(log), 10_000);
    const report = merged.exec(log);
    assert.ok(report, 'the second gateway logged its failback');
    const events = ((await admin('GET', '/dashboard/data')).events as Array<{ kind: string; node?: string }>).filter((e) => e.node === victim).map((e) => e.kind);
    assert.deepEqual(events, ['failback', 'failover'], 'the registry logged the failover and the failback (newest first)');
    // The five it copied, and the outage write the primary lacked (the switch merges it back).
    assert.ok(Number(report[2]) >= before.length, `the records the dead gateway copied were restamped by the one that took over (${report[2]})`);

    const next = await client(gw).get(`/storage/history?newer=${lastSync.toFixed(2)}&full=1`);
    assert.equal(next.status, 200);
    const ids = new Set((next.json() as Array<{ id: string }>).map((r) => r.id));
    assert.deepEqual(before.map((r) => r.id).filter((id) => !ids.has(id)), [], 'an incremental sync from the last sync lists every record only the returned node had');
  });
});
