// The federation's metrics on a real deployment's shape: two Couch nodes of two operators and
// a registry on a third, one gateway process. Calls to each node, replication to the replica
// and its lag, a node killed (its state, the failover, the checks that found it dead) and back
// (the failback), as counted on /__metrics__ and read through a Prometheus text parser.
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
import { scrape } from '../support/scrape.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('federation metrics: calls per node, replication, a node killed and back', function () {
  this.timeout(180_000);
  let registryCouch: CouchNode;
  const nodes = new Map<string, CouchNode>();
  let dir: string;
  let gw: GatewayProcess;
  const admin = adminApi(() => gw?.url, ADMIN);
  const nodeState = async (name: string): Promise<string | undefined> => (await admin('GET', '/nodes')).find((n: { name: string }) => n.name === name)?.state;
  const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 60_000) => {
    const until = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > until) assert.fail(`timed out waiting for: ${what}`);
      await sleep(200);
    }
  };

  before(async () => {
    const started = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode()]);
    registryCouch = started[0] as CouchNode;
    nodes.set('a', started[1] as CouchNode).set('b', started[2] as CouchNode);
    dir = await mkdtemp(join(tmpdir(), 'syncgate-metrics-'));
    gw = await spawnGateway(federationEnv(dir, registryCouch.url, ADMIN, { SYNCGATE_HEALTH_TIMEOUT_MS: '2000', SYNCGATE_FAILBACK_LEASE_MS: '2000' }));
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

  it('counts each node\'s calls and their latency, replications and their lag; a killed node shows failed, with one failover and the checks that found it dead; back, one failback', async () => {
    const accounts = new LocalAccounts(dir);
    const acct = await accounts.create(`metrics-${randomBytes(4).toString('hex')}@example.com`);
    const res = await requestToken(gw.url, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });
    assert.equal(res.status, 200, res.text);
    const client = new SyncClient(credentialsOf(res));
    const placed = await admin('GET', `/uids/${client.uid}`);
    const [primary, replica] = [placed.node as string, placed.replica as string];
    assert.deepEqual([primary, replica].sort(), ['a', 'b']);

    for (let i = 0; i < 3; i++) assert.equal((await client.post('/storage/history', [{ id: `r${i}`, payload: 'x' }])).status, 200);
    await waitFor('the writes replicated', async () => (await scrape(gw.url, ADMIN)).value('syncgate_replications_completed_total') >= 1);
    let m = await scrape(gw.url, ADMIN);
    assert.ok(m.value('syncgate_couch_requests_total', { node: primary, outcome: 'ok' }) > 0, 'calls to the primary');
    for (const n of ['a', 'b', 'default']) {
      // Every attempt is timed once, per node.
      assert.equal(m.count('syncgate_couch_request_duration_seconds', { node: n }), m.value('syncgate_couch_requests_total', { node: n }), n);
    }
    // The lag of each completed replication is observed once.
    assert.equal(m.count('syncgate_replication_lag_seconds'), m.value('syncgate_replications_completed_total'));
    assert.equal(m.value('syncgate_replications_failed_total'), 0);
    for (const n of ['a', 'b']) assert.equal(m.value('syncgate_node_state', { node: n, state: 'up' }), 1);
    assert.equal(m.value('syncgate_node_state', { node: 'default', state: 'draining' }), 1);
    assert.equal(m.value('syncgate_node_user_databases', { node: primary }), 1);
    assert.equal(m.value('syncgate_node_user_databases', { node: replica }), 1, 'a replica is a user database too');
    assert.equal(m.value('syncgate_node_capacity', { node: primary }), 100);
    assert.equal(m.value('syncgate_node_failovers_total'), 0);

    await nodes.get(primary)!.kill();
    await waitFor(`${primary} marked failed`, async () => (await nodeState(primary)) === 'failed');
    // Served from the replica meanwhile (a 503 while the gateway learns of it is allowed).
    await waitFor('a write served by the replica', async () => (await client.post('/storage/history', [{ id: 'during', payload: 'x' }])).status === 200);
    m = await scrape(gw.url, ADMIN);
    assert.equal(m.value('syncgate_node_state', { node: primary, state: 'failed' }), 1);
    assert.equal(m.value('syncgate_node_state', { node: primary }), 1, 'one state at a time');
    assert.equal(m.value('syncgate_node_failovers_total', { node: primary }), 1);
    assert.equal(m.value('syncgate_node_failovers_total'), 1);
    assert.ok(m.value('syncgate_node_health_checks_total', { node: primary, outcome: 'unreachable' }) >= 1, 'the checks that found it dead');

    await nodes.get(primary)!.restart();
    await waitFor(`${primary} merged back`, async () => (await nodeState(primary)) === 'active');
    // The admin API may read the node active from the registry a moment before the merge's own
    // answer reaches the gateway that counts it.
    await waitFor('the failback counted', async () => (await scrape(gw.url, ADMIN)).value('syncgate_node_failbacks_total') >= 1);
    m = await scrape(gw.url, ADMIN);
    assert.equal(m.value('syncgate_node_failbacks_total', { node: primary }), 1);
    assert.equal(m.value('syncgate_node_state', { node: primary, state: 'up' }), 1);
  });
});
