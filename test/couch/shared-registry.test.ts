// Two gateways sharing one registry on one Couch (and one data folder for the local issuer's
// key, as gateways of one deployment share their configuration): racing token requests for
// the same account get the same uid from either gateway, credentials from one work on the
// other, a key change on one is enforced by the other at once, and a node change written by
// one is followed by the other through the registry's _changes feed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeDoc, UidDoc } from '../../federation/registry.js';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { FIREFOX_CLIENT, OLDSYNC, post, signInFirefox } from '../support/accounts-client.js';
import { rawRequest, SyncClient } from '../support/client.js';
import { testCouchUrl } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { credentialsOf, keyId, requestToken } from '../support/tokens.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('two gateways sharing one registry on Couch', function () {
  this.timeout(60_000);
  let dir: string;
  let a: TestGateway;
  let b: TestGateway;
  let accounts: LocalAccounts;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'syncgate-registry-'));
    const env = { COUCH_URL: await testCouchUrl(), SYNC_MASTER_SECRET: randomBytes(24).toString('hex'), SYNCGATE_FXA: 'false' };
    a = await startGateway(env, dir);
    b = await startGateway(env, dir);
    accounts = new LocalAccounts(dir);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('racing first token requests on both gateways hand out one uid per account, and no stray uid claims', async () => {
    const created = await Promise.all([...Array(6)].map((_, i) => accounts.create(`race${i}-${randomBytes(4).toString('hex')}@example.com`)));
    await Promise.all(
      created.map(async (acct) => {
        const bearer = await accounts.bearer(acct, 600);
        const answers = await Promise.all([a, b, a, b].map((gw) => requestToken(gw.url, { bearer, keyId: keyIdOf(acct) })));
        for (const r of answers) assert.equal(r.status, 200, r.text);
        const uids = new Set(answers.map((r) => r.json().uid));
        assert.equal(uids.size, 1, `${acct.email} got uids ${[...uids].join(', ')}`);
        const email = `${acct.sub}@accounts.syncgate.local`;
        const doc = await a.server.registry.user(email);
        assert.equal(doc?.rows.length, 1);
        const claims = (await a.server.registry.db.range<UidDoc>('uid:', 'uid:\ufff0')).filter((d) => d.email === email);
        assert.deepEqual(claims.map((c) => Number(c._id.slice(4))), [...uids]);
      }),
    );
  });

  it('credentials from one gateway work on the other; a key change on one is enforced by the other', async () => {
    const acct = await accounts.create(`both-${randomBytes(4).toString('hex')}@example.com`);
    const bearer = await accounts.bearer(acct, 600);
    const creds = credentialsOf(await requestToken(a.url, { bearer, keyId: keyIdOf(acct) }));
    assert.equal((await new SyncClient(creds).put('/storage/bookmarks/x', { payload: 'p' })).status, 200);
    const onB = new SyncClient({ ...creds, api_endpoint: creds.api_endpoint.replace(a.url, b.url) });
    assert.equal((await onB.get('/storage/bookmarks/x')).json().payload, 'p');

    const newKey = keyId(acct.keysChangedAt + 10, randomBytes(16).toString('hex'));
    const changed = await requestToken(a.url, { bearer, keyId: newKey });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.json().uid, creds.uid);
    const stale = await requestToken(b.url, { bearer, keyId: keyIdOf(acct) });
    assert.equal(stale.status, 401);
    assert.equal((await requestToken(b.url, { bearer, keyId: newKey })).json().uid, changed.json().uid);
  });

  it('a node taken down through one gateway\'s registry is seen by the other through the _changes feed', async () => {
    const db = a.server.registry.db;
    const setDowned = async (downed: boolean) => {
      for (;;) {
        const node = (await db.get<NodeDoc>('node:default')) as NodeDoc;
        if ((await db.put({ ...node, downed } as NodeDoc)) !== 'conflict') return;
      }
    };
    await setDowned(true);
    try {
      const deadline = Date.now() + 10_000;
      let res;
      do {
        const acct = await accounts.create(`late-${randomBytes(4).toString('hex')}@example.com`);
        res = await requestToken(b.url, { bearer: await accounts.bearer(acct, 600), keyId: keyIdOf(acct) });
        if (res.status === 503) break;
        await sleep(200);
      } while (Date.now() < deadline);
      assert.equal(res.status, 503, 'gateway B still places new users on a downed node');
      assert.ok(Number(res.header('retry-after')) > 0);
    } finally {
      await setDowned(false);
    }
    // And back up: B follows that too.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const acct = await accounts.create(`up-${randomBytes(4).toString('hex')}@example.com`);
      const res = await requestToken(b.url, { bearer: await accounts.bearer(acct, 600), keyId: keyIdOf(acct) });
      if (res.status === 200) break;
      assert.ok(Date.now() < deadline, 'gateway B did not see the node come back');
      await sleep(200);
    }
  });
});

