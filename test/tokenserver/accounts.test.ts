// syncgate as the accounts server Firefox signs in to: sign-up and sign-in with onepw derived
// credentials, the key bundle, the OAuth code with keys_jwe and PKCE, the tokens Firefox asks
// for afterwards, and the storage those tokens open. Every call is HTTP to a running gateway,
// signed as Firefox and the page sign them; accounts live in the gateway's registry.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Doc } from '../../storage/doc-db.js';
import { FIREFOX_CLIENT, FirefoxFlow, hawkRequest, OLDSYNC, Page, post, redeem, signInFirefox } from '../support/accounts-client.js';
import { rawRequest, SyncClient, type SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { credentialsOf, requestToken } from '../support/tokens.js';

const email = () => `${randomBytes(6).toString('hex')}@example.org`;

function assertErrno(res: SyncResponse, status: number, errno: number): void {
  assert.equal(res.status, status, res.text);
  const body = res.json<{ code: number; errno: number; error: string; message: string }>();
  assert.equal(body.errno, errno, res.text);
  assert.equal(body.code, status);
  assert.equal(typeof body.message, 'string');
  assert.match(res.header('content-type') ?? '', /^application\/json/);
}

/** Firefox's token-server call after sign-in: an oldsync access token and the kid as X-KeyID. */
async function syncToken(gw: TestGateway, sessionToken: string, kid: string): Promise<SyncResponse> {
  const t = await hawkRequest(gw.url, 'POST', '/v1/oauth/token', sessionToken, 'sessionToken', { client_id: FIREFOX_CLIENT, grant_type: 'fxa-credentials', scope: OLDSYNC, ttl: 21600 });
  assert.equal(t.status, 200, t.text);
  return requestToken(gw.url, { bearer: t.json().access_token, keyId: kid });
}

describe('accounts server (Firefox sign-in)', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(() => gw.close());

  it('names itself as every server Firefox needs in /.well-known/fxa-client-configuration', async () => {
    const res = await rawRequest('GET', `${gw.url}/.well-known/fxa-client-configuration`);
    assert.equal(res.status, 200, res.text);
    const config = res.json();
    for (const key of ['auth_server_base_url', 'oauth_server_base_url', 'profile_server_base_url', 'sync_tokenserver_base_url']) assert.equal(config[key], gw.url, key);
  });

  it('serves the sign-in page, its script and jose at the root, and nothing else from disk', async () => {
    const page = await rawRequest('GET', `${gw.url}/?context=oauth_webchannel_v1`);
    assert.equal(page.status, 200);
    assert.match(page.header('content-type') ?? '', /^text\/html/);
    assert.match(page.header('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(page.text, /<label for="password">/);
    for (const path of ['/static/pages/signin.js', '/static/jose/index.js']) {
      const res = await rawRequest('GET', gw.url + path);
      assert.equal(res.status, 200, path);
      assert.match(res.header('content-type') ?? '', /^text\/javascript/);
    }
    for (const path of ['/static/../package.json', '/static/pages/../../config.ts', '/static/jose/../package.json']) {
      assert.notEqual((await rawRequest('GET', gw.url + path)).status, 200, path);
    }
  });

  it('signs up, and a second device signing in gets the same k and kid, and the same storage', async () => {
    const address = email();
    const a = await signInFirefox(gw.url, address, 'correct horse', 'signUp');
    const b = await signInFirefox(gw.url, address, 'correct horse', 'signIn');
    assert.equal(b.uid, a.uid);
    assert.equal(b.k, a.k);
    assert.equal(b.kid, a.kid);
    assert.equal(Buffer.from(a.k, 'base64url').length, 64);
    assert.match(a.kid, /^\d{13}-[A-Za-z0-9_-]{22}$/);
    const ta = await syncToken(gw, a.sessionToken, a.kid);
    const tb = await syncToken(gw, b.sessionToken, b.kid);
    assert.equal(ta.status, 200, ta.text);
    assert.equal(tb.json().uid, ta.json().uid);
    const deviceA = new SyncClient(credentialsOf(ta));
    assert.equal((await deviceA.put('/storage/bookmarks/one', { payload: 'from A' })).status, 200);
    const deviceB = new SyncClient(credentialsOf(tb));
    assert.equal((await deviceB.get('/storage/bookmarks/one')).json().payload, 'from A');
  });

  it('refuses a wrong password (103), an unknown email (102) and a taken email (101)', async () => {
    const address = email();
    const page = new Page(gw.url);
    assert.equal((await page.signUp(address, 'right')).status, 200);
    assertErrno(await page.signIn(address, 'wrong'), 400, 103);
    assertErrno(await page.signIn(email(), 'right'), 400, 102);
    assertErrno(await page.signUp(address, 'other'), 400, 101);
    assertErrno(await post(gw.url, '/v1/account/login', { email: address }), 400, 108);
    assertErrno(await post(gw.url, '/v1/account/login', { email: address, authPW: 'not hex' }), 400, 107);
  });

  it('a password change keeps the key; the old password stops working', async () => {
    const address = email();
    const before = await signInFirefox(gw.url, address, 'old password', 'signUp');
    const page = new Page(gw.url);
    const s = await page.session(address, 'old password', 'signIn');
    const { credentials, xor } = await import('../../server/accounts/onepw.js');
    const next = credentials(address, 'new password');
    const res = await post(gw.url, '/v1/password/change', {
      email: address,
      oldAuthPW: credentials(address, 'old password').authPW.toString('hex'),
      authPW: next.authPW.toString('hex'),
      wrapKb: xor(s.kB, next.unwrapBKey).toString('hex'),
    });
    assert.equal(res.status, 200, res.text);
    assertErrno(await page.signIn(address, 'old password'), 400, 103);
    const after = await signInFirefox(gw.url, address, 'new password', 'signIn');
    assert.equal(after.k, before.k);
    assert.equal(after.kid, before.kid);
  });

  it('checks PKCE, and a code is redeemed once', async () => {
    const page = new Page(gw.url);
    const s = await page.session(email(), 'pw', 'signUp');
    const flow = await FirefoxFlow.start();
    const code = (await page.authorize(s.sessionToken, s.kB, flow)).json().code as string;
    assertErrno(await redeem(gw.url, s.sessionToken, code, randomBytes(32).toString('base64url')), 400, 175);
    assert.equal((await redeem(gw.url, s.sessionToken, code, flow.verifier)).status, 200);
    assertErrno(await redeem(gw.url, s.sessionToken, code, flow.verifier), 400, 172);
    assertErrno(await page.authorize(s.sessionToken, s.kB, flow, { code_challenge: undefined, code_challenge_method: undefined }), 400, 169);
    assertErrno(await page.authorize(s.sessionToken, s.kB, flow, { client_id: '0123456789abcdef' }), 400, 162);
  });

  it('refuses an expired code (174)', async () => {
    const page = new Page(gw.url);
    const s = await page.session(email(), 'pw', 'signUp');
    const flow = await FirefoxFlow.start();
    const code = (await page.authorize(s.sessionToken, s.kB, flow)).json().code as string;
    // Ten minutes on: the stored code's expiry, moved into the past.
    const db = gw.server.registry.db;
    const id = `oauthcode:${createHash('sha256').update(code).digest('hex')}`;
    const doc = (await db.get<Doc & { expiresAt: number }>(id)) as Doc & { expiresAt: number };
    assert.notEqual(await db.put({ ...doc, expiresAt: Date.now() - 1 } as Doc), 'conflict');
    assertErrno(await redeem(gw.url, s.sessionToken, code, flow.verifier), 400, 174);
    // The sweep deletes what ran out unused.
    const { AccountStore } = await import('../../server/accounts/account-store.js');
    assert.ok((await new AccountStore(db).sweep()) >= 1);
    assert.equal(await db.get(id), undefined);
  });

  it('refuses a bad Hawk signature (109) and an unknown session (110)', async () => {
    const s = await new Page(gw.url).session(email(), 'pw', 'signUp');
    const good = await hawkRequest(gw.url, 'GET', '/v1/session/status', s.sessionToken, 'sessionToken');
    assert.equal(good.status, 200, good.text);
    assert.equal(good.json().uid, s.uid);
    // The MAC of another path, presented for this one.
    const other = await hawkRequest(gw.url, 'GET', '/v1/account/devices', s.sessionToken, 'sessionToken');
    assert.equal(other.status, 200);
    const { tokenKeys } = await import('../../server/accounts/onepw.js');
    // @ts-expect-error the hawk package ships no types
    const Hawk = (await import('hawk')).default;
    const { id, authKey } = tokenKeys(Buffer.from(s.sessionToken, 'hex'), 'sessionToken');
    const { header } = Hawk.client.header(`${gw.url}/v1/account/devices`, 'GET', { credentials: { id, key: authKey, algorithm: 'sha256' } });
    assertErrno(await rawRequest('GET', `${gw.url}/v1/session/status`, { headers: { Authorization: header } }), 401, 109);
    // A body other than the one hashed.
    const { header: hashed } = Hawk.client.header(`${gw.url}/v1/account/devices/notify`, 'POST', { credentials: { id, key: authKey, algorithm: 'sha256' }, payload: '{"to":"all"}', contentType: 'application/json' });
    assertErrno(await rawRequest('POST', `${gw.url}/v1/account/devices/notify`, { headers: { Authorization: hashed }, body: '{"to":"none"}' }), 401, 109);
    assertErrno(await hawkRequest(gw.url, 'GET', '/v1/session/status', randomBytes(32).toString('hex'), 'sessionToken'), 401, 110);
    assertErrno(await rawRequest('GET', `${gw.url}/v1/session/status`), 401, 110);
  });

  it('sign-out ends the session; a revoked refresh token is refused (110)', async () => {
    const f = await signInFirefox(gw.url, email(), 'pw', 'signUp');
    const refreshed = await post(gw.url, '/v1/oauth/token', { grant_type: 'refresh_token', client_id: FIREFOX_CLIENT, refresh_token: f.refreshToken });
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal((await post(gw.url, '/v1/oauth/destroy', { client_id: FIREFOX_CLIENT, token: f.refreshToken })).status, 200);
    assertErrno(await post(gw.url, '/v1/oauth/token', { grant_type: 'refresh_token', client_id: FIREFOX_CLIENT, refresh_token: f.refreshToken }), 401, 110);
    assert.equal((await hawkRequest(gw.url, 'POST', '/v1/session/destroy', f.sessionToken, 'sessionToken', {})).status, 200);
    assertErrno(await hawkRequest(gw.url, 'GET', '/v1/session/status', f.sessionToken, 'sessionToken'), 401, 110);
    const status = await rawRequest('GET', `${gw.url}/v1/account/status?uid=${f.uid}`);
    assert.deepEqual(status.json(), { exists: true });
  });

  it('registers the device Firefox describes and lists it as the current one', async () => {
    const f = await signInFirefox(gw.url, email(), 'pw', 'signUp');
    const reg = await hawkRequest(gw.url, 'POST', '/v1/account/device', f.sessionToken, 'sessionToken', { name: 'Test Firefox', type: 'desktop', availableCommands: {} });
    assert.equal(reg.status, 200, reg.text);
    const id = reg.json().id as string;
    assert.match(id, /^[0-9a-f]{32}$/);
    const again = await hawkRequest(gw.url, 'POST', '/v1/account/device', f.sessionToken, 'sessionToken', { id, name: 'Renamed' });
    assert.equal(again.json().id, id);
    const list = (await hawkRequest(gw.url, 'GET', '/v1/account/devices?filterIdleDevicesTimestamp=0', f.sessionToken, 'sessionToken')).json();
    assert.equal(list.length, 1);
    assert.equal(list[0].name, 'Renamed');
    assert.equal(list[0].isCurrentDevice, true);
    assertErrno(await hawkRequest(gw.url, 'POST', '/v1/account/device', f.sessionToken, 'sessionToken', { id: randomBytes(16).toString('hex'), name: 'x' }), 400, 123);
    const commands = await hawkRequest(gw.url, 'GET', '/v1/account/device/commands?index=1', f.sessionToken, 'sessionToken');
    assert.deepEqual(commands.json().messages, []);
  });

  it('serves the profile for a profile token only, with the signed-in uid', async () => {
    const address = email();
    const f = await signInFirefox(gw.url, address, 'pw', 'signUp');
    const token = async (scope: string) =>
      (await hawkRequest(gw.url, 'POST', '/v1/oauth/token', f.sessionToken, 'sessionToken', { client_id: FIREFOX_CLIENT, grant_type: 'fxa-credentials', scope })).json().access_token as string;
    const profile = await rawRequest('GET', `${gw.url}/v1/profile`, { headers: { Authorization: `Bearer ${await token('profile')}` } });
    assert.equal(profile.status, 200, profile.text);
    assert.equal(profile.json().uid, f.uid);
    assert.equal(profile.json().email, address);
    assertErrno(await rawRequest('GET', `${gw.url}/v1/profile`, { headers: { Authorization: `Bearer ${await token(OLDSYNC)}` } }), 401, 110);
  });

  it('slows password guessing: after five wrong passwords the account waits, with retryAfter', async () => {
    const address = email();
    const page = new Page(gw.url);
    assert.equal((await page.signUp(address, 'right')).status, 200);
    for (let i = 0; i < 5; i++) assertErrno(await page.signIn(address, `wrong ${i}`), 400, 103);
    const held = await page.signIn(address, 'right');
    assertErrno(held, 429, 114);
    assert.ok(held.json().retryAfter > 0 && held.json().retryAfter <= 30, held.text);
    assert.equal(held.header('retry-after'), String(held.json().retryAfter));
  });

  it('keeps neither the password nor kB: nothing stored holds them or the key Firefox gets', async () => {
    const address = email();
    const password = `secret ${randomBytes(8).toString('hex')}`;
    const page = new Page(gw.url);
    const s = await page.session(address, password, 'signUp');
    const f = await signInFirefox(gw.url, address, password, 'signIn');
    const { credentials } = await import('../../server/accounts/onepw.js');
    const c = credentials(address, password);
    const secrets = [password, s.kB.toString('hex'), s.kB.toString('base64'), s.kB.toString('base64url'), f.k, c.unwrapBKey.toString('hex'), c.authPW.toString('hex')];
    const docs = await gw.server.registry.db.range<Doc>('', '\ufff0');
    const stored = JSON.stringify(docs);
    assert.ok(stored.includes(address), 'the account is in the registry');
    for (const secret of secrets) assert.ok(!stored.includes(secret), `the registry holds ${secret}`);
    const files = await readdir(gw.config.dataDir, { recursive: true, withFileTypes: true });
    for (const file of files.filter((e) => e.isFile())) {
      const bytes = await readFile(join(file.parentPath, file.name));
      for (const secret of secrets) assert.ok(!bytes.includes(Buffer.from(secret)), `${file.name} holds ${secret}`);
    }
  });

  it('a deleted account is signed out: its session, refresh token and access tokens stop', async () => {
    const f = await signInFirefox(gw.url, email(), 'pw', 'signUp');
    const t = await hawkRequest(gw.url, 'POST', '/v1/oauth/token', f.sessionToken, 'sessionToken', { client_id: FIREFOX_CLIENT, grant_type: 'fxa-credentials', scope: OLDSYNC });
    const { AccountStore } = await import('../../server/accounts/account-store.js');
    assert.equal(await new AccountStore(gw.server.registry.db).delete(f.uid), true);
    assertErrno(await hawkRequest(gw.url, 'GET', '/v1/session/status', f.sessionToken, 'sessionToken'), 401, 110);
    assertErrno(await post(gw.url, '/v1/oauth/token', { grant_type: 'refresh_token', client_id: FIREFOX_CLIENT, refresh_token: f.refreshToken }), 401, 110);
    const res = await requestToken(gw.url, { bearer: t.json().access_token, keyId: f.kid });
    assert.equal(res.status, 401, res.text);
    assert.deepEqual((await rawRequest('GET', `${gw.url}/v1/account/status?uid=${f.uid}`)).json(), { exists: false });
  });
});

describe('accounts server with sign-up turned off', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ SYNCGATE_SIGNUP: 'false' });
  });
  after(() => gw.close());

  it('refuses sign-up with 403, errno 202', async () => {
    assertErrno(await new Page(gw.url).signUp(email(), 'pw'), 403, 202);
  });
});
