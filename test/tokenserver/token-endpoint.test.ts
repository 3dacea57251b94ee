// The token endpoint as Firefox uses it (spec 9), with a local account of the built-in issuer:
// a bearer token and X-KeyID in, storage credentials out, then Hawk-signed storage calls with
// them. Covers the answer's fields and headers, token renewal, key changes (new uid, empty
// storage, the old uid's storage deleted later), the user model's refusals and every error
// body of spec 9.2.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PouchBackend } from '../../storage/pouch/pouch-backend.js';
import { LocalAccounts, keyIdOf, type LocalAccount } from '../../server/tokenserver/local-accounts.js';
import { SyncClient, type SyncResponse } from '../support/client.js';
import { storeUnderTest, testCouchUrl } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';
import { credentialsOf, keyId, requestToken } from '../support/tokens.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const newState = () => randomBytes(16).toString('hex');

function assertTokenError(res: SyncResponse, status: number, statusString: string, description?: string | RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.match(res.header('content-type') ?? '', /^application\/json/);
  assert.match(res.header('x-timestamp') ?? '', /^\d+$/);
  const body = res.json<{ status: string; errors: Array<{ location: string; name: string; description: string }> }>();
  assert.equal(body.status, statusString);
  assert.equal(body.errors.length, 1);
  if (typeof description === 'string') assert.equal(body.errors[0]?.description, description);
  else if (description) assert.match(body.errors[0]?.description ?? '', description);
}

async function couchDatabaseExists(uid: number): Promise<boolean> {
  const url = new URL(await testCouchUrl());
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  const res = await fetch(`${url.origin}/sync_${uid}`, { headers: { Authorization: auth } });
  return res.status === 200;
}

/** Resolves when the gateway process logs a line with `msg`; rejects after `ms`. */
function logged(gw: GatewayProcess, msg: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      gw.child.stdout?.off('data', onData);
      reject(new Error(`the gateway did not log "${msg}" within ${ms} ms`));
    }, ms);
    const onData = (d: Buffer) => {
      if (!String(d).includes(`"msg":"${msg}"`)) return;
      clearTimeout(timer);
      gw.child.stdout?.off('data', onData);
      resolve();
    };
    gw.child.stdout?.on('data', onData);
  });
}

