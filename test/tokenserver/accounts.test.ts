// syncgate as the accounts server Firefox signs in to: sign-up and sign-in with onepw derived
// credentials, the key bundle, the OAuth code with keys_jwe and PKCE, the tokens Firefox asks
// for afterwards, and the storage those tokens open. Every call is HTTP to a running gateway,
// signed as Firefox and the page sign them; accounts live in the gateway's registry.
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, hkdf } from '../../server/accounts/onepw.js';
import type { Doc } from '../../storage/doc-db.js';
import { FIREFOX_CLIENT, FirefoxFlow, hawkRequest, OLDSYNC, Page, post, redeem, signInFirefox } from '../support/accounts-client.js';
import { rawRequest, SyncClient, type SyncResponse } from '../support/client.js';
import { adminApi, type AdminCall } from '../support/admin.js';
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

/** A Sync record payload as Firefox encrypts it: AES-256-CBC under key[0:32], HMAC-SHA256 under key[32:64] over the base64 ciphertext. */
function sealRecord(key: Buffer, cleartext: unknown): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key.subarray(0, 32), iv);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(cleartext)), cipher.final()]).toString('base64');
  const hmac = createHmac('sha256', key.subarray(32, 64)).update(ciphertext).digest('hex');
  return JSON.stringify({ ciphertext, IV: iv.toString('base64'), hmac });
}

/** Whether a 64-byte key opens the payload (its HMAC verifies): what Firefox checks before decrypting. */
function opensRecord(key: Buffer, payload: string): boolean {
  if (key.length !== 64) return false;
  const { ciphertext, hmac } = JSON.parse(payload) as { ciphertext: string; hmac: string };
  return createHmac('sha256', key.subarray(32, 64)).update(ciphertext).digest('hex') === hmac;
}

