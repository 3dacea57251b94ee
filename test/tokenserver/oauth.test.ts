// Access tokens from Firefox Accounts (spec 9.3): the gateway fetches the JWKS of an OAuth
// server over HTTP (here a stand-in with its own keys) and verifies with jose. Every kind of
// bad token gets 401 invalid-credentials and creates nothing; an unreachable key set is a 503
// the client retries; opaque tokens go to /v1/verify.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SyncClient, type SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { credentialsOf, keyId, OLDSYNC, requestToken, startFakeFxa, type FakeFxa } from '../support/tokens.js';

const fxaUid = () => randomBytes(16).toString('hex');
const state = () => randomBytes(16).toString('hex');
const EMAIL_DOMAIN = 'api.accounts.firefox.com';

function assertStatus(res: SyncResponse, status: number, statusString: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json().status, statusString);
  assert.match(res.header('content-type') ?? '', /^application\/json/);
}

describe('token endpoint with Firefox Accounts OAuth tokens', function () {
  let fxa: FakeFxa;
  let gw: TestGateway;

  before(async () => {
    fxa = await startFakeFxa();
    gw = await startGateway({
      SYNCGATE_FXA_OAUTH_URL: fxa.url,
      SYNCGATE_FXA_ISSUER: 'https://accounts.firefox.com',
      SYNCGATE_JWT_CLOCK_SKEW: '5',
    });
  });
  after(async () => {
    await gw.close();
    await fxa.close();
  });

  it('accepts an FxA access token and names the account <fxa uid>@api.accounts.firefox.com', async () => {
    const sub = fxaUid();
    const res = await requestToken(gw.url, { bearer: await fxa.sign({ sub }), keyId: keyId(1_700_000_000_000, state()) });
    assert.equal(res.status, 200, res.text);
    const user = await gw.server.registry.user(`${sub}@${EMAIL_DOMAIN}`);
    assert.equal(user?.rows[0]?.uid, res.json().uid);
    const client = new SyncClient(credentialsOf(res));
    assert.equal((await client.get('/info/collections')).status, 200);
    assert.ok(fxa.jwksFetches >= 1);
  });

  it('the scope may be one of several, space or comma separated', async () => {
    for (const scope of [`profile ${OLDSYNC}`, `profile,${OLDSYNC}`]) {
      const res = await requestToken(gw.url, { bearer: await fxa.sign({ sub: fxaUid(), scope }), keyId: keyId(1, state()) });
      assert.equal(res.status, 200, `${scope}: ${res.text}`);
    }
  });

  it('refuses each bad token with 401 invalid-credentials and creates no user', async () => {
    const sub = fxaUid();
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub, scope: OLDSYNC, iss: 'https://accounts.firefox.com', exp: now + 600 }),
    ).toString('base64url')}.`;
    const cases: Record<string, string> = {
      unsigned,
      'signed by a key FxA does not publish': await fxa.sign({ sub }, { key: fxa.foreignKey }),
      expired: await fxa.sign({ sub }, { expiresIn: -60 }),
      'wrong issuer': await fxa.sign({ sub, iss: 'https://evil.example' }),
      'wrong scope': await fxa.sign({ sub, scope: 'profile https://identity.mozilla.com/apps/send' }),
      'scope prefix only': await fxa.sign({ sub, scope: 'https://identity.mozilla.com/apps' }),
      'typ JWT (an id token, not an access token)': await fxa.sign({ sub }, { typ: 'JWT' }),
      'bad fxa-generation': await fxa.sign({ sub, 'fxa-generation': 'yesterday' }),
      'tampered payload': (await fxa.sign({ sub })).replace(/\.([^.]+)\./, (_m, p: string) => {
        const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
        claims.sub = fxaUid();
        return `.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
      }),
    };
    for (const [what, bearer] of Object.entries(cases)) {
      const res = await requestToken(gw.url, { bearer, keyId: keyId(1, state()) });
      assert.equal(res.status, 401, `${what}: ${res.text}`);
      assert.equal(res.json().status, 'invalid-credentials', what);
    }
    assert.equal(await gw.server.registry.user(`${sub}@${EMAIL_DOMAIN}`), undefined);
  });

  it('tolerates a clock skew within the configured bound only', async () => {
    const sub = fxaUid();
    assert.equal((await requestToken(gw.url, { bearer: await fxa.sign({ sub }, { expiresIn: -2 }), keyId: keyId(1, state()) })).status, 200);
    assertStatus(await requestToken(gw.url, { bearer: await fxa.sign({ sub }, { expiresIn: -30 }), keyId: keyId(1, state()) }), 401, 'invalid-credentials');
  });

  it('fxa-generation only moves forward: an older one is invalid-generation', async () => {
    const sub = fxaUid();
    const s = state();
    assert.equal((await requestToken(gw.url, { bearer: await fxa.sign({ sub, 'fxa-generation': 2000 }), keyId: keyId(1000, s) })).status, 200);
    assertStatus(await requestToken(gw.url, { bearer: await fxa.sign({ sub, 'fxa-generation': 1500 }), keyId: keyId(1000, s) }), 401, 'invalid-generation');
    // A password change (newer generation) with the same keys keeps the uid.
    const a = await requestToken(gw.url, { bearer: await fxa.sign({ sub, 'fxa-generation': 3000 }), keyId: keyId(1000, s) });
    assert.equal(a.status, 200);
    const row = (await gw.server.registry.user(`${sub}@${EMAIL_DOMAIN}`))?.rows;
    assert.equal(row?.length, 1);
    assert.equal(row?.[0]?.generation, 3000);
    // A key change without a generation change is refused.
    assertStatus(
      await requestToken(gw.url, { bearer: await fxa.sign({ sub, 'fxa-generation': 3000 }), keyId: keyId(4000, state()) }),
      401,
      'invalid-keysChangedAt',
    );
  });

  it('verifies an opaque (non-JWT) token with the OAuth server\'s /v1/verify', async () => {
    const sub = fxaUid();
    const token = randomBytes(32).toString('hex');
    fxa.opaque.set(token, { status: 200, body: { user: sub, scope: [OLDSYNC], generation: 5, client_id: 'x' } });
    const ok = await requestToken(gw.url, { bearer: token, keyId: keyId(7, state()) });
    assert.equal(ok.status, 200, ok.text);
    assert.ok(await gw.server.registry.user(`${sub}@${EMAIL_DOMAIN}`));
    const wrongScope = randomBytes(32).toString('hex');
    fxa.opaque.set(wrongScope, { status: 200, body: { user: fxaUid(), scope: ['profile'] } });
    assertStatus(await requestToken(gw.url, { bearer: wrongScope, keyId: keyId(7, state()) }), 401, 'invalid-credentials');
    assertStatus(await requestToken(gw.url, { bearer: randomBytes(32).toString('hex'), keyId: keyId(7, state()) }), 401, 'invalid-credentials');
  });

  it('answers 503 with Retry-After (not 401) when the key set cannot be fetched, and creates nothing', async () => {
    const down = await startGateway({ SYNCGATE_FXA_OAUTH_URL: 'http://127.0.0.1:9', SYNCGATE_LOCAL_ACCOUNTS: 'false' });
    try {
      const sub = fxaUid();
      const res = await requestToken(down.url, { bearer: await fxa.sign({ sub }), keyId: keyId(1, state()) });
      assertStatus(res, 503, 'internal-error');
      assert.ok(Number(res.header('retry-after')) > 0);
      assert.equal(await down.server.registry.user(`${sub}@${EMAIL_DOMAIN}`), undefined);
      // With local accounts off, nothing else is trusted either.
      assert.equal((await fetch(`${down.url}/v1/jwks`)).status, 404);
    } finally {
      await down.close();
    }
  });
});