describe('token endpoint with local accounts (GET /1.0/sync/1.5)', function () {
  let gw: TestGateway;
  let accounts: LocalAccounts;

  before(async () => {
    gw = await startGateway({ SYNCGATE_PURGE_REPLACED_AFTER: '0', SYNCGATE_PURGE_INTERVAL: '1', SYNCGATE_FXA: 'false' });
    accounts = new LocalAccounts(gw.config.dataDir);
  });
  after(() => gw.close());

  async function account(): Promise<{ account: LocalAccount; bearer: string }> {
    const a = await accounts.create(`${randomBytes(6).toString('hex')}@example.com`);
    return { account: a, bearer: await accounts.bearer(a, 3600) };
  }

  it('answers 200 with id, key, uid, api_endpoint, duration, hashed_fxa_uid, hashalg, node_type, X-Timestamp and nosniff', async () => {
    const { account: a, bearer } = await account();
    const res = await requestToken(gw.url, { bearer, keyId: keyIdOf(a) });
    assert.equal(res.status, 200, res.text);
    assert.match(res.header('content-type') ?? '', /^application\/json/);
    assert.match(res.header('x-timestamp') ?? '', /^\d+$/);
    assert.ok(Math.abs(Number(res.header('x-timestamp')) - Date.now() / 1000) < 5);
    assert.equal(res.header('x-content-type-options'), 'nosniff');
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['api_endpoint', 'duration', 'hashalg', 'hashed_fxa_uid', 'id', 'key', 'node_type', 'uid']);
    assert.ok(Number.isSafeInteger(body.uid) && body.uid > 0);
    assert.equal(body.api_endpoint, `${gw.url}/1.5/${body.uid}`);
    assert.equal(body.duration, 3600);
    assert.match(body.hashed_fxa_uid, /^[0-9a-f]{32}$/);
    assert.equal(body.hashalg, 'sha256');
    assert.equal(typeof body.node_type, 'string');
    // The id is a tokenlib token whose payload carries the FxA identity, as Mozilla's does.
    const payload = JSON.parse(Buffer.from(body.id, 'base64url').subarray(0, -32).toString('utf8'));
    assert.equal(payload.uid, body.uid);
    assert.equal(payload.fxa_uid, a.sub);
    assert.equal(payload.fxa_kid, `${String(a.keysChangedAt).padStart(13, '0')}-${Buffer.from(a.clientState, 'hex').toString('base64url')}`);
    assert.equal(payload.node, gw.url);
  });

  it('its credentials work for Hawk-signed storage calls, and the same account keeps its uid', async () => {
    const { account: a, bearer } = await account();
    const first = credentialsOf(await requestToken(gw.url, { bearer, keyId: keyIdOf(a) }));
    const client = new SyncClient(first);
    const put = await client.put('/storage/meta/global', { id: 'global', payload: 'mg' }, { 'X-If-Unmodified-Since': '0' });
    assert.equal(put.status, 200, put.text);
    const again = credentialsOf(await requestToken(gw.url, { bearer, keyId: keyIdOf(a) }));
    assert.equal(again.uid, first.uid);
    const got = await new SyncClient(again).get('/storage/meta/global');
    assert.equal(got.status, 200);
    assert.equal(got.json().payload, 'mg');
    // A token is only good for its own uid.
    const other = await rawUidRequest(client, first.uid + 1);
    assert.equal(other.status, 401);
  });

  async function rawUidRequest(client: SyncClient, uid: number): Promise<SyncResponse> {
    const foreign = new SyncClient({ ...client.creds, api_endpoint: client.creds.api_endpoint.replace(/\/\d+$/, `/${uid}`) });
    return foreign.get('/info/collections');
  }

  it('a token expires: storage answers 401, a new token from the endpoint works and the data is still there', async () => {
    const { account: a, bearer } = await account();
    const short = await requestToken(gw.url, { bearer, keyId: keyIdOf(a), query: 'duration=1' });
    assert.equal(short.json().duration, 1);
    const client = new SyncClient(credentialsOf(short));
    assert.equal((await client.put('/storage/bookmarks/a', { payload: 'A' })).status, 200);
    await sleep(2100);
    assert.equal((await client.get('/storage/bookmarks/a')).status, 401);
    const fresh = await requestToken(gw.url, { bearer, keyId: keyIdOf(a) });
    assert.equal(fresh.status, 200);
    assert.equal(fresh.json().uid, client.uid);
    const got = await new SyncClient(credentialsOf(fresh)).get('/storage/bookmarks/a');
    assert.equal(got.status, 200);
    assert.equal(got.json().payload, 'A');
  });

  it('?duration= shortens the token but never lengthens it; junk values are ignored', async () => {
    const { account: a, bearer } = await account();
    const k = keyIdOf(a);
    assert.equal((await requestToken(gw.url, { bearer, keyId: k, query: 'duration=60' })).json().duration, 60);
    assert.equal((await requestToken(gw.url, { bearer, keyId: k, query: 'duration=999999' })).json().duration, 3600);
    assert.equal((await requestToken(gw.url, { bearer, keyId: k, query: 'duration=abc' })).json().duration, 3600);
    assert.equal((await requestToken(gw.url, { bearer, keyId: k, query: 'duration=-5' })).json().duration, 3600);
    assert.equal((await requestToken(gw.url, { bearer, keyId: k, query: 'duration=0' })).json().duration, 3600);
  });

  it('a key change gives a new uid with empty storage; the old client state is refused from then on', async () => {
    const { account: a, bearer } = await account();
    const oldKey = keyIdOf(a);
    const before = credentialsOf(await requestToken(gw.url, { bearer, keyId: oldKey }));
    const oldClient = new SyncClient(before);
    assert.equal((await oldClient.put('/storage/bookmarks/x', { payload: 'old' })).status, 200);

    const newKey = keyId(a.keysChangedAt + 1000, newState());
    const after = await requestToken(gw.url, { bearer, keyId: newKey });
    assert.equal(after.status, 200, after.text);
    const fresh = new SyncClient(credentialsOf(after));
    assert.notEqual(fresh.uid, before.uid);
    const info = await fresh.get('/info/collections');
    assert.equal(info.status, 200);
    assert.deepEqual(info.json(), {});
    assert.deepEqual((await fresh.get('/storage/bookmarks')).json(), []);

    assertTokenError(await requestToken(gw.url, { bearer, keyId: oldKey }), 401, 'invalid-client-state', 'Unacceptable client-state value stale value');
    // The old state with the new timestamp: stale, never handed back.
    const stale = keyId(a.keysChangedAt + 1000, a.clientState);
    assertTokenError(await requestToken(gw.url, { bearer, keyId: stale }), 401, 'invalid-client-state', 'Unacceptable client-state value stale value');
    assert.equal((await requestToken(gw.url, { bearer, keyId: newKey })).json().uid, fresh.uid);
  });

  it('the storage of the replaced uid is deleted in the background, the new uid is untouched', async () => {
    const { account: a, bearer } = await account();
    const old = new SyncClient(credentialsOf(await requestToken(gw.url, { bearer, keyId: keyIdOf(a) })));
    assert.equal((await old.put('/storage/bookmarks/x', { payload: 'old' })).status, 200);
    assert.ok(await databaseExists(old.uid));
    const fresh = new SyncClient(credentialsOf(await requestToken(gw.url, { bearer, keyId: keyId(a.keysChangedAt + 1, newState()) })));
    assert.equal((await fresh.put('/storage/bookmarks/y', { payload: 'new' })).status, 200);
    // Looked at once the registry records the purge, which it does after the deletion: a test
    // Couch asked about a database while deleting it (pouchdb-server) can open it again.
    const deadline = Date.now() + 15_000;
    while ((await gw.server.registry.placement(old.uid))?.purgedAt === undefined && Date.now() < deadline) await sleep(200);
    assert.notEqual((await gw.server.registry.placement(old.uid))?.purgedAt, undefined, 'the replaced uid was never purged');
    assert.equal(await databaseExists(old.uid), false, 'the replaced uid still has a database');
    assert.equal((await fresh.get('/storage/bookmarks/y')).json().payload, 'new');
  });

  const databaseExists = (uid: number) => (storeUnderTest === 'couch' ? couchDatabaseExists(uid) : gw.server.store.exists(String(uid)));

  it('refuses a new client state without a keys_changed_at change, and a keys_changed_at going back', async () => {
    const { account: a, bearer } = await account();
    assert.equal((await requestToken(gw.url, { bearer, keyId: keyIdOf(a) })).status, 200);
    assertTokenError(
      await requestToken(gw.url, { bearer, keyId: keyId(a.keysChangedAt, newState()) }),
      401,
      'invalid-client-state',
      'Unacceptable client-state value new value with no keys_changed_at change',
    );
    assertTokenError(await requestToken(gw.url, { bearer, keyId: keyId(a.keysChangedAt - 1, a.clientState) }), 401, 'invalid-keysChangedAt');
    assertTokenError(await requestToken(gw.url, { bearer, keyId: keyId(0, a.clientState) }), 401, 'invalid-keysChangedAt');
  });

  it('answers the header errors of spec 9.2, and stores nothing for a refused request', async () => {
    const { account: a, bearer } = await account();
    const email = `${a.sub}@accounts.syncgate.local`;
    assertTokenError(await requestToken(gw.url, { bearer }), 401, 'invalid-key-id', 'Missing X-KeyID header');
    for (const bad of ['12345', '-abc', 'abc-AAAA', '12-AA$A', `12-${Buffer.alloc(17).toString('base64url')}`]) {
      assertTokenError(await requestToken(gw.url, { bearer, keyId: bad }), 401, 'invalid-credentials');
    }
    assertTokenError(await requestToken(gw.url, { bearer, keyId: keyIdOf(a), clientState: 'not hex!' }), 400, 'error', 'Invalid client state value');
    const mismatch = await requestToken(gw.url, { bearer, keyId: keyIdOf(a), clientState: newState() });
    assertTokenError(mismatch, 401, 'invalid-client-state', 'Unauthorized');
    assert.equal(mismatch.json().errors[0].location, 'body');
    assert.equal(await gw.server.registry.user(email), undefined, 'a refused request created the user');
    // The legacy header equal to X-KeyID's client state is fine.
    assert.equal((await requestToken(gw.url, { bearer, keyId: keyIdOf(a), clientState: a.clientState })).status, 200);
  });

  it('answers 401 without credentials, with another scheme, or a bearer that is not a token', async () => {
    assertTokenError(await requestToken(gw.url, {}), 401, 'error', 'Unauthorized');
    assertTokenError(await requestToken(gw.url, { authorization: 'Bearer' }), 401, 'error', 'Unauthorized');
    assertTokenError(await requestToken(gw.url, { authorization: 'BrowserID abc.def' }), 401, 'error', 'Unsupported');
    assertTokenError(await requestToken(gw.url, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'error', 'Unsupported');
    assertTokenError(await requestToken(gw.url, { bearer: 'abc.def.ghi', keyId: '1-AAAA' }), 401, 'invalid-credentials', 'Unauthorized');
  });

  it('checks the application and version after authentication; other methods get 405', async () => {
    const { account: a, bearer } = await account();
    assertTokenError(await requestToken(gw.url, { path: '/1.0/foo/1.5' }), 401, 'error');
    const app = await requestToken(gw.url, { bearer, keyId: keyIdOf(a), path: '/1.0/foo/1.5' });
    assertTokenError(app, 404, 'error', 'Unsupported application');
    assert.equal(app.json().errors[0].location, 'url');
    const version = await requestToken(gw.url, { bearer, keyId: keyIdOf(a), path: '/1.0/sync/1.1' });
    assertTokenError(version, 404, 'error', 'Unsupported application version');
    assert.equal(version.json().errors[0].name, '1.1');
    const post = await requestToken(gw.url, { bearer, keyId: keyIdOf(a), method: 'POST' });
    assertTokenError(post, 405, 'error');
  });

  it('a deleted account\'s bearer tokens stop working', async () => {
    const { account: a, bearer } = await account();
    assert.equal((await requestToken(gw.url, { bearer, keyId: keyIdOf(a) })).status, 200);
    await accounts.delete(a.email);
    await sleep(2100); // the verifier re-reads the account list at most every 2 s
    assertTokenError(await requestToken(gw.url, { bearer, keyId: keyIdOf(a) }), 401, 'invalid-credentials');
  });

  it('serves the issuer JWKS (public key only)', async () => {
    const res = await fetch(`${gw.url}/v1/jwks`);
    assert.equal(res.status, 200);
    const jwks = (await res.json()) as { keys: Array<Record<string, string>> };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]?.kty, 'RSA');
    assert.equal(jwks.keys[0]?.alg, 'RS256');
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(jwks.keys[0]?.[secret], undefined);
    assert.deepEqual(await (await fetch(`${gw.url}/.well-known/jwks.json`)).json(), jwks);
  });

  it('with SYNCGATE_ALLOW_NEW_USERS=false an unknown account gets 403 new-users-disabled', async () => {
    const closed = await startGateway({ SYNCGATE_ALLOW_NEW_USERS: 'false', SYNCGATE_FXA: 'false' });
    try {
      const acc = new LocalAccounts(closed.config.dataDir);
      const a = await acc.create('nobody@example.com');
      const res = await requestToken(closed.url, { bearer: await acc.bearer(a, 600), keyId: keyIdOf(a) });
      assertTokenError(res, 403, 'new-users-disabled');
    } finally {
      await closed.close();
    }
  });
});