/** Every string in `text` that could be 32 or 64 bytes of key: hex, base64 and base64url. */
function keyMaterial(text: string): Buffer[] {
  const found = new Map<string, Buffer>();
  for (const m of text.matchAll(/[0-9a-fA-F]{64,128}/g)) {
    const hex = m[0];
    for (const len of [64, 128]) if (hex.length >= len) found.set(hex.slice(0, len), Buffer.from(hex.slice(0, len), 'hex'));
  }
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{43,88}={0,2}/g)) {
    const bytes = Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32 || bytes.length === 64) found.set(m[0], bytes);
  }
  return [...found.values()];
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

  it('nothing the server stores or logs decrypts a record Firefox uploaded: no key material in the registry or in the log lines', async () => {
    const log = new PassThrough();
    let logged = '';
    log.on('data', (d) => (logged += String(d)));
    const watched = await startGateway({}, undefined, { log });
    try {
      const address = email();
      const f = await signInFirefox(watched.url, address, `secret ${randomBytes(8).toString('hex')}`, 'signUp');
      const storage = new SyncClient(credentialsOf(await syncToken(watched, f.sessionToken, f.kid)));
      // As Firefox does: a random bundle key under kSync in crypto/keys, the records under it.
      const kSync = Buffer.from(f.k, 'base64url');
      const bundle = randomBytes(64);
      const keys = sealRecord(kSync, { id: 'keys', collection: 'crypto', default: [bundle.subarray(0, 32).toString('base64'), bundle.subarray(32).toString('base64')], collections: {} });
      assert.equal((await storage.put('/storage/crypto/keys', { payload: keys })).status, 200);
      assert.equal((await storage.put('/storage/bookmarks/one', { payload: sealRecord(bundle, { id: 'one', title: 'private' }) })).status, 200);
      assert.ok(opensRecord(kSync, keys), 'the control: Firefox\'s key opens it');

      const registry = JSON.stringify(await watched.server.registry.db.range<Doc>('', '\ufff0'));
      assert.ok(registry.includes(address) && logged.includes('"msg":"request"'), 'the registry and the log were read');
      const candidates = keyMaterial(`${registry}\n${logged}`);
      // The scan sees what is there: the account's kA (hex, in its document) is among them.
      const { AccountStore } = await import('../../server/accounts/account-store.js');
      const kA = Buffer.from((await new AccountStore(watched.server.registry.db).byEmail(address))?.kA ?? '', 'hex');
      assert.ok(kA.length === 32 && candidates.some((c) => c.equals(kA)), `kA among the ${candidates.length} key-like strings`);
      for (const c of candidates) {
        // As kSync itself, or as a kB that Firefox would derive it from.
        const tries = c.length === 64 ? [c] : [c, hkdf(c, 'oldsync', 64)];
        for (const key of tries) assert.ok(!opensRecord(key, keys), `the server holds a key that opens crypto/keys: ${c.toString('hex')}`);
      }
    } finally {
      await watched.close();
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

describe('accounts the operator makes: one-time links to sign up and to reset a password', function () {
  this.timeout(60_000);
  const ADMIN = randomBytes(16).toString('hex');
  let gw: TestGateway;
  let admin: AdminCall;
  before(async () => {
    gw = await startGateway({ SYNCGATE_SIGNUP: 'false', SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_PURGE_INTERVAL: '1' });
    admin = adminApi(() => gw.url, ADMIN);
  });
  after(() => gw.close());

  /** The token in an admin link, checked to be a link to this gateway's page for the address. */
  function linkToken(link: string, kind: 'invite' | 'reset', address: string): string {
    const url = new URL(link);
    assert.equal(url.origin, gw.url);
    assert.equal(url.pathname, '/');
    assert.equal(url.searchParams.get('email'), address);
    return url.searchParams.get(kind) as string;
  }

  async function invited(password: string): Promise<string> {
    const address = email();
    const { link } = await admin('POST', '/accounts', { email: address });
    const signUp = await post(gw.url, '/v1/account/create?keys=true', { email: address, authPW: credentials(address, password).authPW.toString('hex'), invite: linkToken(link, 'invite', address) });
    assert.equal(signUp.status, 200, signUp.text);
    return address;
  }

  it('an invite lets its address sign up once while sign-up is off, and no other address', async () => {
    const address = email();
    const made = await admin('POST', '/accounts', { email: address });
    assert.ok(Date.parse(made.expiresAt) > Date.now() + 6 * 24 * 3600_000);
    const invite = linkToken(made.link, 'invite', address);
    const authPW = (a: string) => credentials(a, 'a password').authPW.toString('hex');
    const other = email();
    assertErrno(await post(gw.url, '/v1/account/create', { email: other, authPW: authPW(other), invite }), 401, 110);
    assertErrno(await post(gw.url, '/v1/account/create', { email: address, authPW: authPW(address) }), 403, 202);
    assertErrno(await post(gw.url, '/v1/account/create', { email: address, authPW: authPW(address), invite: 'f'.repeat(64) }), 401, 110);
    assert.equal((await post(gw.url, '/v1/account/create', { email: address, authPW: authPW(address), invite })).status, 200);
    assertErrno(await post(gw.url, '/v1/account/create', { email: address, authPW: authPW(address), invite }), 401, 110);
    const f = await signInFirefox(gw.url, address, 'a password', 'signIn');
    assert.match(f.kid, /^\d{13}-/);
    const again = await fetch(`${gw.url}/__admin__/accounts`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ email: address }) });
    assert.equal(again.status, 409);
    const listed = (await admin('GET', '/accounts')) as Array<{ email: string; signsIn: boolean }>;
    assert.ok(listed.some((a) => a.email === address && a.signsIn));
  });

  it('a reset sets a new password without the old one: new key, every session ended, a new uid with empty storage', async () => {
    const address = await invited('old password');
    const before = await signInFirefox(gw.url, address, 'old password', 'signIn');
    const oldToken = await syncToken(gw, before.sessionToken, before.kid);
    assert.equal(oldToken.status, 200, oldToken.text);
    assert.equal((await new SyncClient(credentialsOf(oldToken)).put('/storage/bookmarks/a', { payload: 'under the old key' })).status, 200);

    const { link } = await admin('POST', `/accounts/${encodeURIComponent(address)}/reset`);
    const token = linkToken(link, 'reset', address);
    const newAuthPW = credentials(address, 'new password').authPW.toString('hex');
    const other = await invited('x password');
    assertErrno(await post(gw.url, '/v1/account/reset', { email: other, authPW: newAuthPW, token }), 401, 110);
    assert.equal((await post(gw.url, '/v1/account/reset', { email: address, authPW: newAuthPW, token })).status, 200);
    assertErrno(await post(gw.url, '/v1/account/reset', { email: address, authPW: newAuthPW, token }), 401, 110);

    // Firefox is signed out: its storage token is refused (its next sync finds out), its
    // session and refresh token end, and the old password is refused.
    assert.equal((await new SyncClient(credentialsOf(oldToken)).get('/info/collections')).status, 401);
    assertErrno(await hawkRequest(gw.url, 'GET', '/v1/session/status', before.sessionToken, 'sessionToken'), 401, 110);
    assertErrno(await post(gw.url, '/v1/oauth/token', { grant_type: 'refresh_token', client_id: FIREFOX_CLIENT, refresh_token: before.refreshToken }), 401, 110);
    assertErrno(await new Page(gw.url).signIn(address, 'old password'), 400, 103);

    const after = await signInFirefox(gw.url, address, 'new password', 'signIn');
    assert.equal(after.uid, before.uid, 'the same account');
    assert.notEqual(after.k, before.k);
    assert.ok(Number(after.kid.split('-')[0]) > Number(before.kid.split('-')[0]), `keys_changed_at moves forward: ${before.kid} -> ${after.kid}`);
    const newToken = await syncToken(gw, after.sessionToken, after.kid);
    assert.equal(newToken.status, 200, newToken.text);
    assert.notEqual(newToken.json().uid, oldToken.json().uid);
    const fresh = new SyncClient(credentialsOf(newToken));
    assert.deepEqual((await fresh.get('/info/collections')).json(), {});
    // The old key is refused from now on, whatever token comes with it.
    const stale = await syncToken(gw, after.sessionToken, before.kid);
    assert.equal(stale.status, 401, stale.text);
  });

  it('the admin API deletes an account: signed out at once, its storage refuses the token it holds and is purged; 404 for an unknown one', async () => {
    const address = await invited('a password');
    const f = await signInFirefox(gw.url, address, 'a password', 'signIn');
    const storage = new SyncClient(credentialsOf(await syncToken(gw, f.sessionToken, f.kid)));
    assert.equal((await storage.put('/storage/bookmarks/a', { payload: 'x' })).status, 200);
    assert.deepEqual(await admin('DELETE', `/accounts/${encodeURIComponent(address)}`), { deleted: address });
    assertErrno(await hawkRequest(gw.url, 'GET', '/v1/session/status', f.sessionToken, 'sessionToken'), 401, 110);
    assert.deepEqual((await rawRequest('GET', `${gw.url}/v1/account/status?uid=${f.uid}`)).json(), { exists: false });
    // The storage token has most of its hour left; the uid is refused all the same.
    assert.equal((await storage.get('/storage/bookmarks/a')).status, 401);
    assert.equal((await storage.get('/info/collections')).status, 401);
    let placed = await admin('GET', `/uids/${storage.uid}`);
    assert.equal(typeof placed.revokedAt, 'number');
    for (let i = 0; i < 100 && placed.purgedAt === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      placed = await admin('GET', `/uids/${storage.uid}`);
    }
    assert.equal(typeof placed.purgedAt, 'number', 'the storage of a deleted account is purged without the grace period');
    const gone = await fetch(`${gw.url}/__admin__/accounts/${encodeURIComponent(address)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(gone.status, 404);
    const reset = await fetch(`${gw.url}/__admin__/accounts/${encodeURIComponent(address)}/reset`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(reset.status, 404);
  });
});
