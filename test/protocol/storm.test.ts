// A storm of bad input against one running gateway, from a fixed seed: random methods, paths
// (percent-escapes, %00, overlong ids, unicode, ..), query strings, headers, bodies (malformed
// JSON, invalid UTF-8, wrong types, oversized) and credentials (none, malformed Hawk, forged
// and foreign-signed tokens, expired ones, a valid token on another user's path), on the
// storage API and the token endpoint. Whatever arrives:
//   - no answer is 500 or above, but 503 with Retry-After;
//   - no forged, foreign, expired or misused credential ever reads or writes (never a 2xx);
//   - the gateway is healthy afterwards;
//   - another user's records written before the storm are byte-for-byte as they were.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, Agent } from 'node:http';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';
import { makeToken } from '../../server/auth/tokenlib.js';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { storeUnderTest } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const REQUESTS = 10_000;
const CONCURRENCY = 16;
const SEED = 0x5eed_2026;

/** mulberry32: small, fast and the same on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Credential = 'valid' | 'none' | 'malformed' | 'forged' | 'foreign' | 'expired' | 'other-user' | 'bad-mac';
const BAD: ReadonlySet<Credential> = new Set(['none', 'malformed', 'forged', 'foreign', 'expired', 'other-user', 'bad-mac']);

interface Shot {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  credential: Credential;
  /** Reads or writes user data: an answer of 2xx needs a valid credential. */
  guarded: boolean;
  oversized: boolean;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

function send(base: URL, agent: Agent, shot: Shot): Promise<Answer | 'reset'> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: base.hostname, port: base.port, method: shot.method, path: shot.path, headers: shot.headers, agent: shot.oversized ? false : agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', () => resolve('reset'));
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('reset'));
    req.end(shot.body);
  });
}

