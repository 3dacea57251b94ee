// CORS as syncstorage-rs answers it (spec 2, step 1), and methods no route serves: 405 with
// Allow on a known path, 404 elsewhere, never 501 (spec 6.3).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { rawRequest } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/** node:http, since fetch refuses some methods (TRACE) and answers preflights itself in browsers only. */
function send(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('CORS preflight and unknown methods', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_FXA: 'false' })));
  after(() => gw.close());

  for (const origin of ['https://one.example', 'http://127.0.0.1:5173']) {
    it(`a preflight from ${origin} is answered before routing and authentication on a storage path, __heartbeat__ under a user path and the token endpoint`, async () => {
      const uid = gw.newUser().uid;
      for (const path of [`/1.5/${uid}/storage/bookmarks`, `/1.5/${uid}/storage/bookmarks/abc`, `/1.5/${uid}/__heartbeat__`, '/1.0/sync/1.5', '/no/such/path']) {
        const res = await send(gw.url + path, 'OPTIONS', {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization,content-type,x-if-unmodified-since',
        });
        assert.ok(res.status === 200 || res.status === 204, `${path}: ${res.status}`);
        assert.equal(res.headers['access-control-allow-origin'], origin, path);
        assert.deepEqual(String(res.headers['access-control-allow-methods']).split(',').sort(), ['DELETE', 'GET', 'POST', 'PUT']);
        assert.equal(res.headers['access-control-allow-headers'], 'authorization,content-type,x-if-unmodified-since');
        assert.equal(res.headers['access-control-max-age'], '1728000');
        assert.equal(res.headers['www-authenticate'], undefined, 'no authentication was asked for');
      }
    });
  }

  it('ordinary answers to a request with an Origin carry Access-Control-Allow-Origin, errors included; without Origin none', async () => {
    const u = gw.newUser();
    const ok = await u.get('/info/collections', { Origin: 'https://one.example' });
    assert.equal(ok.status, 200);
    assert.equal(ok.header('access-control-allow-origin'), 'https://one.example');
    assert.match(ok.header('access-control-expose-headers') ?? '', /X-Last-Modified/);
    const unauthorized = await rawRequest('GET', `${u.url('/info/collections')}`, { headers: { Origin: 'https://two.example' } });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.header('access-control-allow-origin'), 'https://two.example');
    const token = await rawRequest('GET', `${gw.url}/1.0/sync/1.5`, { headers: { Origin: 'https://two.example' } });
    assert.equal(token.status, 401);
    assert.equal(token.header('access-control-allow-origin'), 'https://two.example');
    assert.equal((await u.get('/info/collections')).header('access-control-allow-origin'), null);
  });

  it('PATCH, PROPFIND, TRACE and MKCOL on a collection answer 405 with Allow and body 0; on an unknown path 404', async () => {
    const u = gw.newUser();
    for (const method of ['PATCH', 'PROPFIND', 'TRACE', 'MKCOL']) {
      const res = await send(u.url('/storage/bookmarks'), method);
      assert.equal(res.status, 405, `${method}: ${res.status}`);
      assert.deepEqual(String(res.headers.allow).split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'POST']);
      assert.equal(res.text, '0');
      assert.match(String(res.headers['content-type']), /application\/json/);
      const item = await send(u.url('/storage/bookmarks/abc'), method);
      assert.equal(item.status, 405);
      assert.deepEqual(String(item.headers.allow).split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'PUT']);
      const unknown = await send(`${gw.url}/no/such/path`, method);
      assert.equal(unknown.status, 404, `${method} on an unknown path`);
      assert.equal(unknown.text, '0');
      const heartbeat = await send(`${gw.url}/__heartbeat__`, method);
      assert.equal(heartbeat.status, 405, `${method} /__heartbeat__`);
      assert.match(String(heartbeat.headers.allow), /GET/);
    }
  });

  it('PROPFIND on the token endpoint answers 405 with Allow: GET in its own JSON format', async () => {
    const res = await send(`${gw.url}/1.0/sync/1.5`, 'PROPFIND');
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET');
    assert.equal(JSON.parse(res.text).status, 'error');
  });
});