describe('gateways sharing a registry but not a data folder: one accounts server', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  let a: TestGateway;
  let b: TestGateway;
  let env: Record<string, string>;

  before(async () => {
    env = { COUCH_URL: await testCouchUrl(), SYNC_MASTER_SECRET: randomBytes(24).toString('hex'), SYNCGATE_FXA: 'false' };
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(join(tmpdir(), 'syncgate-registry-')));
    a = await startGateway(env, dirs[0]);
    b = await startGateway(env, dirs[1]);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a Firefox signed in on one gateway gets its token, refresh and storage from the other', async () => {
    const email = `${randomBytes(4).toString('hex')}@example.org`;
    const f = await signInFirefox(a.url, email, 'a password', 'signUp');
    // Everything after sign-in on the other gateway, as behind a load balancer.
    const refreshed = await post(b.url, '/v1/oauth/token', { grant_type: 'refresh_token', client_id: FIREFOX_CLIENT, refresh_token: f.refreshToken, scope: OLDSYNC });
    assert.equal(refreshed.status, 200, refreshed.text);
    for (const [gw, bearer] of [[b, f.accessToken], [a, refreshed.json().access_token], [b, refreshed.json().access_token]] as const) {
      const token = await requestToken(gw.url, { bearer, keyId: f.kid });
      assert.equal(token.status, 200, `${gw === a ? 'a' : 'b'}: ${token.text}`);
    }
    const onB = new SyncClient(credentialsOf(await requestToken(b.url, { bearer: refreshed.json().access_token, keyId: f.kid })));
    assert.equal((await onB.put('/storage/bookmarks/x', { payload: 'via b' })).status, 200);
    const jwksA = (await rawRequest('GET', `${a.url}/.well-known/jwks.json`)).json() ?? {};
    const jwksB = (await rawRequest('GET', `${b.url}/.well-known/jwks.json`)).json() ?? {};
    assert.ok(jwksA.keys.some((k: { kid: string }) => jwksB.keys.some((l: { kid: string }) => l.kid === k.kid)), 'one signing key in both key sets');
  });

  it('a gateway of another SYNC_MASTER_SECRET on that registry keeps a key of its own and accepts none of theirs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-registry-'));
    dirs.push(dir);
    const other = await startGateway({ ...env, SYNC_MASTER_SECRET: randomBytes(24).toString('hex') }, dir);
    try {
      const f = await signInFirefox(a.url, `${randomBytes(4).toString('hex')}@example.org`, 'a password', 'signUp');
      const kids = async (gw: TestGateway) => ((await rawRequest('GET', `${gw.url}/.well-known/jwks.json`)).json().keys as Array<{ kid: string }>).map((k) => k.kid);
      const theirs = await kids(a);
      assert.deepEqual((await kids(other)).filter((k) => theirs.includes(k)), []);
      assert.equal((await requestToken(other.url, { bearer: f.accessToken, keyId: f.kid })).status, 401);
    } finally {
      await other.close();
    }
  });
});
