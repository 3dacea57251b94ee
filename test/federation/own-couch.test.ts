// Bring your own Couch: a person's storage moves to their own Couch (another test Couch) while
// they sync, with a replica kept on an operator's node; their Couch is killed (served from the
// replica), brought back (failback), and given up (the storage moves back). No acknowledged
// write is lost, and nobody else's storage is ever placed on it.
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
import { recordsOnNode, syncWithoutPause } from '../support/move-load.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, requestToken } from '../support/tokens.js';
import { credentials } from '../../server/accounts/onepw.js';
import { post, signInFirefox } from '../support/accounts-client.js';

const ADMIN = randomBytes(24).toString('hex');
const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

describe("a person's own Couch", function () {
  this.timeout(300_000);
  let registryCouch: CouchNode;
  let mine: CouchNode;
  const nodes = new Map<string, CouchNode>();
  let dir: string;
  let gw: GatewayProcess;
  let log = '';
  const admin = adminApi(() => gw.url, ADMIN);
  const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 90_000) => {
    for (const by = Date.now() + ms; !(await ok()); await sleep(250)) assert.ok(Date.now() < by, `timed out waiting for ${what}`);
  };
  const nodeState = async (name: string): Promise<string | undefined> => (await admin('GET', '/nodes')).find((n: { name: string }) => n.name === name)?.state;
  const cli = (...args: string[]) => run(process.execPath, [BIN, ...args, '--server', gw.url], { env: { ...process.env, SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_DATA: dir } });

  before(async () => {
    const started = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode(), startCouchNode()]);
    [registryCouch, mine] = [started[0] as CouchNode, started[3] as CouchNode];
    nodes.set('a', started[1] as CouchNode).set('b', started[2] as CouchNode);
    dir = await mkdtemp(join(tmpdir(), 'syncgate-own-couch-'));
    gw = await spawnGateway(federationEnv(dir, registryCouch.url, ADMIN, { SYNCGATE_HEALTH_TIMEOUT_MS: '2000', SYNCGATE_FAILBACK_LEASE_MS: '2000' }));
    gw.child.stdout?.on('data', (d) => (log += String(d)));
    for (const n of ['a', 'b']) {
      await admin('POST', '/operators', { name: `op-${n}` });
      await admin('POST', '/nodes', { name: n, operator: `op-${n}`, url: nodes.get(n)?.url, capacity: 100 });
    }
    await admin('POST', '/nodes/default/drain');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && process.env.SYNCGATE_TEST_LOG) writeFileSync(`${process.env.SYNCGATE_TEST_LOG}.own-couch`, log);
  });

  after(async () => {
    await gw?.kill('SIGTERM');
    await Promise.all([registryCouch, mine, ...nodes.values()].map((c) => c?.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  async function newUser(): Promise<{ email: string; creds: Credentials }> {
    const accounts = new LocalAccounts(dir);
    const acct = await accounts.create(`own-${randomBytes(4).toString('hex')}@example.com`);
    const res = await requestToken(gw.url, { bearer: await accounts.bearer(acct, 3600), keyId: keyIdOf(acct) });
    assert.equal(res.status, 200, res.text);
    return { email: acct.email, creds: credentialsOf(res) };
  }

  it('registered, moved to, killed (the replica serves), back (failback), given up (moved back): nothing acknowledged lost, nobody else placed there', async () => {
    const { email, creds } = await newUser();
    const load = syncWithoutPause(() => [new SyncClient({ ...creds, api_endpoint: `${gw.url}/1.5/${creds.uid}` })]);
    await sleep(1000);
    const own = `own-${creds.uid}`;

    // A URL that is not a Couch is refused like any node, and nothing moves.
    const refused = await fetch(`${gw.url}/__admin__/users/${encodeURIComponent(email)}/couch`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/' }),
    });
    assert.equal(refused.status, 422, await refused.text());

    const added = await cli('user', 'couch', email, '--url', mine.url, '--replica');
    assert.match(added.stdout, new RegExp(`uid ${creds.uid}: on ${own}, replica on [ab]`));
    const nodesNow = await admin('GET', '/nodes');
    const view = nodesNow.find((n: { name: string }) => n.name === own);
    assert.ok(view, 'their Couch is a node');
    assert.equal(view.url.includes('@'), false, 'no credentials in the answer');
    assert.ok(view.owner, 'owned by the account');

    // Nobody else goes there.
    for (let i = 0; i < 6; i++) {
      const other = await newUser();
      assert.notEqual((await admin('GET', `/uids/${other.creds.uid}`)).node, own);
    }

    // Their Couch dies: served from the replica; back: merged, and served from it again.
    await mine.kill();
    await waitFor(`${own} marked failed`, async () => (await nodeState(own)) === 'failed');
    let count = load.acked.size;
    await waitFor('writes acknowledged while their Couch is out', async () => load.acked.size > count + 5);
    await mine.restart();
    await waitFor(`${own} merged back`, async () => (await nodeState(own)) === 'active');
    count = load.acked.size;
    await waitFor('writes acknowledged by their Couch again', async () => load.acked.size > count + 5);
    assert.equal((await admin('GET', `/uids/${creds.uid}`)).node, own);

    // Given up: the storage moves back to an operator's node, and their Couch leaves the registry.
    const removed = await cli('user', 'couch', email, '--remove');
    assert.match(removed.stdout, new RegExp(`uid ${creds.uid}: on [ab]`));
    await waitFor(`${own} gone from the registry`, async () => (await nodeState(own)) === undefined);
    await sleep(1000);
    await load.stop();
    const placed = await admin('GET', `/uids/${creds.uid}`);
    assert.deepEqual(load.errors, [], 'only 200 and 503 + Retry-After');
    const stored = await recordsOnNode(nodes.get(placed.node) as CouchNode, creds.uid, 'history');
    assert.deepEqual([...load.acked].filter((id) => !stored.has(id)), [], `every acknowledged write is on ${placed.node}`);
    assert.deepEqual([...load.acked].filter((id) => !load.seen.has(id)), [], 'the second device listed every acknowledged record');
  });

  it('from the account page: a person proves their password and gives their Couch; a Couch that fails the check is refused with the reason', async () => {
    const email = `page-${randomBytes(4).toString('hex')}@example.org`;
    const password = 'a long password';
    const f = await signInFirefox(gw.url, email, password, 'signUp');
    const token = await requestToken(gw.url, { bearer: f.accessToken, keyId: f.kid });
    assert.equal(token.status, 200, token.text);
    const creds = credentialsOf(token);
    const client = new SyncClient(creds);
    const records = Array.from({ length: 20 }, (_, i) => ({ id: `p${i}`, payload: `page ${i}` }));
    assert.equal((await client.post('/storage/passwords', records)).status, 200);
    const authPW = credentials(email, password).authPW.toString('hex');
    const own = `own-${creds.uid}`;

    const wrong = await post(gw.url, '/v1/syncgate/own-couch', { email, authPW: credentials(email, 'not the password').authPW.toString('hex'), url: mine.url });
    assert.equal(wrong.status, 400, wrong.text);
    assert.equal(wrong.json().errno, 103, 'a wrong password is refused as on sign-in');
    const notCouch = await post(gw.url, '/v1/syncgate/own-couch', { email, authPW, url: 'http://127.0.0.1:9/' });
    assert.equal(notCouch.status, 400, notCouch.text);
    assert.match(notCouch.json().message, /refused/, 'the reason is given');

    const there = await post(gw.url, '/v1/syncgate/own-couch', { email, authPW, url: mine.url, replica: false });
    assert.equal(there.status, 200, there.text);
    await waitFor('the storage on their Couch', async () => {
      const s = await admin('GET', `/users/${creds.uid}/move`);
      return s.move === null && s.node === own;
    });
    assert.equal((await admin('GET', `/uids/${creds.uid}`)).replica, null, 'no replica: they did not ask for one');
    assert.equal((await recordsOnNode(mine, creds.uid, 'passwords')).size, records.length);

    const back = await post(gw.url, '/v1/syncgate/own-couch', { email, authPW, remove: true });
    assert.equal(back.status, 200, back.text);
    await waitFor(`${own} gone from the registry`, async () => (await nodeState(own)) === undefined);
    const placed = await admin('GET', `/uids/${creds.uid}`);
    assert.ok(['a', 'b'].includes(placed.node));
    const listed = await client.get('/storage/passwords?full=1');
    assert.equal(listed.status, 200);
    assert.deepEqual((listed.json() as Array<{ id: string }>).map((r) => r.id).sort(), records.map((r) => r.id).sort());
  });
});
