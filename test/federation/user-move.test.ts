// Users moved to another node while their devices keep syncing, through two gateways, with
// three nodes of three operators: every acknowledged write is on the new primary, nothing but
// 503 + Retry-After is answered meanwhile, and a second device's incremental syncs list every
// record exactly once (timestamps are kept). One move goes through `syncgate user move`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { adminApi, federationEnv } from '../support/admin.js';
import { SyncClient, type Credentials } from '../support/client.js';
import { startCouchNode, type CouchNode } from '../support/couch.js';
import { dbExists, medianMax, recordsOnNode, syncWithoutPause, type DeviceLoad } from '../support/move-load.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const ADMIN = randomBytes(24).toString('hex');
const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('moving users between nodes while they sync', function () {
  this.timeout(240_000);
  let registryCouch: CouchNode;
  const nodes = new Map<string, CouchNode>();
  let dir: string;
  let env: Record<string, string>;
  const gateways: GatewayProcess[] = [];
  let log = '';
  const admin = adminApi(() => gateways[0]?.url, ADMIN);

  before(async () => {
    const started = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode(), startCouchNode()]);
    registryCouch = started[0] as CouchNode;
    nodes.set('a', started[1] as CouchNode).set('b', started[2] as CouchNode).set('c', started[3] as CouchNode);
    dir = await mkdtemp(join(tmpdir(), 'syncgate-move-'));
    env = federationEnv(dir, registryCouch.url, ADMIN, { SYNCGATE_MOVE_GRACE_SEC: '1', SYNCGATE_PURGE_INTERVAL: '1', LOG_LEVEL: 'info' });
    gateways.push(await spawnGateway(env), await spawnGateway(env));
    for (const g of gateways) g.child.stdout?.on('data', (d) => (log += String(d)));
    for (const n of ['a', 'b', 'c']) {
      await admin('POST', '/operators', { name: `op-${n}` });
      await admin('POST', '/nodes', { name: n, operator: `op-${n}`, url: nodes.get(n)?.url, capacity: 100 });
    }
    await admin('POST', '/nodes/default/drain');
    await sleep(1500); // both gateways have read the nodes from the registry
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && process.env.SYNCGATE_TEST_LOG) writeFileSync(`${process.env.SYNCGATE_TEST_LOG}.user-move`, log);
  });

  after(async () => {
    for (const g of gateways) await g.kill('SIGTERM');
    await Promise.all([registryCouch, ...nodes.values()].map((c) => c?.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  async function newUser(): Promise<{ email: string; creds: Credentials }> {
    const accounts = new LocalAccounts(dir);
    const acct = await accounts.create(`move-${randomBytes(4).toString('hex')}@example.com`);
    const res = await requestToken(gateways[0]?.url as string, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });
    assert.equal(res.status, 200, res.text);
    return { email: acct.email, creds: credentialsOf(res) };
  }

  const clientsOf = (creds: Credentials) => () => gateways.map((g) => new SyncClient({ ...creds, api_endpoint: `${g.url}/1.5/${creds.uid}` }));

  async function waitMoved(uid: number, to: string): Promise<{ outcome: string; switchMs?: number; reason?: string }> {
    for (const by = Date.now() + 120_000; Date.now() < by; await sleep(250)) {
      const s = await admin('GET', `/users/${uid}/move`);
      if (s.move === null && s.lastMove) {
        assert.equal(s.lastMove.outcome, 'moved', `uid ${uid}: ${JSON.stringify(s.lastMove)}`);
        assert.equal(s.node, to);
        return s.lastMove;
      }
    }
    throw new Error(`uid ${uid} did not finish moving to ${to}`);
  }

  it('moves four users, one by the command line, with no acknowledged write lost, only 503 answered meanwhile, and every record listed once', async () => {
    const users = await Promise.all(Array.from({ length: 4 }, () => newUser()));
    const loads: DeviceLoad[] = users.map((u) => syncWithoutPause(clientsOf(u.creds)));
    await sleep(1500); // records on the source before the move starts

    const moves: Array<{ uid: number; from: string; to: string; replica: string | null }> = [];
    for (const [i, u] of users.entries()) {
      const placed = await admin('GET', `/uids/${u.creds.uid}`);
      // Somewhere it is not: onto its replica's node for half of them, a third node for the rest.
      const to = i % 2 === 0 ? (placed.replica as string) : (['a', 'b', 'c'].find((n) => n !== placed.node && n !== placed.replica) as string);
      moves.push({ uid: u.creds.uid, from: placed.node, to, replica: placed.replica });
    }
    // The first by `syncgate user move <email> --to <node>`, which waits until it is over.
    const cli = promisify(execFile)(process.execPath, [BIN, 'user', 'move', users[0]?.email as string, '--to', moves[0]?.to as string, '--server', gateways[1]?.url as string], {
      env: { ...process.env, SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_DATA: dir },
    });
    for (const m of moves.slice(1)) {
      const answer = await admin('POST', `/users/${m.uid}/move`, { to: m.to });
      assert.equal(answer.move.to, m.to);
    }
    const { stdout } = await cli;
    assert.match(stdout, new RegExp(`uid ${moves[0]?.uid}: moved to ${moves[0]?.to} in [\\d.]+ s`));
    const ended = await Promise.all(moves.map((m) => waitMoved(m.uid, m.to)));
    await sleep(1500); // the devices sync on from the new primary for a while
    for (const l of loads) await l.stop();

    for (const [i, m] of moves.entries()) {
      const load = loads[i] as DeviceLoad;
      assert.deepEqual(load.errors, [], `uid ${m.uid}: only 200 and 503 + Retry-After`);
      assert.ok(load.acked.size > 10, `uid ${m.uid} kept writing (${load.acked.size} acknowledged)`);
      const onTarget = await recordsOnNode(nodes.get(m.to) as CouchNode, m.uid, 'history');
      assert.deepEqual([...load.acked].filter((id) => !onTarget.has(id)), [], `uid ${m.uid}: every acknowledged write is on ${m.to}`);
      assert.deepEqual([...load.acked].filter((id) => !load.seen.has(id)), [], `uid ${m.uid}: the second device listed every acknowledged record`);
      assert.deepEqual(load.duplicates.filter((id) => !load.retried.has(id)), [], `uid ${m.uid}: no record listed twice`);
      const placed = await admin('GET', `/uids/${m.uid}`);
      assert.equal(placed.node, m.to);
      assert.notEqual(placed.replica, m.to);
      assert.notEqual(placed.replica, m.from, 'the source is not kept as the replica');
    }
    // Each move is in the registry's event log, which the dashboard lists.
    const events = (await admin('GET', '/dashboard/data')).events as Array<{ kind: string; uid?: number; from?: string; to?: string }>;
    for (const m of moves) assert.ok(events.some((e) => e.kind === 'move' && e.uid === m.uid && e.from === m.from && e.to === m.to), `uid ${m.uid}: no move event in ${JSON.stringify(events)}`);
    const windows = loads.map((l) => Math.max(0, ...l.refusals));
    const { median, max } = medianMax(windows);
    const switches = medianMax(ended.map((e) => e.switchMs ?? 0));
    console.log(`      503 window per moved user: median ${median} ms, max ${max} ms; switch (registry) median ${switches.median} ms, max ${switches.max} ms`);
    assert.ok(max < 30_000, `no user was refused for long (${max} ms)`);

    // The copies they left are deleted after the grace period (1 s here).
    for (const m of moves) {
      for (const by = Date.now() + 30_000; await dbExists(nodes.get(m.from) as CouchNode, m.uid); await sleep(250)) {
        assert.ok(Date.now() < by, `uid ${m.uid}: the copy on ${m.from} was deleted`);
      }
      assert.ok(await dbExists(nodes.get(m.to) as CouchNode, m.uid));
    }
  });

  it('refuses a move to a node that does not exist, to where the user is, and of an unknown uid', async () => {
    const { creds } = await newUser();
    const placed = await admin('GET', `/uids/${creds.uid}`);
    const call = (who: string, to: string) =>
      fetch(`${gateways[0]?.url}/__admin__/users/${who}/move`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ to }) });
    assert.equal((await call(String(creds.uid), 'nowhere')).status, 404);
    assert.equal((await call(String(creds.uid), placed.node)).status, 409);
    assert.equal((await call('1', 'a')).status, 404);
  });
});
