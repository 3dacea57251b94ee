import assert from 'node:assert/strict';
import type { SyncClient, SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;
const BAD_IV = JSON.stringify({ ciphertext: 'c2VjcmV0', IV: 'AAAAAAAAAAAAAAAAAAAAAA==', hmac: 'abcd' });

function assertInvalidBso(res: SyncResponse, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.text, '8', `${what}: an invalid BSO answers body 8`);
}

async function collectionStamp(u: SyncClient, collection: string): Promise<number | undefined> {
  const res = await u.get('/info/collections');
  assert.equal(res.status, 200);
  return res.json<Record<string, number>>()[collection];
}

describe('GET/PUT/DELETE storage/{collection}/{id}', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('PUT storage/{c}/{id} answers 200 with the bare two-decimal timestamp, equal to X-Last-Modified and X-Weave-Timestamp', async () => {
    const u = gw.newUser();
    const res = await u.put('/storage/meta/global', { payload: '{"syncID":"x","storageVersion":5}' });
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, TWO_DECIMALS);
    assert.equal(res.header('x-last-modified'), res.text);
    assert.equal(res.header('x-weave-timestamp'), res.text);
    assert.equal(typeof res.json(), 'number');
    assert.equal(await collectionStamp(u, 'meta'), Number(res.text), 'the collection timestamp becomes T');
  });

  it('GET storage/{c}/{id} returns {id, modified, payload, sortindex} with X-Last-Modified = modified', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/b1', { payload: 'data', sortindex: 42 });
    const res = await u.get('/storage/bookmarks/b1');
    assert.equal(res.status, 200, res.text);
    assert.match(res.header('content-type') ?? '', /application\/json/);
    assert.deepEqual(res.json(), { id: 'b1', modified: Number(put.text), payload: 'data', sortindex: 42 });
    assert.match(res.text, /['"]modified['"]:\s*[0-9]+\.[0-9][0-9]\s*[,}]/);
    assert.equal(res.header('x-last-modified'), put.text);

    await u.put('/storage/bookmarks/b2', { payload: 'other', ttl: 3600 });
    const plain = await u.get('/storage/bookmarks/b2');
    assert.deepEqual(Object.keys(plain.json()).sort(), ['id', 'modified', 'payload'], 'no sortindex when null, never ttl');
  });

  it('GET storage/{c}/{id} of a missing item answers 404 with body 0', async () => {
    const u = gw.newUser();
    const none = await u.get('/storage/bookmarks/nope');
    assert.equal(none.status, 404);
    assert.equal(none.text, '0');
    await u.put('/storage/bookmarks/exists', { payload: 'x' });
    const missing = await u.get('/storage/bookmarks/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, '0');
  });

  it('GET storage/{c}/{id} of a missing item with X-If-Modified-Since answers 304', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/exists', { payload: 'x' });
    const res = await u.get('/storage/bookmarks/nope', { 'X-If-Modified-Since': put.text });
    assert.equal(res.status, 304);
    assert.equal(res.text, '');
  });

  it('GET storage/{c}/{id} with X-If-Modified-Since / X-If-Unmodified-Since compares with the item timestamp', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/b', { payload: 'x' });
    const before = (Number(put.text) - 0.01).toFixed(2);
    const notModified = await u.get('/storage/bookmarks/b', { 'X-If-Modified-Since': put.text });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.header('x-last-modified'), put.text);
    assert.equal((await u.get('/storage/bookmarks/b', { 'X-If-Modified-Since': before })).status, 200);
    const changed = await u.get('/storage/bookmarks/b', { 'X-If-Unmodified-Since': before });
    assert.equal(changed.status, 412);
    assert.equal(changed.header('x-last-modified'), put.text);
  });

  it('PUT storage/{c}/{id} merges: a sortindex-only PUT keeps the payload, a payload-only PUT keeps the sortindex', async () => {
    const u = gw.newUser();
    await u.put('/storage/bookmarks/m', { payload: 'original', sortindex: 1 });
    const t2 = await u.put('/storage/bookmarks/m', { sortindex: 7 });
    assert.equal(t2.status, 200, t2.text);
    assert.deepEqual((await u.get('/storage/bookmarks/m')).json(), { id: 'm', modified: Number(t2.text), payload: 'original', sortindex: 7 });
    const t3 = await u.put('/storage/bookmarks/m', { payload: 'changed' });
    assert.deepEqual((await u.get('/storage/bookmarks/m')).json(), { id: 'm', modified: Number(t3.text), payload: 'changed', sortindex: 7 });
  });

  it('PUT storage/{c}/{id} with only ttl keeps the record modified but bumps the collection timestamp', async () => {
    const u = gw.newUser();
    const t1 = await u.put('/storage/forms/f', { payload: 'keep', sortindex: 2 });
    const t2 = await u.put('/storage/forms/f', { ttl: 3600 });
    assert.equal(t2.status, 200, t2.text);
    assert.ok(Number(t2.text) > Number(t1.text));
    const got = await u.get('/storage/forms/f');
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json(), { id: 'f', modified: Number(t1.text), payload: 'keep', sortindex: 2 });
    assert.equal(await collectionStamp(u, 'forms'), Number(t2.text));
  });

  it('PUT storage/{c}/{id} with ttl: 0 makes the item vanish immediately', async () => {
    const u = gw.newUser();
    await u.put('/storage/forms/gone', { payload: 'x' });
    const res = await u.put('/storage/forms/gone', { ttl: 0 });
    assert.equal(res.status, 200, res.text);
    assert.equal((await u.get('/storage/forms/gone')).status, 404);
  });

  it('PUT storage/{c}/{id} with X-If-Unmodified-Since: 0 creates when absent and answers 412 when it exists', async () => {
    const u = gw.newUser();
    const created = await u.put('/storage/meta/global', { payload: 'first' }, { 'X-If-Unmodified-Since': '0' });
    assert.equal(created.status, 200, created.text);
    const again = await u.put('/storage/meta/global', { payload: 'second' }, { 'X-If-Unmodified-Since': '0' });
    assert.equal(again.status, 412);
    assert.equal(again.text, '');
    assert.equal(again.header('x-last-modified'), created.text);
    assert.equal((await u.get('/storage/meta/global')).json().payload, 'first', 'nothing written on 412');
    const ok = await u.put('/storage/meta/global', { payload: 'third' }, { 'X-If-Unmodified-Since': created.text });
    assert.equal(ok.status, 200, 'equal timestamp is allowed');
  });

  it('PUT storage/{c}/{id} with an invalid body answers 400 with body 8 and writes nothing', async () => {
    const u = gw.newUser();
    const cases: [string, unknown][] = [
      ['a JSON string', JSON.stringify('notabso')],
      ['a JSON number', '42'],
      ['a JSON array', '[{"payload":"x"}]'],
      ['unparsable JSON', '{"payload": '],
      ['an unknown field', { payload: 'x', foo: 1 }],
      ['a non-string payload', { payload: 42 }],
      ['an object payload', { payload: { a: 1 } }],
      ['sortindex above range', { payload: 'x', sortindex: 1000000000 }],
      ['sortindex below range', { payload: 'x', sortindex: -1000000000 }],
      ['a non-integer sortindex', { payload: 'x', sortindex: 1.5 }],
      ['a negative ttl', { payload: 'x', ttl: -1 }],
      ['a non-integer ttl', { payload: 'x', ttl: 'soon' }],
      ['a 65-char id in the body', { id: 'a'.repeat(65), payload: 'x' }],
      ['an id with a newline in the body', { id: 'bad\n', payload: 'x' }],
    ];
    for (const [what, body] of cases) assertInvalidBso(await u.put('/storage/history/h', body), what);
    assert.equal((await u.get('/storage/history/h')).status, 404);
  });

  it('PUT storage/{c}/{id} accepts sortindex at ±999999999', async () => {
    const u = gw.newUser();
    for (const sortindex of [999999999, -999999999]) {
      const res = await u.put('/storage/history/h', { payload: 'x', sortindex });
      assert.equal(res.status, 200, res.text);
      assert.equal((await u.get('/storage/history/h')).json().sortindex, sortindex);
    }
  });

  it('PUT storage/{c}/{id} accepts and ignores body keys collection and modified, and a valid body id', async () => {
    const u = gw.newUser();
    const res = await u.put('/storage/history/h', { id: 'other', collection: 'elsewhere', modified: 123.45, payload: 'x' });
    assert.equal(res.status, 200, res.text);
    const got = await u.get('/storage/history/h');
    assert.deepEqual(got.json(), { id: 'h', modified: Number(res.text), payload: 'x' });
    assert.equal((await u.get('/storage/history/other')).status, 404);
    assert.equal((await u.get('/storage/elsewhere/h')).status, 404);
  });

  it('PUT storage/{c}/{id} treats null fields as absent (ttl: null never expires, sortindex: null keeps the old one)', async () => {
    const u = gw.newUser();
    const created = await u.put('/storage/clients/n', { payload: 'x', ttl: null, sortindex: null });
    assert.equal(created.status, 200, created.text);
    const got = await u.get('/storage/clients/n');
    assert.equal(got.status, 200, 'ttl: null does not expire the item');
    assert.deepEqual(got.json(), { id: 'n', modified: Number(created.text), payload: 'x' });

    await u.put('/storage/clients/n', { sortindex: 5 });
    const t = await u.put('/storage/clients/n', { payload: 'y', sortindex: null, ttl: null });
    assert.equal(t.status, 200, t.text);
    assert.deepEqual((await u.get('/storage/clients/n')).json(), { id: 'n', modified: Number(t.text), payload: 'y', sortindex: 5 });

    const payloadNull = await u.put('/storage/clients/n', { payload: null, sortindex: 6 });
    assert.equal(payloadNull.status, 200, payloadNull.text);
    assert.equal((await u.get('/storage/clients/n')).json().payload, 'y', 'payload: null keeps the payload');
  });

  it('PUT storage/crypto/{id} with the known-bad IV answers 400 with body 8; other collections accept it', async () => {
    const u = gw.newUser();
    assertInvalidBso(await u.put('/storage/crypto/keys', { payload: BAD_IV }), 'bad IV in crypto');
    const spaced = '{"ciphertext":"x","IV": "AAAAAAAAAAAAAAAAAAAAAA==","hmac":"y"}';
    assertInvalidBso(await u.put('/storage/crypto/keys', { payload: spaced }), 'bad IV with a space in crypto');
    assert.equal((await u.get('/storage/crypto/keys')).status, 404);
    const good = await u.put('/storage/crypto/keys', { payload: BAD_IV.replace('AAAAAAAAAAAAAAAAAAAAAA==', 'q83vEjRWeJq83vEjRWeJqw==') });
    assert.equal(good.status, 200, good.text);
    const other = await u.put('/storage/bookmarks/k', { payload: BAD_IV });
    assert.equal(other.status, 200, other.text);
    assert.equal((await u.get('/storage/bookmarks/k')).json().payload, BAD_IV);
  });

  it('PUT storage/{c}/{id} accepts Content-Type text/plain and application/json; charset=utf-8, rejects application/x-foo with 415', async () => {
    const u = gw.newUser();
    for (const [i, contentType] of ['text/plain', 'text/plain;charset=UTF-8', 'application/json; charset=utf-8', 'application/json'].entries()) {
      const res = await u.request('PUT', `/storage/prefs/p${i}`, { body: { payload: contentType }, contentType });
      assert.equal(res.status, 200, `${contentType}: ${res.text}`);
      assert.equal((await u.get(`/storage/prefs/p${i}`)).json().payload, contentType);
    }
    const bad = await u.request('PUT', '/storage/prefs/bad', { body: { payload: 'x' }, contentType: 'application/x-foo' });
    assert.equal(bad.status, 415, bad.text);
    assert.equal((await u.get('/storage/prefs/bad')).status, 404);
  });

  it('DELETE storage/{c}/{id} answers 200 {"modified": T}, bumps the collection and the item is gone', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/tabs/t', { payload: 'x' });
    await u.put('/storage/tabs/keep', { payload: 'y' });
    const del = await u.delete('/storage/tabs/t');
    assert.equal(del.status, 200, del.text);
    assert.match(del.text, /^\{\s*"modified":\s*\d+\.\d\d\s*\}$/);
    const t = del.json().modified;
    assert.ok(t > Number(put.text));
    assert.equal(await collectionStamp(u, 'tabs'), t);
    const gone = await u.get('/storage/tabs/t');
    assert.equal(gone.status, 404);
    assert.equal(gone.text, '0');
    assert.deepEqual((await u.get('/storage/tabs')).json(), ['keep']);
  });

  it('DELETE storage/{c}/{id} of a missing item answers 404 with body 0', async () => {
    const u = gw.newUser();
    await u.put('/storage/tabs/t', { payload: 'x' });
    const res = await u.delete('/storage/tabs/nope');
    assert.equal(res.status, 404);
    assert.equal(res.text, '0');
    const noCollection = await u.delete('/storage/nothing/nope');
    assert.equal(noCollection.status, 404);
  });

  it('PUT/GET/DELETE storage/{c}/{id} round-trip an id with URL-encoded characters (a%20b%2Fc)', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/bookmarks/a%20b%2Fc', { payload: 'slashy' });
    assert.equal(put.status, 200, put.text);
    const got = await u.get('/storage/bookmarks/a%20b%2Fc');
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json(), { id: 'a b/c', modified: Number(put.text), payload: 'slashy' });
    assert.deepEqual((await u.get('/storage/bookmarks')).json(), ['a b/c']);
    assert.equal((await u.get('/storage/bookmarks/a%20b')).status, 404);
    assert.equal((await u.delete('/storage/bookmarks/a%20b%2Fc')).status, 200);
    assert.equal((await u.get('/storage/bookmarks/a%20b%2Fc')).status, 404);
  });

  it('PUT storage/{c}/{id} accepts a 64-char id and answers 400 for a 65-char id in the path', async () => {
    const u = gw.newUser();
    const id64 = 'x'.repeat(63) + 'y';
    const ok = await u.put(`/storage/history/${id64}`, { payload: 'x' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await u.get(`/storage/history/${id64}`)).json().id, id64);
    const id65 = 'x'.repeat(64) + 'z';
    const bad = await u.put(`/storage/history/${id65}`, { payload: 'x' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal((await u.get(`/storage/history/${id65}`)).status, 400);
    assert.deepEqual((await u.get('/storage/history')).json(), [id64]);
  });
});

describe('PUT storage/{collection}/{id} with max_record_payload_bytes = 1000', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway({ SYNCGATE_MAX_RECORD_PAYLOAD_BYTES: '1000' })));
  after(() => gw.close());

  it('PUT storage/{c}/{id} accepts a 1000-byte payload and answers 400 / 8 above it, counting UTF-8 bytes', async () => {
    const u = gw.newUser();
    const ok = await u.put('/storage/history/big', { payload: 'x'.repeat(1000) });
    assert.equal(ok.status, 200, ok.text);
    assertInvalidBso(await u.put('/storage/history/big', { payload: 'x'.repeat(1001) }), '1001 bytes');
    assertInvalidBso(await u.put('/storage/history/wide', { payload: 'é'.repeat(501) }), '501 two-byte chars');
    assert.equal((await u.get('/storage/history/big')).json().payload.length, 1000, 'the oversized PUT wrote nothing');
    assert.equal((await u.get('/storage/history/wide')).status, 404);
  });
});