describe(`bad-input storm: ${REQUESTS} random requests from a fixed seed (${storeUnderTest} store)`, function () {
  this.timeout(600_000);
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_FXA: 'false' })));
  after(() => gw.close());

  it('never answers 500 (503 only with Retry-After), never lets a bad credential read or write, stays healthy, and leaves another user byte-for-byte intact', async () => {
    const rand = prng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
    const base = new URL(gw.url);

    // The user who must come through untouched, and the attacker's own valid user.
    const victim = gw.newUser();
    assert.equal((await victim.post('/storage/history', Array.from({ length: 20 }, (_, i) => ({ id: `v${i}`, payload: `victim ${i} ✓`, sortindex: i })))).status, 200);
    assert.equal((await victim.put('/storage/meta/global', { payload: '{"syncID":"victim"}' })).status, 200);
    const snapshot = async () => [
      (await victim.get('/info/collections')).text,
      (await victim.get('/storage/history?full=1&sort=index')).text,
      (await victim.get('/storage/meta/global')).text,
    ];
    const before = await snapshot();
    const attacker = gw.newUser();

    // Token endpoint credentials: local accounts of this gateway's own identity provider.
    const accounts = new LocalAccounts(gw.config.dataDir);
    const account = await accounts.create(`storm-${randomBytes(3).toString('hex')}@example.com`);
    const bearer = await accounts.bearer(account, 3600);
    const expiredBearer = await accounts.bearer(account, 60, Date.now() - 3 * 3600_000);
    const foreignBearer = `${bearer.slice(0, bearer.lastIndexOf('.') + 1)}${Buffer.from(randomBytes(256)).toString('base64url')}`;

    const now = () => Math.floor(Date.now() / 1000);
    const tokens = {
      valid: () => makeToken(gw.secret, { uid: attacker.uid, node: gw.url, expires: now() + 3600 }),
      forged: () => makeToken(randomBytes(24).toString('hex'), { uid: victim.uid, node: gw.url, expires: now() + 3600 }),
      foreign: () => makeToken(randomBytes(24).toString('hex'), { uid: attacker.uid, node: gw.url, expires: now() + 3600 }),
      expired: () => makeToken(gw.secret, { uid: attacker.uid, node: gw.url, expires: now() - 3 * 3600 }),
    };

    const uids = [attacker.uid, attacker.uid, attacker.uid, victim.uid, 0, 4294967296, 'abc', '-1', '%31', '1e3', '00123'];
    const collections = ['history', 'history', 'bookmarks', 'bookmarks', 'meta', 'crypto', 'tabs', 'forms', 'forms', 'a'.repeat(33), '..', '%2e%2e', 'hist%00ory', '%00', 'caf%C3%A9', '%FF%FE', '%E2%82%AC', 'x%20y', 'a/b', '%2F', '~', ''];
    const ids = ['global', 'keys', 'v1', 'v2', 'abc', 'abc', 'a', 'b', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(300), '%00', '..', '%2e%2e%2f%2e%2e', '%C3%28', '%F0%9F%98%80', 'a%20b', '%7F', '%0A', '%09'];
    // Each path with the methods that serve it: most requests use one of them, so they get past
    // routing into authentication and the handlers; the rest use any method at all.
    const templates: Array<[(u: string) => string, string[]]> = [
      [(u) => `/1.5/${u}/info/collections`, ['GET']],
      [(u) => `/1.5/${u}/info/${pick(['quota', 'collection_usage', 'collection_counts', 'configuration'])}`, ['GET']],
      [(u) => `/1.5/${u}/storage/${pick(collections)}`, ['GET', 'POST', 'DELETE']],
      [(u) => `/1.5/${u}/storage/${pick(collections)}`, ['GET', 'POST', 'DELETE']],
      [(u) => `/1.5/${u}/storage/${pick(collections)}/${pick(ids)}`, ['GET', 'PUT', 'DELETE']],
      [(u) => `/1.5/${u}/storage/${pick(collections)}/${pick(ids)}`, ['GET', 'PUT', 'DELETE']],
      [(u) => pick([`/1.5/${u}/storage`, `/1.5/${u}`]), ['DELETE']],
      [(u) => pick([`/1.5/${u}/__heartbeat__`, `/1.5/${u}/storage/${pick(collections)}/${pick(ids)}/extra`, `/1.5/${u}/../${u}/info/collections`]), ['GET']],
      [() => '/1.0/sync/1.5', ['GET']],
      [() => pick(['/1.0/sync/1.1', '/1.0/other/1.5', '/1.0/sync/%00', '/1.0/sync/1.5/extra']), ['GET']],
      [() => pick(['/__heartbeat__', '/__lbheartbeat__', '/__version__', '/', '/%00', '/..%2f..%2fetc/passwd', '/__admin__/nodes', '/.well-known/jwks.json']), ['GET']],
    ];
    const values = ['', '0', '1', '-1', '1.5', '1e309', 'NaN', 'abc', '9'.repeat(30), '%00', '%FF', 'true', '[]', '{}', String(now()), `${now()}.00`, '1,2,3', 'a'.repeat(5000)];
    const queryKeys = ['newer', 'older', 'limit', 'offset', 'sort', 'ids', 'full', 'batch', 'commit', 'unknown', '%00', ''];
    const methods = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'PROPFIND', 'TRACE', 'OPTIONS', 'MKCOL', 'COPY'];
    const contentTypes = ['application/json', 'application/json', 'application/newlines', 'text/plain', 'text/html', 'application/json; charset=latin1', 'multipart/form-data', ''];
    const validBsos = () => JSON.stringify(Array.from({ length: 1 + int(5) }, () => ({ id: pick(['a', 'b', 12, -3, 1.5, 'x'.repeat(65)]), payload: 'p'.repeat(int(50)), sortindex: pick([1, -1, 1e12, '5', null]), ttl: pick([undefined, 0, -1, 1e10, null, 'x']) })));
    const bodies: Array<() => Buffer> = [
      () => Buffer.from(validBsos()),
      () => Buffer.from(JSON.stringify({ payload: 'x'.repeat(int(100)), sortindex: int(10) })),
      () => Buffer.from(pick(['[', '{', '{"id":', '[{"id":"a","payload":"x"}', 'null', 'true', '12', '"s"', '[]', '{}', '[null]', '[[]]', '[{"id":{}}]', '[{"id":true}]', '[{"id":null}]', '[{"id":"a","payload":1}]', '[{"id":"a","extra":1}]'])),
      () => Buffer.from([0x5b, 0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x2c, 0x22, 0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x5d]),
      () => Buffer.from(`{"id":"a","payload":"${'\u0000'.repeat(3)}\\ud800"}\n{"id":"b"}\n`),
      () => randomBytes(int(2000)),
      () => Buffer.from(JSON.stringify(Array.from({ length: 150 }, (_, i) => ({ id: `m${i}`, payload: 'x' })))),
    ];

    const hawk = (token: { id: string; key: string }, method: string, path: string, payload?: Buffer, contentType?: string) =>
      Hawk.client.header({ protocol: 'http:', hostname: base.hostname, port: base.port, pathname: path, search: '' }, method, {
        credentials: { id: token.id, key: token.key, algorithm: 'sha256' },
        ...(payload && rand() < 0.5 ? { payload: payload.toString('latin1'), contentType: contentType ?? '' } : {}),
      }).header as string;

    const shot = (): Shot => {
      const [template, served] = pick(templates);
      const method = rand() < 0.8 ? pick(served) : pick(methods);
      const uidChoice = rand() < 0.6 ? attacker.uid : pick(uids);
      let path = template(String(uidChoice));
      if (rand() < 0.5) {
        const n = 1 + int(3);
        const qs = Array.from({ length: n }, () => `${pick(queryKeys)}=${pick(values)}`).join('&');
        path += `?${qs}`;
      }
      const headers: Record<string, string> = {};
      if (rand() < 0.2) headers['X-If-Modified-Since'] = pick(values);
      if (rand() < 0.2) headers['X-If-Unmodified-Since'] = pick(values);
      if (rand() < 0.1) headers['X-Weave-Records'] = pick(values);
      if (rand() < 0.1) headers['X-Weave-Total-Bytes'] = pick(values);
      if (rand() < 0.1) headers.Accept = pick(['application/newlines', 'text/html', '*/*', 'application/json;q=0', '']);
      if (rand() < 0.1) headers.Origin = pick(['https://a.example', 'null', 'http://127.0.0.1']);
      if (rand() < 0.05) headers['X-KeyID'] = pick(['', '1-AAAA', 'garbage', `${Date.now()}-${'A'.repeat(22)}`]);
      if (rand() < 0.05) headers['X-Client-State'] = pick(['', 'zz', 'a'.repeat(32), 'a'.repeat(200)]);
      let body: Buffer | undefined;
      let oversized = false;
      if (method === 'POST' || method === 'PUT' || rand() < 0.05) {
        if (rand() < 0.01) {
          body = Buffer.alloc(gw.config.limits.maxRequestBytes + 1 + int(1000), 0x61);
          oversized = true;
        } else body = pick(bodies)();
        const ct = pick(contentTypes);
        if (ct) headers['Content-Type'] = ct;
      }
      const tokenPath = path.startsWith('/1.0/');
      let credential: Credential;
      const roll = rand();
      if (tokenPath) {
        const kid = keyIdOf(account);
        if (roll < 0.3) {
          credential = 'valid';
          headers.Authorization = `Bearer ${bearer}`;
          if (rand() < 0.8) headers['X-KeyID'] = kid;
        } else if (roll < 0.45) {
          credential = 'expired';
          headers.Authorization = `Bearer ${expiredBearer}`;
          headers['X-KeyID'] = kid;
        } else if (roll < 0.6) {
          credential = 'foreign';
          headers.Authorization = `Bearer ${foreignBearer}`;
          headers['X-KeyID'] = kid;
        } else if (roll < 0.75) {
          credential = 'malformed';
          headers.Authorization = pick(['Bearer', 'Bearer ', 'Basic YTpi', `Bearer ${randomBytes(30).toString('base64')}`, 'Hawk id="x"', 'x'.repeat(8000)]);
          headers['X-KeyID'] = kid;
        } else {
          credential = 'none';
        }
      } else if (roll < 0.35) {
        credential = 'valid';
        headers.Authorization = hawk(tokens.valid(), method, path, body, headers['Content-Type']);
      } else if (roll < 0.45) {
        credential = 'forged';
        headers.Authorization = hawk(tokens.forged(), method, path, body);
      } else if (roll < 0.55) {
        credential = 'foreign';
        headers.Authorization = hawk(tokens.foreign(), method, path, body);
      } else if (roll < 0.65) {
        credential = 'expired';
        headers.Authorization = hawk(tokens.expired(), method, path, body);
      } else if (roll < 0.72) {
        credential = 'bad-mac';
        headers.Authorization = hawk(tokens.valid(), method, path, body).replace(/mac="[^"]+"/, `mac="${randomBytes(32).toString('base64')}"`);
      } else if (roll < 0.85) {
        credential = 'malformed';
        headers.Authorization = pick(['Hawk', 'Hawk ', 'Hawk id=', 'Hawk id="a", ts="x", nonce="n", mac="m"', 'Bearer abc', `Hawk id="${'a'.repeat(5000)}", ts="1", nonce="x", mac="y"`, 'Hawk id="?", ts="1", nonce="\\", mac=""']);
      } else {
        credential = 'none';
      }
      // The valid token is the attacker's: on any other uid it is a misused credential.
      if (credential === 'valid' && !tokenPath && String(uidChoice) !== String(attacker.uid)) credential = 'other-user';
      const guarded = (path.startsWith('/1.5/') || tokenPath) && ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].includes(method);
      return { method, path, headers, ...(body ? { body } : {}), credential, guarded, oversized };
    };

    const shots = Array.from({ length: REQUESTS }, shot);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const byStatus = new Map<string, number>();
    const problems: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < shots.length) {
        const s = shots[next++] as Shot;
        const answer = await send(base, agent, s);
        const key = answer === 'reset' ? 'reset' : String(answer.status);
        byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
        const what = `${s.method} ${s.path.slice(0, 120)} (${s.credential})`;
        if (answer === 'reset') {
          // A body over the limit may be cut off once its 413 is sent; nothing else may be.
          if (!s.oversized) problems.push(`connection reset: ${what}`);
          continue;
        }
        if (answer.status >= 500 && !(answer.status === 503 && answer.headers['retry-after'])) problems.push(`${answer.status}: ${what}`);
        if (s.guarded && BAD.has(s.credential) && answer.status >= 200 && answer.status < 300) problems.push(`${answer.status} for a ${s.credential} credential: ${what}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();

    const counts = [...byStatus].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join(', ');
    console.log(`      storm (${storeUnderTest}, seed ${SEED.toString(16)}): ${counts}`);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} bad answers`);
    assert.ok((byStatus.get('200') ?? 0) > 100, 'some requests got through to the handlers (the storm is not all 401s)');
    assert.ok((byStatus.get('400') ?? 0) > 100, 'some valid requests were refused for their input');

    // Healthy afterwards: the heartbeat, and a new user syncs.
    assert.equal((await fetch(`${gw.url}/__heartbeat__`)).status, 200);
    const after = gw.newUser();
    assert.equal((await after.put('/storage/history/ok', { payload: 'x' })).status, 200);
    assert.equal((await after.get('/storage/history/ok')).json().payload, 'x');
    assert.deepEqual(await snapshot(), before, "the other user's records are byte-for-byte as before the storm");
  });
});