describe('a key change whose registry write is slow', function () {
  // The failpoint's 3 s and the 15 s the deletion may take: past mocha's 20 s a slow run
  // timed out instead of saying which assertion failed.
  this.timeout(30_000);
  let gw: GatewayProcess;
  let dataDir: string;
  let accounts: LocalAccounts;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'syncgate-test-'));
    // A process of its own, for the failpoint: the purger runs every second while the key
    // change is held for three, and meets the queued deletion while the old row is not yet
    // marked replaced, again and again.
    gw = await spawnGateway({
      PORT: '0',
      SYNCGATE_DATA: dataDir,
      SYNC_MASTER_SECRET: randomBytes(24).toString('hex'),
      SYNCGATE_PURGE_REPLACED_AFTER: '0',
      SYNCGATE_PURGE_INTERVAL: '1',
      SYNCGATE_FXA: 'false',
      SYNCGATE_FAILPOINT: 'login:before-swap=3000',
    });
    accounts = new LocalAccounts(dataDir);
  });
  after(async () => {
    await gw.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('deletes the storage of the replaced uid once the write lands, and keeps the new one', async () => {
    const a = await accounts.create(`${randomBytes(6).toString('hex')}@example.com`);
    const bearer = await accounts.bearer(a, 3600);
    const old = new SyncClient(credentialsOf(await requestToken(gw.url, { bearer, keyId: keyIdOf(a) })));
    assert.equal((await old.put('/storage/bookmarks/x', { payload: 'old' })).status, 200);
    const deleted = logged(gw, 'storage of a replaced uid deleted', 25_000);
    deleted.catch(() => undefined); // awaited below
    const started = Date.now();
    const changed = await requestToken(gw.url, { bearer, keyId: keyId(a.keysChangedAt + 1, newState()) });
    assert.equal(changed.status, 200, changed.text);
    assert.ok(Date.now() - started >= 3000, 'the failpoint held the key change');
    const fresh = new SyncClient(credentialsOf(changed));
    assert.notEqual(fresh.uid, old.uid);
    assert.equal((await fresh.put('/storage/bookmarks/y', { payload: 'new' })).status, 200);
    // Looked at once the gateway says it deleted it: a test Couch asked about a database while
    // deleting it (pouchdb-server) can open it again.
    await deleted;
    if (storeUnderTest === 'couch') {
      assert.equal(await couchDatabaseExists(old.uid), false, 'the replaced uid still has a database');
      assert.equal((await fresh.get('/storage/bookmarks/y')).json().payload, 'new');
      return;
    }
    // The embedded store's shards are locked by the gateway: look once it has stopped.
    assert.equal((await fresh.get('/storage/bookmarks/y')).json().payload, 'new');
    await gw.kill('SIGTERM');
    const stopped = new PouchBackend(dataDir);
    try {
      assert.equal(await stopped.exists(String(old.uid)), false, 'the replaced uid still has a database');
      assert.equal(await stopped.exists(String(fresh.uid)), true);
    } finally {
      await stopped.shutdown();
    }
  });
});
