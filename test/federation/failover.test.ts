// Failover end to end: three Couch servers (pouchdb-server processes) as the nodes of three
// operators, two gateway processes sharing a registry on a fourth, simulated Firefox clients
// writing without pause. One node is killed hard (SIGKILL) in the middle of the load:
//   - its users are served from their replicas within 10 s, with 503 + Retry-After meanwhile
//     and never a 500; other users notice nothing;
//   - when it comes back, failback merges both copies; every write that got a 200 is there,
//     and a second client syncing incrementally (newer= its last sync) sees every record,
//     including those only the returned node had (restamped);
//   - a node that never returns: the records lost in asynchronous mode are counted and
//     printed, and a synchronous operator's node loses none.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { adminApi, federationEnv } from '../support/admin.js';
import { SyncClient, type Credentials } from '../support/client.js';
import { startCouchNode, type CouchNode } from '../support/couch.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface User {
  email: string;
  creds: Credentials;
  /** One client per gateway: requests alternate between them, as behind a load balancer. */
  writers: SyncClient[];
  /** A second device of the same user, syncing incrementally. */
  reader: SyncClient;
  node: string;
  replica: string;
  acked: Map<string, number>;
  statuses: Map<number, number>;
  /** Every answer other than 200: when (ms since the epoch), status, body. */
  trouble: string[];
  firstOkAfter: (t: number) => number | undefined;
  okTimes: number[];
  seen: Set<string>;
  lastSync: number;
  /** What each incremental sync got, for a failure message. */
  syncs: string[];
}

