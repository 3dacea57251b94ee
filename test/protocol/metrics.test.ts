// /__metrics__: a known sequence of requests gives exact counters and histogram counts, read
// through a Prometheus text-format parser; the scrape needs the metrics or the admin bearer,
// and does not exist without either. Overload counters match the answers clients saw.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';
import { rawRequest, type SyncClient } from '../support/client.js';
import { storeUnderTest } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { scrape } from '../support/scrape.js';
import { requestToken } from '../support/tokens.js';

const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const METRICS = `metrics-${randomBytes(12).toString('hex')}`;

describe('metrics (/__metrics__)', function () {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_METRICS_TOKEN: METRICS, SYNCGATE_FXA: 'false' })));
  after(() => gw.close());

  it('refuses a scrape without a bearer, or with a wrong one, and shows no metric in the refusal', async () => {
    for (const headers of [{}, { Authorization: 'Bearer wrong-wrong-wrong-wrong' }, { Authorization: `Basic ${Buffer.from(`x:${METRICS}`).toString('base64')}` }] as Array<Record<string, string>>) {
      const res = await fetch(`${gw.url}/__metrics__`, { headers });
      const text = await res.text();
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="syncgate-metrics"');
      assert.doesNotMatch(text, /syncgate_/);
    }
    // Both credentials scrape.
    await scrape(gw.url, METRICS);
    await scrape(gw.url, ADMIN);
  });

  it('counts a known sequence of requests exactly: by route, method and status, latency histograms, bytes, error kinds, tokens and sign-ins', async () => {
    const before = await scrape(gw.url, METRICS);
    const u = gw.newUser();
    const records = [1, 2, 3].map((i) => ({ id: `r${i}`, payload: 'x'.repeat(10 * i) }));
    const first = await u.get('/info/collections');
    assert.equal(first.status, 200);
    const posted = await u.post('/storage/bookmarks', records);
    assert.equal(posted.status, 200, posted.text);
    const listed = await u.get('/storage/bookmarks?full=1');
    assert.equal(listed.status, 200);
    const unchanged = await u.get('/info/collections', { 'X-If-Modified-Since': listed.header('x-last-modified')! });
    assert.equal(unchanged.status, 304);
    assert.equal((await u.get('/storage/bookmarks/missing')).status, 404);
    assert.equal((await rawRequest('GET', u.url('/info/collections'))).status, 401);
    assert.equal((await requestToken(gw.url, {})).status, 401);
    const login = await rawRequest('POST', `${gw.url}/v1/account/login`, { body: { email: `${randomBytes(4).toString('hex')}@example.org`, authPW: 'ab'.repeat(32) } });
    assert.equal(login.status, 400, login.text);

    const after = await scrape(gw.url, METRICS);
    const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
    const requests = (route: string, method: string, status: string) => delta('syncgate_http_requests_total', { route, method, status });
    assert.equal(requests('info/collections', 'GET', '200'), 1);
    assert.equal(requests('info/collections', 'GET', '304'), 1);
    assert.equal(requests('info/collections', 'GET', '401'), 1);
    assert.equal(requests('collection', 'POST', '200'), 1);
    assert.equal(requests('collection', 'GET', '200'), 1);
    assert.equal(requests('item', 'GET', '404'), 1);
    assert.equal(requests('token', 'GET', '401'), 1);
    assert.equal(requests('metrics', 'GET', '200'), 1, 'the scrape before this one');
    const seen = (name: string, labels: Record<string, string>) => after.count(name, labels) - before.count(name, labels);
    assert.equal(seen('syncgate_http_request_duration_seconds', { route: 'info/collections', method: 'GET' }), 3);
    assert.equal(seen('syncgate_http_request_duration_seconds', { route: 'collection' }), 2);
    // Every request is in one histogram: the histogram counts add up to the request counter.
    assert.equal(after.count('syncgate_http_request_duration_seconds'), after.value('syncgate_http_requests_total'));
    assert.equal(delta('syncgate_http_request_bytes_total', { route: 'collection' }), Buffer.byteLength(JSON.stringify(records)));
    assert.equal(delta('syncgate_http_response_bytes_total', { route: 'collection' }), Buffer.byteLength(posted.text) + Buffer.byteLength(listed.text));

    assert.equal(delta('syncgate_errors_total', { api: 'storage', kind: 'not-found' }), 1);
    assert.equal(delta('syncgate_errors_total', { api: 'storage', kind: 'unauthorized' }), 1);
    assert.equal(delta('syncgate_errors_total', { api: 'storage', kind: 'not-modified' }), 0, 'a 304 is not an error');
    assert.equal(delta('syncgate_errors_total', { api: 'storage' }), 2);
    assert.equal(delta('syncgate_token_requests_total', { outcome: 'unauthorized' }), 1);
    assert.equal(delta('syncgate_token_requests_total'), 1);
    assert.equal(delta('syncgate_sign_ins_total', { outcome: 'unknown-account' }), 1);
    assert.equal(delta('syncgate_errors_total', { api: 'accounts', kind: 'unknown-account' }), 1);

    // Read when scraped: the one user database this gateway opened, the default node up.
    assert.equal(after.value('syncgate_open_user_databases'), 1);
    assert.equal(after.value('syncgate_requests_in_flight'), 0);
    assert.equal(after.value('syncgate_node_state', { node: 'default', state: 'up' }), 1);
    assert.equal(after.value('syncgate_node_state', { node: 'default' }), 1, 'one state at a time');
    if (storeUnderTest === 'couch') {
      assert.ok(delta('syncgate_couch_requests_total', { node: 'default', outcome: 'ok' }) > 0, 'calls to the Couch node counted');
      // Each attempt is timed once.
      assert.equal(after.count('syncgate_couch_request_duration_seconds'), after.value('syncgate_couch_requests_total'));
    } else {
      assert.equal(after.value('syncgate_couch_requests_total'), 0, 'the embedded store calls no Couch');
    }
    // Conventions: the prefix, counters ending in _total, and no label naming the user.
    for (const f of after.families) {
      assert.match(f.name, /^syncgate_/);
      if (f.type === 'COUNTER') assert.match(f.name, /_total$/);
      for (const m of f.metrics) assert.ok(!Object.values(m.labels ?? {}).some((v) => v.includes(String(u.uid))), `${f.name} names the uid`);
    }
  });

  it('does not exist when neither a metrics nor an admin credential is configured', async () => {
    const bare = await startGateway();
    try {
      const res = await fetch(`${bare.url}/__metrics__`, { headers: { Authorization: `Bearer ${METRICS}` } });
      assert.equal(res.status, 404);
    } finally {
      await bare.close();
    }
  });
});

