// Operators and nodes through the admin API of a gateway process, with two more Couch servers
// (pouchdb-server) as the nodes of two operators: the admin credential, node checks refusing
// bad nodes with the reason, placement of new users across operators (primary and replica
// recorded), storage routed to the user's node, drain/down/up/remove, and node credentials
// never appearing in an answer or a log line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { SyncClient } from '../support/client.js';
import { startCouchNode, type RunningCouch, basicAuth } from '../support/couch.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));
const ADMIN = randomBytes(24).toString('hex');

const couchAuth = (url: string) => {
  const u = new URL(url);
  return { origin: u.origin, password: decodeURIComponent(u.password), header: basicAuth(u) };
};

async function databaseOn(couchUrl: string, uid: number): Promise<boolean> {
  const c = couchAuth(couchUrl);
  return (await fetch(`${c.origin}/sync_${uid}`, { headers: { Authorization: c.header } })).status === 200;
}

async function docOn(couchUrl: string, uid: number, id: string): Promise<boolean> {
  const c = couchAuth(couchUrl);
  return (await fetch(`${c.origin}/sync_${uid}/${encodeURIComponent(id)}`, { headers: { Authorization: c.header } })).status === 200;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('operators and nodes (admin API, placement, routing)', function () {
  this.timeout(120_000);
  let couchA: RunningCouch;
  let couchB: RunningCouch;
  let dir: string;
  let gw: GatewayProcess;
  let log = '';
  let accounts: LocalAccounts;

  const admin = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const res = await fetch(`${gw.url}/__admin__${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) };
  };

  before(async () => {
    [couchA, couchB] = await Promise.all([startCouchNode(), startCouchNode()]);
    dir = await mkdtemp(join(tmpdir(), 'syncgate-nodes-'));
    // Always the embedded default store here: the nodes under test are the two Couch servers.
    gw = await spawnGateway({ SYNCGATE_DATA: dir, PORT: '0', SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_FXA: 'false', LOG_LEVEL: 'debug', COUCH_URL: '' });
    gw.child.stdout?.on('data', (d) => (log += String(d)));
    gw.child.stderr?.on('data', (d) => (log += String(d)));
    accounts = new LocalAccounts(dir);
  });
  after(async () => {
    await gw?.kill('SIGTERM');
    await Promise.all([couchA?.stop(), couchB?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('the admin API refuses a missing or wrong credential', async () => {
    assert.equal((await fetch(`${gw.url}/__admin__/nodes`)).status, 401);
    assert.equal((await admin('GET', '/nodes', undefined, 'wrong')).status, 401);
    assert.equal((await admin('GET', '/nodes', undefined, `${ADMIN}x`)).status, 401);
    assert.equal((await admin('POST', '/operators', { name: 'sneaky' }, 'wrong')).status, 401);
    const ok = await admin('GET', '/nodes');
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json().map((n: { name: string }) => n.name), ['default']);
    assert.ok(!(await admin('GET', '/operators')).json().some((o: { name: string }) => o.name === 'sneaky'));
  });

  it('adds operators; refuses duplicates and bad names', async () => {
    assert.equal((await admin('POST', '/operators', { name: 'alpha' })).status, 201);
    assert.equal((await admin('POST', '/operators', { name: 'beta' })).status, 201);
    assert.equal((await admin('POST', '/operators', { name: 'alpha' })).status, 409);
    assert.equal((await admin('POST', '/operators', { name: 'Bad Name' })).status, 400);
    assert.deepEqual((await admin('GET', '/operators')).json().map((o: { name: string }) => o.name), ['alpha', 'beta']);
  });

  it('refuses a node that fails a check, with the reason', async () => {
    const a = couchAuth(couchA.url);
    const unreachable = await admin('POST', '/nodes', { name: 'gone', operator: 'alpha', url: 'http://admin:pw@127.0.0.1:9', capacity: 10 });
    assert.equal(unreachable.status, 422);
    assert.match(unreachable.json().error, /cannot reach/);
    const badPassword = await admin('POST', '/nodes', { name: 'badpw', operator: 'alpha', url: `http://admin:nope@${new URL(a.origin).host}`, capacity: 10 });
    assert.equal(badPassword.status, 422);
    assert.match(badPassword.json().error, /refused the credentials/);
    const anonymous = await admin('POST', '/nodes', { name: 'anon', operator: 'alpha', url: a.origin, capacity: 10 });
    assert.equal(anonymous.status, 422);
    assert.match(anonymous.json().error, /not a server admin|refused/);
    assert.equal((await admin('POST', '/nodes', { name: 'x', operator: 'nobody', url: couchA.url, capacity: 10 })).status, 404);
    assert.equal((await admin('POST', '/nodes', { name: 'x', operator: 'alpha', url: couchA.url, capacity: 0 })).status, 400);
    assert.deepEqual((await admin('GET', '/nodes')).json().map((n: { name: string }) => n.name), ['default']);
  });

  it('adds good nodes; answers and lists carry no credentials', async () => {
    const added = await admin('POST', '/nodes', { name: 'a1', operator: 'alpha', url: couchA.url, capacity: 1000, weight: 1 });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.json().url, couchAuth(couchA.url).origin);
    // What the node said of itself at the check is kept with it.
    const couch = added.json().couch as { vendor: string; version: string; features: string[] };
    assert.equal(couch.vendor, process.env.COUCHDB_HOME ? 'couchdb' : 'pouchdb-server');
    assert.match(couch.version, /^\d+\.\d+/);
    if (process.env.COUCHDB_HOME) assert.ok(couch.features.includes('scheduler'), couch.features.join(','));
    assert.equal((await admin('POST', '/nodes', { name: 'b1', operator: 'beta', url: couchB.url, capacity: 1000 })).status, 201);
    assert.equal((await admin('POST', '/nodes', { name: 'a1', operator: 'alpha', url: couchA.url, capacity: 5 })).status, 409);
    const list = await admin('GET', '/nodes');
    for (const pw of [couchAuth(couchA.url).password, couchAuth(couchB.url).password]) assert.ok(!list.text.includes(pw));
    assert.deepEqual(list.json().map((n: { name: string; state: string }) => `${n.name}:${n.state}`), ['a1:active', 'b1:active', 'default:active']);
  });

  it('new users go to the nodes by free capacity, each with a replica at the other operator, and their storage lives there', async () => {
    // The default node (this gateway's own store) takes no more new users.
    assert.equal((await admin('POST', '/nodes/default/drain')).json().state, 'draining');
    const seen = new Map<string, number>();
    for (let i = 0; i < 4; i++) {
      const acct = await accounts.create(`n${i}-${randomBytes(3).toString('hex')}@example.com`);
      const res = await requestToken(gw.url, { bearer: await accounts.bearer(acct, 600), keyId: keyIdOf(acct) });
      assert.equal(res.status, 200, res.text);
      const client = new SyncClient(credentialsOf(res));
      assert.equal((await client.put('/storage/bookmarks/r', { payload: `p${i}` })).status, 200);
      const placed = (await admin('GET', `/uids/${client.uid}`)).json();
      assert.ok(['a1', 'b1'].includes(placed.node), placed.node);
      assert.equal(placed.replica, placed.node === 'a1' ? 'b1' : 'a1');
      seen.set(placed.node, (seen.get(placed.node) ?? 0) + 1);
      const [home, other] = placed.node === 'a1' ? [couchA, couchB] : [couchB, couchA];
      assert.ok(await databaseOn(home.url, client.uid), 'the database is on the primary node');
      assert.ok(!(await databaseOn(other.url, client.uid)), 'the write did not go to the other node');
      assert.equal((await client.get('/storage/bookmarks/r')).json().payload, `p${i}`);
    }
    // Each placement counts on both of its nodes (primary and replica hold a database each).
    const nodes = (await admin('GET', '/nodes')).json() as Array<{ name: string; assigned: number }>;
    assert.equal(nodes.find((n) => n.name === 'a1')?.assigned, 4);
    assert.equal(nodes.find((n) => n.name === 'b1')?.assigned, 4);
    assert.equal([...seen.values()].reduce((a, b) => a + b, 0), 4);
  });

  it('a node marked down: its users are served from their replicas; with both copies down 503 + Retry-After (never 500); up: merged back, then served again', async () => {
    const acct = await accounts.create(`down-${randomBytes(3).toString('hex')}@example.com`);
    const bearer = await accounts.bearer(acct, 600);
    const client = new SyncClient(credentialsOf(await requestToken(gw.url, { bearer, keyId: keyIdOf(acct) })));
    assert.equal((await client.put('/storage/tabs/t', { payload: 'x' })).status, 200);
    const placed = (await admin('GET', `/uids/${client.uid}`)).json() as { node: string; replica: string };
    const [replicaCouch, homeCouch] = placed.node === 'a1' ? [couchB, couchA] : [couchA, couchB];
    // The write reaches the replica by replication, shortly after it was acknowledged.
    for (let i = 0; i < 100 && !(await docOn(replicaCouch.url, client.uid, 'r:tabs:t')); i++) await sleep(100);
    assert.ok(await docOn(replicaCouch.url, client.uid, 'r:tabs:t'), 'replicated to the replica');

    assert.equal((await admin('POST', `/nodes/${placed.node}/down`)).json().state, 'down');
    const read = await client.get('/storage/tabs/t');
    assert.equal(read.status, 200, 'served from the replica');
    assert.equal((await client.put('/storage/tabs/during', { payload: 'y' })).status, 200);
    // A down node keeps its users: a new token is for the same uid, not a fresh empty one.
    const again = await requestToken(gw.url, { bearer, keyId: keyIdOf(acct) });
    assert.equal(again.status, 200);
    assert.equal(again.json().uid, client.uid);

    assert.equal((await admin('POST', `/nodes/${placed.replica}/down`)).json().state, 'down');
    const none = await client.get('/storage/tabs/t');
    assert.equal(none.status, 503, 'neither copy can serve');
    assert.ok(Number(none.header('retry-after')) > 0);
    assert.equal((await admin('POST', `/nodes/${placed.replica}/up`)).status, 200);
    assert.equal((await admin('POST', `/nodes/${placed.node}/up`)).status, 200);
    const state = async (n: string) => (await admin('GET', '/nodes')).json().find((x: { name: string }) => x.name === n).state as string;
    for (let i = 0; i < 150 && ((await state(placed.node)) !== 'active' || (await state(placed.replica)) !== 'active'); i++) await sleep(100);
    assert.equal(await state(placed.node), 'active');
    assert.equal(await state(placed.replica), 'active');
    // Merged back: the write made while the primary was down is on the primary, and served.
    assert.ok(await docOn(homeCouch.url, client.uid, 'r:tabs:during'), 'the write made during the outage was merged back');
    assert.equal((await client.get('/storage/tabs/during')).status, 200);
    assert.equal((await client.get('/storage/tabs/t')).status, 200);
  });

  it('a node can be synchronous on its own (overriding its operator); a non-boolean is refused', async () => {
    const bad = await admin('POST', '/nodes', { name: 'strict', operator: 'alpha', url: couchA.url, capacity: 1, weight: 0, synchronous: 'yes' });
    assert.equal(bad.status, 400);
    const made = await admin('POST', '/nodes', { name: 'strict', operator: 'alpha', url: couchA.url, capacity: 1, weight: 0, synchronous: true });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json().synchronous, true);
    assert.equal((await admin('GET', '/operators')).json().find((o: { name: string }) => o.name === 'alpha').synchronous, false);
    assert.equal((await admin('GET', '/nodes')).json().find((n: { name: string }) => n.name === 'strict').synchronous, true);
    assert.equal((await admin('DELETE', '/nodes/strict')).status, 200);
  });

  it('a node that holds users cannot be removed; an empty one can', async () => {
    const refused = await admin('DELETE', '/nodes/a1');
    assert.equal(refused.status, 409);
    assert.match(refused.json().error, /still holds/);
    assert.equal((await admin('POST', '/operators', { name: 'gamma' })).status, 201);
    assert.equal((await admin('POST', '/nodes', { name: 'spare', operator: 'gamma', url: couchA.url, capacity: 1, weight: 0 })).status, 201);
    assert.equal((await admin('DELETE', '/nodes/spare')).status, 200);
    assert.equal((await admin('DELETE', '/nodes/spare')).status, 404);
    assert.equal((await admin('DELETE', '/nodes/default')).status, 409);
  });

  it('the syncgate operator and node commands use the admin API', async () => {
    const env = { ...process.env, SYNCGATE_DATA: dir, SYNCGATE_ADMIN_TOKEN: ADMIN };
    await run(process.execPath, [BIN, 'operator', 'add', 'delta', '--server', gw.url], { env });
    const ops = JSON.parse((await run(process.execPath, [BIN, 'operator', 'list', '--server', gw.url], { env })).stdout);
    assert.ok(ops.some((o: { name: string }) => o.name === 'delta'));
    const nodes = (await run(process.execPath, [BIN, 'node', 'list', '--server', gw.url], { env })).stdout;
    assert.match(nodes, /"a1"/);
    assert.ok(!nodes.includes(couchAuth(couchA.url).password));
    await assert.rejects(run(process.execPath, [BIN, 'node', 'list', '--server', gw.url], { env: { ...env, SYNCGATE_ADMIN_TOKEN: 'x'.repeat(20) } }), /401/);
  });

  it('no node password ever appears in the gateway\'s log', () => {
    assert.ok(log.length > 1000, 'the gateway logged');
    for (const pw of [couchAuth(couchA.url).password, couchAuth(couchB.url).password]) assert.ok(!log.includes(pw), 'a node password is in the log');
    assert.ok(!log.includes(ADMIN), 'the admin credential is in the log');
  });
});