describe('failover and failback with three operators (nodes killed hard mid-load)', function () {
  this.timeout(240_000);
  let registryCouch: CouchNode;
  const nodes = new Map<string, CouchNode>();
  let dir: string;
  const gws: GatewayProcess[] = [];
  let log = '';
  let accounts: LocalAccounts;
  const users: User[] = [];
  let writing = false;
  let loops: Promise<void>[] = [];
  let loopRuns = 0;
  let gatewayEnv: Record<string, string> = {};
  /** Nodes killed for good by an earlier test. */
  const nodeStateCache = new Map<string, string>();
  /** The node killed and brought back. */
  let victim = 'a';

  const admin = adminApi(() => gws[0]?.url, ADMIN);
  /** A GET on a node's Couch directly (as its admin), bypassing every gateway. */
  const onNode = (node: string, path: string): Promise<Response> => {
    const u = new URL(nodes.get(node)?.url as string);
    const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    return fetch(`${u.origin}${path}`, { headers: { Authorization: `Basic ${auth}` } });
  };
  const hasRecord = async (node: string, uid: number, id: string) => (await onNode(node, `/sync_${uid}/${encodeURIComponent(`r:history:${id}`)}`)).status === 200;
  const nodeState = async (name: string): Promise<string> => (await admin('GET', '/nodes')).find((n: { name: string }) => n.name === name)?.state;

  async function addUser(tag: string): Promise<User> {
    const acct = await accounts.create(`${tag}-${randomBytes(4).toString('hex')}@example.com`);
    const res = await requestToken(gws[0]?.url as string, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });
    assert.equal(res.status, 200, res.text);
    const creds = credentialsOf(res);
    const placed = await admin('GET', `/uids/${creds.uid}`);
    const writers = gws.map((g) => new SyncClient({ ...creds, api_endpoint: `${g.url}/1.5/${creds.uid}` }));
    const okTimes: number[] = [];
    return {
      email: acct.email,
      creds,
      writers,
      reader: new SyncClient(creds),
      node: placed.node,
      replica: placed.replica,
      acked: new Map(),
      statuses: new Map(),
      trouble: [],
      okTimes,
      firstOkAfter: (t) => okTimes.find((x) => x > t),
      seen: new Set(),
      lastSync: 0,
      syncs: [],
    };
  }

  /** A client writing one record at a time, as fast as it gets answers, to both gateways. */
  async function writeLoop(u: User): Promise<void> {
    const run = ++loopRuns; // ids never repeat across loops: a rewrite of an old id proves nothing
    for (let n = 0; writing; n++) {
      const id = `${u.creds.uid}-${run}-${n}`;
      const client = u.writers[n % u.writers.length] as SyncClient;
      const res = await client.post('/storage/history', [{ id, payload: `p${n}` }]);
      u.statuses.set(res.status, (u.statuses.get(res.status) ?? 0) + 1);
      if (res.status !== 200) u.trouble.push(`${Date.now()} ${res.status} ${res.text.slice(0, 80)}`);
      if (res.status === 200 && res.json().success.includes(id)) {
        u.acked.set(id, Date.now());
        u.okTimes.push(Date.now());
      } else if (res.status === 503) {
        assert.ok(res.header('retry-after'), '503 without Retry-After');
        await sleep(200); // a real client would honour Retry-After; keep the test short
      }
      await sleep(40);
    }
  }

  /** The second device: GET newer= its last sync, remember the ids and the new timestamp. */
  async function incrementalSync(u: User): Promise<void> {
    const res = await u.reader.get(`/storage/history?newer=${u.lastSync.toFixed(2)}&full=1`);
    const got = res.status === 200 ? (res.json() as Array<{ id: string }>) : [];
    u.syncs.push(`${Date.now()} ${res.status} newer=${u.lastSync.toFixed(2)} -> ${res.header('x-last-modified')} (${got.length} records)`);
    if (res.status !== 200) return;
    for (const r of got) u.seen.add(r.id);
    u.lastSync = Number(res.header('x-last-modified'));
  }

  const syncAll = () => Promise.all(users.map((u) => incrementalSync(u)));

  /** Where each unseen record is, on both copies, and what the second device got: a failure must say why. */
  async function explainUnseen(u: User, unseen: string[], killedAt: number): Promise<string> {
    const lines = [`uid ${u.creds.uid}: second device syncs (ms after the kill):`];
    for (const s of u.syncs) lines.push(`  ${Number(s.split(' ')[0]) - killedAt} ${s.slice(s.indexOf(' ') + 1)}`);
    for (const node of [u.node, u.replica]) {
      const state = await (await onNode(node, `/sync_${u.creds.uid}/state?conflicts=true`)).text();
      lines.push(`  node ${node} state: ${state.trim()}`);
      const leaves = await (await onNode(node, `/sync_${u.creds.uid}/state?open_revs=all&revs=true`)).text();
      lines.push(`  node ${node} state leaves: ${leaves.trim().slice(0, 12000)}`);
      const info = await (await onNode(node, `/sync_${u.creds.uid}`)).text();
      lines.push(`  node ${node} db: ${info.trim()}`);
      for (const id of unseen.slice(0, 3)) {
        const doc = await (await onNode(node, `/sync_${u.creds.uid}/${encodeURIComponent(`r:history:${id}`)}?conflicts=true&revs=true`)).text();
        lines.push(`  node ${node} ${id} (acked ${(u.acked.get(id) ?? 0) - killedAt} ms): ${doc.trim()}`);
      }
    }
    return lines.join('\n');
  }

  before(async () => {
    const started = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode(), startCouchNode()]);
    registryCouch = started[0] as CouchNode;
    ['a', 'b', 'c'].forEach((n, i) => nodes.set(n, started[i + 1] as CouchNode));
    dir = await mkdtemp(join(tmpdir(), 'syncgate-failover-'));
    gatewayEnv = federationEnv(dir, registryCouch.url, ADMIN, {
      SYNCGATE_COUCH_TIMEOUT_MS: '3000',
      // Nodes die by SIGKILL here (refused connections); a slow answer from a node on this
      // busy machine must not count as death.
      SYNCGATE_HEALTH_TIMEOUT_MS: '5000',
      // Wide enough that writes acknowledged just before the kill have not reached the replica.
      SYNCGATE_REPLICATION_DELAY_MS: '3000',
    });
    for (let i = 0; i < 2; i++) {
      const gw = await spawnGateway(gatewayEnv);
      gw.child.stdout?.on('data', (d) => (log += String(d)));
      gw.child.stderr?.on('data', (d) => (log += String(d)));
      gws.push(gw);
    }
    accounts = new LocalAccounts(dir);
    for (const n of ['a', 'b', 'c']) {
      await admin('POST', '/operators', { name: `op-${n}` });
      await admin('POST', '/nodes', { name: n, operator: `op-${n}`, url: nodes.get(n)?.url, capacity: 100 });
    }
    await admin('POST', '/nodes/default/drain');
    for (let i = 0; i < 9; i++) users.push(await addUser('fo'));
  });

  after(async () => {
    writing = false;
    await Promise.allSettled(loops);
    for (const gw of gws) await gw.kill('SIGTERM');
    if (process.env.SYNCGATE_TEST_LOG) await writeFile(process.env.SYNCGATE_TEST_LOG, log);
    await Promise.all([registryCouch, ...nodes.values()].map((c) => c?.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('places every user on one node with the replica at another operator', () => {
    for (const u of users) {
      assert.ok(['a', 'b', 'c'].includes(u.node), u.node);
      assert.ok(['a', 'b', 'c'].includes(u.replica) && u.replica !== u.node, `${u.node} / ${u.replica}`);
    }
    // The node with the most primaries is the one killed.
    const count = (n: string) => users.filter((u) => u.node === n).length;
    victim = ['a', 'b', 'c'].reduce((x, y) => (count(y) > count(x) ? y : x));
    assert.ok(count(victim) >= 2, `node ${victim} holds at least two primaries`);
  });

  it('a node killed mid-load: its users are served from replicas within 10 s, no 500, others unaffected; after it returns every acknowledged write is there and seen by an incremental sync', async () => {
    writing = true;
    loops = users.map((u) => writeLoop(u));
    await sleep(2500);
    await syncAll();
    const victims = users.filter((u) => u.node === victim);
    const bystanders = users.filter((u) => u.node !== victim && u.replica !== victim);

    const killedAt = Date.now();
    await nodes.get(victim)?.kill();
    // Failover: the first acknowledged write of each victim after the kill.
    const deadline = killedAt + 10_000;
    while (Date.now() < deadline && victims.some((u) => u.firstOkAfter(killedAt + 50) === undefined)) await sleep(100);
    const failoverMs = Math.max(...victims.map((u) => (u.firstOkAfter(killedAt + 50) ?? Infinity) - killedAt));
    console.log(`      failover: every user of the killed node written to again ${failoverMs} ms after the kill`);
    assert.ok(failoverMs <= 10_000, `failover took ${failoverMs} ms`);
    assert.equal(await nodeState(victim), 'failed');

    // The outage: writes go on; the second device syncs from the replicas.
    await sleep(2000);
    await syncAll();

    const logBeforeRestart = log.length;
    await nodes.get(victim)?.restart();
    const backAt = Date.now();
    const backBy = Date.now() + 60_000;
    while ((await nodeState(victim)) !== 'active' && Date.now() < backBy) await sleep(250);
    const activeAt = Date.now();
    assert.equal(await nodeState(victim), 'active', `node ${victim} merged back and served again`);
    const report = new RegExp(`"failback":\\{"node":"${victim}","users":(\\d+),"restamped":(\\d+)[^}]*\\},"msg":"node merged back`);
    // This failback's report: logged after the restart (gateway logs are buffered).
    for (let i = 0; i < 40 && !report.test(log.slice(logBeforeRestart)); i++) await sleep(250);
    const merged = report.exec(log.slice(logBeforeRestart));
    assert.ok(merged, 'a failback report was logged');
    // An attempt that stopped (and was started over) reports what it had done.
    const attempts = [...log.slice(logBeforeRestart).matchAll(new RegExp(`"failback":\\{"node":"${victim}","users":\\d+,"restamped":(\\d+)`, 'g'))];
    const restamped = attempts.reduce((sum, m) => sum + Number(m[1]), 0);
    console.log(`      failback: ${merged[1]} users merged, ${restamped} records restamped (${attempts.length} attempt(s))`);

    await sleep(1500); // writes go to node a again
    writing = false;
    const stats = await admin('GET', '/replication');
    console.log(`      replication (gateway 1): ${stats.replication.completed} one-shot replications, lag p50 ${stats.replication.lagMs.p50} ms, p99 ${stats.replication.lagMs.p99} ms (delay 3000 ms)`);
    await Promise.all(loops);
    loops = [];

    for (const u of users) {
      assert.equal(u.statuses.get(500) ?? 0, 0, `uid ${u.creds.uid} got a 500`);
      for (const s of u.statuses.keys()) assert.ok(s === 200 || s === 503, `uid ${u.creds.uid} got ${s}`);
    }
    for (const u of bystanders) {
      assert.equal(u.statuses.get(503) ?? 0, 0, `uid ${u.creds.uid} (${u.node}/${u.replica}, not on the killed node) got 503s: ${u.trouble.map((t) => `${Number(t.split(' ')[0]) - killedAt}ms ${t}`).join('; ')}`);
    }

    await syncAll();
    for (const u of users) {
      const all = await u.reader.get('/storage/history');
      assert.equal(all.status, 200);
      const stored = new Set(all.json() as string[]);
      const missing = [...u.acked.keys()].filter((id) => !stored.has(id));
      const when = missing.map((id) => `${id}@${(u.acked.get(id) ?? 0) - killedAt}ms`);
      assert.deepEqual(when, [], `uid ${u.creds.uid} (node ${u.node}, replica ${u.replica}, victim ${victim}) lost acknowledged writes (ms after the kill; back at ${backAt - killedAt}, active at ${activeAt - killedAt})`);
      const unseen = [...u.acked.keys()].filter((id) => !u.seen.has(id));
      const unseenWhen = unseen.map((id) => `${id}@${(u.acked.get(id) ?? 0) - killedAt}ms`);
      if (unseen.length > 0) console.log(await explainUnseen(u, unseen, killedAt));
      assert.deepEqual(unseenWhen, [], `uid ${u.creds.uid} (node ${u.node}, replica ${u.replica}, victim ${victim}): records its second device never saw incrementally (ms after the kill)`);
    }
    // Not vacuous: some writes acknowledged on a had not reached the replicas, and came back.
    assert.ok(restamped > 0, 'the kill caught writes that only the killed node had (restamped at failback)');
    // Node a serves its users again: a new write lands there.
    const v = victims[0] as User;
    assert.equal((await v.writers[0]?.put('/storage/history/after-failback', { payload: 'x' }))?.status, 200);
    assert.ok(await hasRecord(victim, v.creds.uid, 'after-failback'), 'the write after failback went to the returned node');
  });

  it('nodes that never return: asynchronous mode loses at most the last replication window (counted); a synchronous operator loses nothing', async () => {
    const s = await startCouchNode();
    nodes.set('s', s);
    await admin('POST', '/operators', { name: 'op-s', synchronous: true });
    await admin('POST', '/nodes', { name: 's', operator: 'op-s', url: s.url, capacity: 100 });
    // The async victim: another node than the one killed before, the one of the two with more
    // primaries (placement counts replicas too, so a node can hold none); the sync users'
    // replicas on the third.
    const [x, y] = ['a', 'b', 'c'].filter((n) => n !== victim) as [string, string];
    const primaries = (n: string) => users.filter((u) => u.node === n).length;
    const [asyncNode, replicaNode] = primaries(x) >= primaries(y) ? [x, y] : [y, x];
    for (const n of ['a', 'b', 'c']) if (n !== replicaNode) await admin('POST', `/nodes/${n}/drain`);
    const syncUsers: User[] = [];
    for (let i = 0; i < 3; i++) syncUsers.push(await addUser('sync'));
    for (const u of syncUsers) assert.deepEqual([u.node, u.replica], ['s', replicaNode], 'synchronous users on s, their replicas on the one active node left');
    const asyncUsers = users.filter((u) => u.node === asyncNode);
    assert.ok(asyncUsers.length > 0, `node ${asyncNode} holds primaries`);
    const writers = [...syncUsers, ...asyncUsers];
    for (const u of writers) u.acked.clear();
    writing = true;
    loops = writers.map((u) => writeLoop(u));
    await sleep(2500);
    // The premise: the nodes about to die serve their users until the kill.
    assert.equal(await nodeState(asyncNode), 'draining', `node ${asyncNode} serves its users until the kill`);
    assert.equal(await nodeState('s'), 'active');
    const killedAt = Date.now();
    await Promise.all([s.kill(), nodes.get(asyncNode)?.kill()]);
    nodeStateCache.set(asyncNode, 'dead');
    // What the replicas did not have at that moment (read from their Couch directly).
    let unreplicated = 0;
    for (const u of asyncUsers) {
      const res = await onNode(u.replica, `/sync_${u.creds.uid}/_all_docs?startkey=%22r:history:%22&endkey=%22r:history:%EF%BF%B0%22`);
      const onReplica = new Set(((await res.json()) as { rows: Array<{ id: string }> }).rows.map((r) => r.id.slice('r:history:'.length)));
      unreplicated += [...u.acked.keys()].filter((id) => !onReplica.has(id)).length;
    }
    const deadline = killedAt + 15_000;
    while (Date.now() < deadline && writers.some((u) => u.firstOkAfter(killedAt + 50) === undefined)) await sleep(100);
    await sleep(1500);
    writing = false;
    await Promise.all(loops);
    loops = [];
    const lost = async (u: User) => {
      const res = await u.reader.get('/storage/history');
      assert.equal(res.status, 200, `uid ${u.creds.uid} is served from its replica`);
      const stored = new Set(res.json() as string[]);
      return [...u.acked.keys()].filter((id) => !stored.has(id)).length;
    };
    let asyncLost = 0;
    let asyncAcked = 0;
    for (const u of asyncUsers) {
      asyncLost += await lost(u);
      asyncAcked += u.acked.size;
    }
    let syncLost = 0;
    let syncAcked = 0;
    for (const u of syncUsers) {
      syncLost += await lost(u);
      syncAcked += u.acked.size;
    }
    console.log(
      `      never returned: asynchronous node ${asyncNode} lost ${asyncLost} of ${asyncAcked} acknowledged writes (${unreplicated} were not on the replicas at the kill); synchronous node s lost ${syncLost} of ${syncAcked}`,
    );
    for (const u of writers) assert.equal(u.statuses.get(500) ?? 0, 0, `uid ${u.creds.uid} got a 500`);
    assert.ok(syncAcked > 0 && asyncAcked > 0);
    assert.equal(syncLost, 0, 'a synchronous node loses no acknowledged write');
  });

  it('a gateway killed right after acknowledging a write: the next gateway to see the user brings the replica up to date (the lost replication queue costs nothing once the user comes back)', async () => {
    const alive = ['a', 'b', 'c'].filter((n) => nodeStateCache.get(n) !== 'dead');
    assert.ok(alive.length >= 2, `two live nodes left: ${alive.join(',')}`);
    for (const n of alive) await admin('POST', `/nodes/${n}/up`);
    let u: User | undefined;
    for (let i = 0; i < 6 && !u; i++) {
      const candidate = await addUser('crash');
      if (alive.includes(candidate.node) && alive.includes(candidate.replica)) u = candidate;
    }
    assert.ok(u, 'a user placed on two live nodes');
    const placed = u;
    const onReplica = () => hasRecord(placed.replica, placed.creds.uid, 'before-crash');
    const gw = gws[1] as GatewayProcess;
    const client = new SyncClient({ ...u.creds, api_endpoint: `${gw.url}/1.5/${u.creds.uid}` });
    assert.equal((await client.put('/storage/history/before-crash', { payload: 'x' })).status, 200);
    await gw.kill('SIGKILL'); // its replication was due 3 s later
    await sleep(5000);
    assert.equal(await onReplica(), false, 'the replication died with the gateway');
    const again = await spawnGateway(gatewayEnv);
    again.child.stdout?.on('data', (d) => (log += String(d)));
    gws[1] = again;
    const back = new SyncClient({ ...u.creds, api_endpoint: `${again.url}/1.5/${u.creds.uid}` });
    assert.equal((await back.get('/info/collections')).status, 200);
    for (let i = 0; i < 100 && !(await onReplica()); i++) await sleep(100);
    assert.equal(await onReplica(), true, 'a read on the new gateway brought the replica up to date');
  });
});