/** Starts a signed PUT whose body never finishes, so the request stays in flight until aborted. */
function hangingRequest(u: SyncClient, path: string): () => void {
  const url = u.url(path);
  const { header } = Hawk.client.header(url, 'PUT', { credentials: { id: u.creds.id, key: u.creds.key, algorithm: 'sha256' } });
  const req = request(url, { method: 'PUT', headers: { Authorization: header, 'Content-Type': 'application/json', 'Content-Length': '1000' } });
  req.on('error', () => {});
  req.write('{"payload":"');
  return () => req.destroy();
}

describe('metrics of overload', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_BACKOFF_INFLIGHT: '1', SYNCGATE_MAX_INFLIGHT: '3', SYNCGATE_BACKOFF_SECONDS: '45' })));
  after(() => gw.close());

  it('counts requests in flight, shed requests and answers that carried X-Weave-Backoff as the clients saw them', async () => {
    const u = gw.newUser();
    const hung = [hangingRequest(u, '/storage/meta/a'), hangingRequest(u, '/storage/meta/b'), hangingRequest(u, '/storage/meta/c')];
    let shed = 0;
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await scrape(gw.url, ADMIN)).value('syncgate_requests_in_flight'), 3);
      for (let i = 0; i < 4; i++) if ((await u.get('/info/collections')).status === 503) shed++;
    } finally {
      for (const abort of hung) abort();
    }
    await new Promise((r) => setTimeout(r, 100));
    const calm = await u.get('/info/collections');
    assert.equal(calm.status, 200);
    assert.equal(shed, 4);
    const m = await scrape(gw.url, ADMIN);
    assert.equal(m.value('syncgate_requests_shed_total'), 4);
    assert.equal(m.value('syncgate_backoff_responses_total'), 4, 'the shed answers carried it, the calm one not');
    assert.equal(m.value('syncgate_http_requests_total', { route: 'shed', method: 'GET', status: '503' }), 4, 'turned away before routing');
    assert.equal(m.value('syncgate_requests_in_flight'), 0);
  });
});
