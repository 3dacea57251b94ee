// A move interrupted at each of its steps: the gateway running it killed (SIGKILL at a
// failpoint), then the source node or the target node killed as well. After restarts every
// user has exactly one serving primary (the target when the move went on, the source when it
// was rolled back) and every acknowledged write.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { userDbName } from '../../storage/db-name.js';
import { adminApi, federationEnv } from '../support/admin.js';
import { SyncClient, type Credentials } from '../support/client.js';
import { basicAuth, startCouchNode, type CouchNode } from '../support/couch.js';
import { recordsOnNode, syncWithoutPause, type DeviceLoad } from '../support/move-load.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The `retired` mark of the user's state on a node (undefined: none, or no state there). */
async function retiredMark(node: CouchNode, uid: number): Promise<string | undefined> {
  const url = new URL(node.url);
  const res = await fetch(`${url.origin}/${userDbName(String(uid))}/state`, { headers: { Authorization: basicAuth(url) } });
  return res.status === 200 ? ((await res.json()) as { retired?: string }).retired : undefined;
}

describe('moves interrupted by killed gateways and nodes', function () {
  this.timeout(300_000);
  let registryCouch: CouchNode;
  const nodes = new Map<string, CouchNode>();
  let dir: string;
  let env: Record<string, string>;
  let gw: GatewayProcess | undefined;
  let log = '';
  const admin = adminApi(() => gw?.url, ADMIN);

  const spawn = async (extra: Record<string, string> = {}) => {
    const g = await spawnGateway({ ...env, ...extra });
    g.child.stdout?.on('data', (d) => (log += String(d)));
    gw = g;
    return g;
  };
  const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 90_000) => {
    for (const by = Date.now() + ms; !(await ok()); await sleep(250)) assert.ok(Date.now() < by, `timed out waiting for ${what}`);
  };
  const status = (uid: number) => admin('GET', `/users/${uid}/move`);
  const nodeState = async (name: string): Promise<string> => (await admin('GET', '/nodes')).find((n: { name: string }) => n.name === name)?.state;

  before(async () => {
    const started = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode(), startCouchNode()]);
    registryCouch = started[0] as CouchNode;
    nodes.set('a', started[1] as CouchNode).set('b', started[2] as CouchNode).set('c', started[3] as CouchNode);
    dir = await mkdtemp(join(tmpdir(), 'syncgate-move-kill-'));
    env = federationEnv(dir, registryCouch.url, ADMIN, {
      SYNCGATE_MOVE_LEASE_MS: '2000',
      SYNCGATE_MOVE_GRACE_SEC: '3600', // the old copies stay: their marks are checked
      SYNCGATE_HEALTH_TIMEOUT_MS: '2000',
      SYNCGATE_FAILBACK_LEASE_MS: '2000',
    });
    await spawn();
    for (const n of ['a', 'b', 'c']) {
      await admin('POST', '/operators', { name: `op-${n}` });
      await admin('POST', '/nodes', { name: n, operator: `op-${n}`, url: nodes.get(n)?.url, capacity: 100 });
    }
    await admin('POST', '/nodes/default/drain');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && process.env.SYNCGATE_TEST_LOG) writeFileSync(`${process.env.SYNCGATE_TEST_LOG}.user-move-kill`, log);
  });

  after(async () => {
    await gw?.kill('SIGTERM');
    await Promise.all([registryCouch, ...nodes.values()].map((c) => c?.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  async function newUser(): Promise<Credentials> {
    const accounts = new LocalAccounts(dir);
    const acct = await accounts.create(`kill-${randomBytes(4).toString('hex')}@example.com`);
    const res = await requestToken(gw?.url as string, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });
    assert.equal(res.status, 200, res.text);
    return credentialsOf(res);
  }

  /** A user writing without pause through whichever gateway is alive, and where it is placed. */
  async function busyUser(): Promise<{ creds: Credentials; load: DeviceLoad; from: string; replica: string; to: string }> {
    const creds = await newUser();
    const load = syncWithoutPause(() => (gw ? [new SyncClient({ ...creds, api_endpoint: `${gw.url}/1.5/${creds.uid}` })] : []));
    const placed = await admin('GET', `/uids/${creds.uid}`);
    const to = ['a', 'b', 'c'].find((n) => n !== placed.node && n !== placed.replica) as string;
    await sleep(1000);
    return { creds, load, from: placed.node, replica: placed.replica, to };
  }

  /** Starts the move on a gateway armed to die at `failpoint`, and waits for it to die there. */
  async function moveDyingAt(uid: number, to: string, failpoint: string): Promise<void> {
    await gw?.kill('SIGTERM');
    const dying = await spawn({ SYNCGATE_FAILPOINT: failpoint });
    // move:recorded fires inside the request, which then gets no answer.
    const asked = admin('POST', `/users/${uid}/move`, { to });
    if (failpoint === 'move:recorded') await asked.catch(() => undefined);
    else await asked;
    await waitFor(`the gateway to die at ${failpoint}`, async () => dying.child.signalCode !== null || dying.child.exitCode !== null);
    assert.equal(dying.child.signalCode, 'SIGKILL', `killed at ${failpoint}`);
    gw = undefined;
  }

  async function assertAllThere(load: DeviceLoad, uid: number, primary: string): Promise<void> {
    await load.stop();
    assert.deepEqual(load.errors, [], 'only 200 and 503 + Retry-After');
    assert.ok(load.acked.size > 5, `the user kept writing (${load.acked.size})`);
    const stored = await recordsOnNode(nodes.get(primary) as CouchNode, uid, 'history');
    assert.deepEqual([...load.acked].filter((id) => !stored.has(id)), [], `every acknowledged write is on ${primary}`);
    assert.deepEqual([...load.acked].filter((id) => !load.seen.has(id)), [], 'the second device listed every acknowledged record');
  }

  // move:recorded: dead right after recording the move, before its first step (an evacuation
  // once stalled there: it skips a user whose move is under way, and nobody ran that move).
  for (const failpoint of ['move:recorded', 'move:after-copy', 'move:after-retire', 'move:before-switch']) {
    it(`a move whose gateway dies at ${failpoint} is finished by the next gateway`, async () => {
      const { creds, load, from, to } = await busyUser();
      await moveDyingAt(creds.uid, to, failpoint);
      await sleep(500);
      await spawn();
      await waitFor('the move taken over and finished', async () => (await status(creds.uid)).move === null);
      const s = await status(creds.uid);
      assert.equal(s.lastMove.outcome, 'moved', JSON.stringify(s.lastMove));
      assert.equal(s.node, to, 'one primary: the target');
      await sleep(1000);
      await assertAllThere(load, creds.uid, to);
      assert.equal(await retiredMark(nodes.get(from) as CouchNode, creds.uid), from, 'the source copy refuses the user');
      assert.equal(await retiredMark(nodes.get(to) as CouchNode, creds.uid) === to, false, 'the target serves');
    });
  }

  it('a move whose gateway and source node die in the switch is rolled back: the replica serves meanwhile, the source again once it is back', async () => {
    const { creds, load, from, replica, to } = await busyUser();
    await moveDyingAt(creds.uid, to, 'move:after-retire');
    const source = nodes.get(from) as CouchNode;
    await source.kill();
    await spawn();
    await waitFor(`node ${from} marked failed`, async () => (await nodeState(from)) === 'failed');
    // Served from the replica while the source is out: writes go on.
    const during = load.acked.size;
    await waitFor('writes acknowledged by the replica', async () => load.acked.size > during + 5);
    assert.equal((await status(creds.uid)).move?.stage, 'rollback');
    await source.restart();
    await waitFor('the move rolled back once the source is back', async () => (await status(creds.uid)).move === null);
    const s = await status(creds.uid);
    assert.equal(s.lastMove.outcome, 'rolled back');
    assert.equal(s.node, from, 'one primary: the source');
    await waitFor(`node ${from} merged back`, async () => (await nodeState(from)) === 'active');
    const after = load.acked.size;
    await waitFor('writes acknowledged by the source again', async () => load.acked.size > after + 5);
    await sleep(1000);
    await assertAllThere(load, creds.uid, from);
    assert.equal(await retiredMark(source, creds.uid), undefined, 'the source copy serves again');
    assert.ok(replica);
  });

  it('a move whose gateway dies after the copy and whose target dies too is rolled back; the user stays on the source', async () => {
    const { creds, load, from, to } = await busyUser();
    await moveDyingAt(creds.uid, to, 'move:after-copy');
    const target = nodes.get(to) as CouchNode;
    await target.kill();
    await spawn();
    await waitFor('the move rolled back', async () => (await status(creds.uid)).move === null);
    const s = await status(creds.uid);
    assert.equal(s.lastMove.outcome, 'rolled back', JSON.stringify(s.lastMove));
    assert.equal(s.node, from);
    await target.restart();
    await waitFor(`node ${to} active again`, async () => (await nodeState(to)) === 'active');
    await sleep(1000);
    await assertAllThere(load, creds.uid, from);
  });
});
