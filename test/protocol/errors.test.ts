import assert from 'node:assert/strict';
// @ts-expect-error no types
import Hawk from 'hawk';
import { rawRequest, type SyncClient, type SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;

function hawkHeader(url: string, method: string, u: SyncClient): string {
  return Hawk.client.header(url, method, { credentials: { id: u.creds.id, key: u.creds.key, algorithm: 'sha256' } })
    .header as string;
}

/** A protocol error answer: the status, a bare JSON integer body, JSON type, the server time. */
function assertError(res: SyncResponse, status: number, body = '0'): void {
  assert.equal(res.status, status, `status for body ${JSON.stringify(res.text)}`);
  assert.equal(res.text, body);
  assert.match(res.header('content-type') ?? '', /application\/json/);
  assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS);
}

describe('protocol errors', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('GET of an unknown path answers 404, body 0, application/json and X-Weave-Timestamp', async () => {
    for (const path of ['/nothing/here', '/1.5', '/1.0/1/info/collections']) {
      assertError(await rawRequest('GET', gw.url + path), 404);
    }
    const u = gw.newUser();
    assertError(await u.get('/info/nothing'), 404);
    assertError(await u.get('/storage/a/b/c'), 404);
  });

  it('GET /1.5/abc/info/collections (non-numeric uid) answers 404', async () => {
    const u = gw.newUser();
    const url = `${gw.url}/1.5/abc/info/collections`;
    assertError(await rawRequest('GET', url, { headers: { Authorization: hawkHeader(url, 'GET', u) } }), 404);
    assertError(await rawRequest('GET', url), 404);
  });

  it('PATCH info/collections and PUT info/quota answer 405', async () => {
    const u = gw.newUser();
    const patch = await u.request('PATCH', '/info/collections', { body: {} });
    assert.equal(patch.status, 405);
    assert.match(patch.header('x-weave-timestamp') ?? '', TWO_DECIMALS);
    const put = await u.put('/info/quota', [1, 2]);
    assert.equal(put.status, 405);
    assert.equal((await u.get('/info/quota')).status, 200);
  });

  it('PUT storage/{c}/{id} and POST storage/{c} with malformed JSON answer 400 body 8 and store nothing', async () => {
    const u = gw.newUser();
    assertError(await u.request('PUT', '/storage/forms/a', { body: '{"payload": "x"' }), 400, '8');
    assertError(await u.request('POST', '/storage/forms', { body: '[{"id": "a", "payload": "x"}' }), 400, '8');
    assertError(await u.request('POST', '/storage/forms', { body: 'not json' }), 400, '8');
    assert.deepEqual((await u.get('/info/collections')).json(), {});
  });

  it('PUT storage/{c}/{id} with invalid UTF-8 bytes answers 400 and stores nothing', async () => {
    const u = gw.newUser();
    const url = u.url('/storage/forms/bad');
    // {"payload":"<FF FE C3>"}: bytes that are not UTF-8.
    const body = Buffer.concat([Buffer.from('{"payload":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    const res = await fetch(url, {
      method: 'PUT',
      headers: { Authorization: hawkHeader(url, 'PUT', u), 'Content-Type': 'application/json' },
      body,
    });
    const text = await res.text();
    assert.equal(res.status, 400);
    assert.match(text, /^\d+$/);
    assert.equal((await u.get('/storage/forms/bad')).status, 404);
    assert.deepEqual((await u.get('/info/collections')).json(), {});
  });

  it('GET storage/{c} with both X-If-Modified-Since and X-If-Unmodified-Since answers 400', async () => {
    const u = gw.newUser();
    const w = await u.put('/storage/forms/a', { payload: 'x' });
    const lm = w.header('x-last-modified') as string;
    assertError(await u.get('/storage/forms', { 'X-If-Modified-Since': lm, 'X-If-Unmodified-Since': lm }), 400);
    assertError(await u.get('/info/collections', { 'X-If-Modified-Since': '0', 'X-If-Unmodified-Since': lm }), 400);
  });

  it('X-If-Unmodified-Since: abc or -1 answers 400 and writes nothing', async () => {
    const u = gw.newUser();
    for (const value of ['abc', '-1', '-0.01']) {
      assertError(await u.put('/storage/forms/a', { payload: 'x' }, { 'X-If-Unmodified-Since': value }), 400);
      assertError(await u.get('/storage/forms', { 'X-If-Unmodified-Since': value }), 400);
      assertError(await u.get('/storage/forms', { 'X-If-Modified-Since': value }), 400);
    }
    assert.deepEqual((await u.get('/info/collections')).json(), {});
  });

  it('storage/{c} with an invalid collection name (33 chars, or a "!") answers 400', async () => {
    const u = gw.newUser();
    const long = 'a'.repeat(33);
    assertError(await u.get(`/storage/${long}`), 400);
    assertError(await u.put(`/storage/${long}/x`, { payload: 'x' }), 400);
    assertError(await u.post('/storage/bad!name', [{ id: 'x', payload: 'x' }]), 400);
    assertError(await u.get('/storage/bad!name'), 400);
    assert.deepEqual((await u.get('/info/collections')).json(), {});
    // 32 characters is fine.
    assert.equal((await u.put(`/storage/${'a'.repeat(32)}/x`, { payload: 'x' })).status, 200);
  });

  it('error answers are a bare integer: no message, no stack, no storage engine detail', async () => {
    const u = gw.newUser();
    const w = await u.put('/storage/forms/a', { payload: 'x' });
    const lm = Number(w.header('x-last-modified'));
    const answers = [
      await rawRequest('GET', `${gw.url}/nope`),
      await rawRequest('GET', u.url('/info/collections')),
      await u.request('PUT', '/storage/forms/b', { body: '{{' }),
      await u.put('/storage/forms/b', { payload: 123 }),
      await u.post('/storage/forms', { not: 'a list' }),
      await u.get('/storage/forms?newer=abc'),
      await u.get('/storage/forms?limit=-1'),
      await u.get('/storage/forms?sort=sideways'),
      await u.get('/storage/forms/missing'),
      await u.delete('/storage/forms/missing'),
      await u.request('PUT', '/storage/forms/c', { body: '{"payload":"x"}', contentType: 'application/xml' }),
      await u.put('/storage/forms/a', { payload: 'y' }, { 'X-If-Unmodified-Since': (lm - 1).toFixed(2) }),
    ];
    for (const res of answers) {
      assert.ok(res.status >= 400, `status ${res.status}`);
      if (res.status === 412) assert.equal(res.text, '');
      else assert.match(res.text, /^\d+$/, `body of a ${res.status}: ${res.text}`);
      assert.doesNotMatch(res.text, /Error|at |pouch/i);
    }
  });

  it('every answer (200, 304, 400, 401, 404, 412) carries X-Weave-Timestamp with two decimals', async () => {
    const u = gw.newUser();
    const ok = await u.put('/storage/forms/a', { payload: 'x' });
    const lm = ok.header('x-last-modified') as string;
    const byStatus: Record<number, SyncResponse> = {
      200: ok,
      304: await u.get('/storage/forms/a', { 'X-If-Modified-Since': lm }),
      400: await u.get('/storage/forms?newer=abc'),
      401: await rawRequest('GET', u.url('/info/collections')),
      404: await u.get('/storage/forms/missing'),
      412: await u.put('/storage/forms/a', { payload: 'y' }, { 'X-If-Unmodified-Since': (Number(lm) - 1).toFixed(2) }),
    };
    for (const [status, res] of Object.entries(byStatus)) {
      assert.equal(res.status, Number(status));
      assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS, `X-Weave-Timestamp on ${status}`);
    }
    assert.equal(byStatus[304]!.text, '');
    assert.equal(byStatus[412]!.text, '');
    assert.equal(byStatus[412]!.header('x-last-modified'), lm);
  });

  it('GET /__heartbeat__ answers 200 {status: "ok"}, /__lbheartbeat__ 200 and /__version__ the version', async () => {
    const hb = await rawRequest('GET', `${gw.url}/__heartbeat__`);
    assert.equal(hb.status, 200);
    assert.equal(hb.json().status, 'ok');
    const lb = await rawRequest('GET', `${gw.url}/__lbheartbeat__`);
    assert.equal(lb.status, 200);
    lb.json();
    const v = await rawRequest('GET', `${gw.url}/__version__`);
    assert.equal(v.status, 200);
    assert.equal(typeof v.json().version, 'string');
    assert.match(v.json().version, /^\d+\.\d+\.\d+/);
  });
});
