import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
// @ts-expect-error no types
import Hawk from 'hawk';
import { deriveKey, makeToken } from '../../server/auth/tokenlib.js';
import { rawRequest, SyncClient, type SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

interface Key {
  id: string;
  key: string;
}

const now = (): number => Math.floor(Date.now() / 1000);
const newUid = (): number => randomInt(1, 2 ** 31);

function hawkHeader(url: string, method: string, cred: Key, extra: Record<string, unknown> = {}): string {
  return Hawk.client.header(url, method, { credentials: { id: cred.id, key: cred.key, algorithm: 'sha256' }, ...extra })
    .header as string;
}

/** A request signed for `signedUrl` with `cred`, sent to `sentUrl`. */
function signed(
  method: string,
  sentUrl: string,
  cred: Key,
  opts: { signedUrl?: string; headers?: Record<string, string>; hawk?: Record<string, unknown>; body?: unknown } = {},
): Promise<SyncResponse> {
  const Authorization = hawkHeader(opts.signedUrl ?? sentUrl, method, cred, opts.hawk);
  return rawRequest(method, sentUrl, {
    headers: { Authorization, ...opts.headers },
    ...(opts.body === undefined ? {} : { body: opts.body }),
  });
}

function assert401(res: SyncResponse): void {
  assert.equal(res.status, 401);
  assert.equal(res.text, '0');
  assert.match(res.header('x-weave-timestamp') ?? '', /^\d+\.\d\d$/);
}

describe('Hawk authentication of storage requests', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  const endpoint = (uid: number): string => `${gw.url}/1.5/${uid}`;

  it('GET info/collections with a correctly signed token answers 200 (control)', async () => {
    const u = gw.newUser();
    const res = await signed('GET', u.url('/info/collections'), u.creds);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), {});
  });

  it('GET info/collections without Authorization answers 401 with body 0 and WWW-Authenticate', async () => {
    const res = await rawRequest('GET', `${endpoint(newUid())}/info/collections`);
    assert401(res);
    assert.match(res.header('content-type') ?? '', /application\/json/);
    assert.match(res.header('www-authenticate') ?? '', /^Hawk/);
  });

  it('GET info/collections with Authorization: Bearer answers 401', async () => {
    const res = await rawRequest('GET', `${endpoint(newUid())}/info/collections`, { headers: { Authorization: 'Bearer x' } });
    assert401(res);
  });

  it('GET info/collections with a malformed Hawk header answers 401', async () => {
    const u = gw.newUser();
    const url = u.url('/info/collections');
    const good = hawkHeader(url, 'GET', u.creds);
    const malformed = [
      'Hawk',
      'Hawk garbage',
      `Hawk id="${u.creds.id}"`, // no ts, nonce, mac
      good.replace(/ts="\d+"/, 'ts="soon"'),
      good.replace(/, mac="[^"]*"/, ''),
      good.replace(/^Hawk /, 'hawk'),
      good.replace(/^Hawk /, 'Basic '),
    ];
    for (const Authorization of malformed) {
      const res = await rawRequest('GET', url, { headers: { Authorization } });
      assert.equal(res.status, 401, Authorization);
      assert.equal(res.text, '0');
    }
    // The well-formed header is accepted, so the failures above are about the format.
    assert.equal((await rawRequest('GET', url, { headers: { Authorization: good } })).status, 200);
  });

  it('GET info/collections with a token signed by another master secret answers 401', async () => {
    const uid = newUid();
    const foreign = makeToken('another-master-secret-entirely', { uid, node: gw.url, expires: now() + 3600 });
    assert401(await signed('GET', `${endpoint(uid)}/info/collections`, foreign));
  });

  it('GET info/collections with a tampered token id answers 401 even with the key derived for it', async () => {
    const victim = newUid();
    const t = makeToken(gw.secret, { uid: newUid(), node: gw.url, expires: now() + 3600 });
    // Swap the payload for one naming another uid, keep the old signature, and give the
    // request the key the server would derive for that id: only the signature check can stop it.
    const raw = Buffer.from(t.id, 'base64url');
    const sig = raw.subarray(raw.length - 32);
    const payload = Buffer.from(JSON.stringify({ ...t.claims, uid: victim }), 'utf8');
    const id = Buffer.concat([payload, sig]).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    const key = deriveKey(gw.secret, id, t.claims.salt);
    assert401(await signed('GET', `${endpoint(victim)}/info/collections`, { id, key }));
    // Flipping one character of a real id is rejected too.
    const mid = Math.floor(t.id.length / 2);
    const flipped = t.id.slice(0, mid) + (t.id[mid] === 'A' ? 'B' : 'A') + t.id.slice(mid + 1);
    assert401(await signed('GET', `${endpoint(t.claims.uid)}/info/collections`, { id: flipped, key: t.key }));
  });

  it('GET info/collections with a valid token id but the Hawk key of another token answers 401 (bad MAC)', async () => {
    const a = gw.newUser();
    const b = gw.credentials(a.uid); // same uid, another token, another key
    assert.notEqual(a.creds.key, b.key);
    assert401(await signed('GET', a.url('/info/collections'), { id: a.creds.id, key: b.key }));
  });

  it('GET info/collections signed for info/quota answers 401 (MAC covers the path)', async () => {
    const u = gw.newUser();
    const Authorization = hawkHeader(u.url('/info/quota'), 'GET', u.creds);
    assert401(await rawRequest('GET', u.url('/info/collections'), { headers: { Authorization } }));
    assert.equal((await rawRequest('GET', u.url('/info/quota'), { headers: { Authorization } })).status, 200);
  });

  it('GET info/collections signed as POST answers 401 (MAC covers the method)', async () => {
    const u = gw.newUser();
    const Authorization = hawkHeader(u.url('/info/collections'), 'POST', u.creds);
    assert401(await rawRequest('GET', u.url('/info/collections'), { headers: { Authorization } }));
  });

  it('GET /1.5/{other uid}/info/collections with a token for another uid answers 401', async () => {
    const u = gw.newUser();
    const other = u.uid === 1 ? 2 : u.uid - 1;
    assert401(await signed('GET', `${endpoint(other)}/info/collections`, u.creds));
    const write = await signed('PUT', `${endpoint(other)}/storage/meta/global`, u.creds, { body: { payload: 'x' } });
    assert401(write);
  });

  it('an expired token answers 401 on storage/* and info/quota but 200 on GET info/collections within the grace', async () => {
    const uid = newUid();
    const fresh = new SyncClient(gw.credentials(uid));
    assert.equal((await fresh.put('/storage/meta/global', { payload: 'm' })).status, 200);
    const expired = new SyncClient(gw.credentials(uid, -60));
    assert401(await expired.get('/storage/meta/global'));
    assert401(await expired.get('/storage/meta'));
    assert401(await expired.put('/storage/meta/global', { payload: 'overwrite' }));
    assert401(await expired.get('/info/quota'));
    assert401(await expired.get('/info/collection_counts'));
    // storage/info/collections is a record path, not the exempt info/collections.
    assert401(await expired.get('/storage/info/collections'));
    const ic = await expired.get('/info/collections');
    assert.equal(ic.status, 200);
    assert.deepEqual(Object.keys(ic.json()), ['meta']);
    assert.equal((await fresh.get('/storage/meta/global')).json().payload, 'm');
  });

  it('an expired token within the grace still needs a valid MAC on GET info/collections', async () => {
    const expired = gw.credentials(newUid(), -60);
    const other = gw.credentials(expired.uid);
    assert401(await signed('GET', `${expired.api_endpoint}/info/collections`, { id: expired.id, key: other.key }));
  });

  it('GET info/collections with a token expired beyond SYNCGATE_EXPIRED_TOKEN_GRACE answers 401', async () => {
    const gw2 = await startGateway({ SYNCGATE_EXPIRED_TOKEN_GRACE: '30' });
    try {
      const uid = newUid();
      const long = new SyncClient(gw2.credentials(uid, -120));
      assert401(await long.get('/info/collections'));
      const recent = new SyncClient(gw2.credentials(uid, -5));
      assert.equal((await recent.get('/info/collections')).status, 200);
    } finally {
      await gw2.close();
    }
  });

  it('a token for a uid this server never saw gets empty storage and can write (storage node for Mozilla tokenserver)', async () => {
    const uid = newUid();
    const t = makeToken(gw.secret, {
      uid,
      node: 'https://sync-1-us-west1-g.sync.services.mozilla.com',
      expires: now() + 3600,
      fxa_uid: '0123456789abcdef0123456789abcdef',
      fxa_kid: '0000001234567-qqo',
      hashed_fxa_uid: 'abcdefabcdefabcdefabcdefabcdefab',
      hashed_device_id: '0123456789abcdef0123456789abcdef',
    });
    const u = new SyncClient({ id: t.id, key: t.key, uid, api_endpoint: endpoint(uid) });
    const ic = await u.get('/info/collections');
    assert.equal(ic.status, 200);
    assert.deepEqual(ic.json(), {});
    assert.equal((await u.put('/storage/meta/global', { payload: 'm' })).status, 200);
    assert.deepEqual(Object.keys((await u.get('/info/collections')).json()), ['meta']);
  });

  it('GET info/collections with a Hawk ts one day old (or one day ahead) is accepted: no skew check', async () => {
    const u = gw.newUser();
    const url = u.url('/info/collections');
    for (const timestamp of [now() - 86400, now() + 86400]) {
      const res = await signed('GET', url, u.creds, { hawk: { timestamp } });
      assert.equal(res.status, 200, `ts ${timestamp}`);
    }
  });

  it('the same Hawk header may be replayed: no nonce cache', async () => {
    const u = gw.newUser();
    const url = u.url('/info/collections');
    const Authorization = hawkHeader(url, 'GET', u.creds);
    assert.equal((await rawRequest('GET', url, { headers: { Authorization } })).status, 200);
    assert.equal((await rawRequest('GET', url, { headers: { Authorization } })).status, 200);
  });

  it('GET info/collections signed for the public URL but sent through a proxy answers 401 without trust proxy', async () => {
    const u = gw.newUser();
    const res = await signed('GET', u.url('/info/collections'), u.creds, {
      signedUrl: `https://sync.example.com/1.5/${u.uid}/info/collections`,
      headers: { 'X-Forwarded-Host': 'sync.example.com', 'X-Forwarded-Proto': 'https' },
    });
    assert401(res);
  });

  describe('behind a reverse proxy', () => {
    let proxied: TestGateway;
    let pinned: TestGateway;
    let prefixed: TestGateway;
    before(async () => {
      proxied = await startGateway({ SYNCGATE_TRUST_PROXY: 'true' });
      pinned = await startGateway({ SYNCGATE_PUBLIC_URL: 'https://sync.example.com' });
      prefixed = await startGateway({ SYNCGATE_PUBLIC_URL: 'https://sync.example.com:8443/sync' });
    });
    after(async () => {
      await proxied.close();
      await pinned.close();
      await prefixed.close();
    });

    it('with SYNCGATE_TRUST_PROXY, GET info/collections signed for the X-Forwarded-Host/-Proto URL answers 200', async () => {
      const u = proxied.newUser();
      const res = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://sync.example.com/1.5/${u.uid}/info/collections`,
        headers: { 'X-Forwarded-Host': 'sync.example.com', 'X-Forwarded-Proto': 'https' },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), {});
    });

    it('with SYNCGATE_TRUST_PROXY, the standard Forwarded header is honoured too', async () => {
      const u = proxied.newUser();
      const res = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://sync.example.com/1.5/${u.uid}/info/collections`,
        headers: { Forwarded: 'host=sync.example.com;proto=https' },
      });
      assert.equal(res.status, 200);
    });

    it('with SYNCGATE_TRUST_PROXY, a MAC for a host other than the forwarded one answers 401', async () => {
      const u = proxied.newUser();
      const res = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://evil.example.net/1.5/${u.uid}/info/collections`,
        headers: { 'X-Forwarded-Host': 'sync.example.com', 'X-Forwarded-Proto': 'https' },
      });
      assert401(res);
    });

    it('with SYNCGATE_PUBLIC_URL, GET info/collections signed for the public origin answers 200 and the local origin 401', async () => {
      const u = pinned.newUser();
      const pub = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://sync.example.com/1.5/${u.uid}/info/collections`,
      });
      assert.equal(pub.status, 200);
      assert401(await u.get('/info/collections'));
      // Forwarded headers cannot move a pinned origin.
      const moved = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://evil.example.net/1.5/${u.uid}/info/collections`,
        headers: { 'X-Forwarded-Host': 'evil.example.net', 'X-Forwarded-Proto': 'https' },
      });
      assert401(moved);
    });

    it('with SYNCGATE_PUBLIC_URL carrying a port and path prefix, the MAC covers that port and full public path', async () => {
      const u = prefixed.newUser();
      const ok = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://sync.example.com:8443/sync/1.5/${u.uid}/info/collections`,
      });
      assert.equal(ok.status, 200);
      const noPrefix = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://sync.example.com:8443/1.5/${u.uid}/info/collections`,
      });
      assert401(noPrefix);
      const wrongPort = await signed('GET', u.url('/info/collections'), u.creds, {
        signedUrl: `https://sync.example.com/sync/1.5/${u.uid}/info/collections`,
      });
      assert401(wrongPort);
    });
  });
});
