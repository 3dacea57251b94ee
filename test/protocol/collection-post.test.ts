import assert from 'node:assert/strict';
import type { SyncClient, SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;
const BODY_MODIFIED = /['"]modified['"]:\s*[0-9]+\.[0-9][0-9]\s*[,}]/;

interface PostResult {
  modified: number;
  success: string[];
  failed: Record<string, string>;
}

async function collections(u: SyncClient): Promise<Record<string, number>> {
  const res = await u.get('/info/collections');
  assert.equal(res.status, 200, res.text);
  return res.json<Record<string, number>>();
}

async function listIds(u: SyncClient, collection: string): Promise<string[]> {
  const res = await u.get(`/storage/${collection}`);
  assert.equal(res.status, 200, res.text);
  return res.json<string[]>().sort();
}

function assertPostOk(res: SyncResponse): PostResult {
  assert.equal(res.status, 200, `${res.status} ${res.text}`);
  const body = res.json<PostResult>();
  assert.deepEqual(Object.keys(body).sort(), ['failed', 'modified', 'success']);
  return body;
}

function assertStatusBody(res: SyncResponse, status: number, body: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.text, body, `${what}: body`);
}

describe('POST storage/{collection} (non-batch)', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('POST storage/{c} answers 200 {modified, success, failed} with a two-decimal modified equal to X-Last-Modified and X-Weave-Timestamp', async () => {
    const u = gw.newUser();
    const res = await u.post('/storage/bookmarks', [
      { id: 'a', payload: 'pa', sortindex: 1 },
      { id: 'b', payload: 'pb' },
    ]);
    const body = assertPostOk(res);
    assert.match(res.text, BODY_MODIFIED);
    assert.match(res.header('x-last-modified') ?? '', TWO_DECIMALS);
    assert.equal(res.header('x-last-modified'), res.header('x-weave-timestamp'));
    assert.equal(body.modified, Number(res.header('x-last-modified')));
    assert.deepEqual([...body.success].sort(), ['a', 'b']);
    assert.deepEqual(body.failed, {});

    assert.deepEqual((await collections(u)).bookmarks, body.modified, 'the collection timestamp becomes T');
    const a = await u.get('/storage/bookmarks/a');
    assert.deepEqual(a.json(), { id: 'a', modified: body.modified, payload: 'pa', sortindex: 1 });
    const b = await u.get('/storage/bookmarks/b');
    assert.deepEqual(b.json(), { id: 'b', modified: body.modified, payload: 'pb' });
  });

  it('POST storage/{c} keeps per-item failures in failed while the valid items succeed', async () => {
    const u = gw.newUser();
    const res = await u.post('/storage/forms', [
      { id: 'ok1', payload: 'x' },
      { id: 'x'.repeat(65), payload: 'x' },
      { id: 'bad\nid', payload: 'x' },
      { id: 'unknown', payload: 'x', colour: 'blue' },
      { id: 'notstring', payload: 5 },
      { id: 'bigsort', payload: 'x', sortindex: 1_000_000_000 },
      { id: 'floatsort', payload: 'x', sortindex: 2.5 },
      { id: 'negttl', payload: 'x', ttl: -1 },
      { id: 'ok2', payload: 'y', collection: 'forms', modified: 12345 },
    ]);
    const body = assertPostOk(res);
    assert.deepEqual([...body.success].sort(), ['ok1', 'ok2']);
    assert.deepEqual(Object.keys(body.failed).sort(), [
      'bad\nid',
      'bigsort',
      'floatsort',
      'negttl',
      'notstring',
      'unknown',
      'x'.repeat(65),
    ].sort());
    for (const [id, reason] of Object.entries(body.failed)) {
      assert.equal(typeof reason, 'string', `reason for ${id}`);
      assert.ok(reason.length > 0, `reason for ${id} is not empty`);
    }
    assert.match(body.failed.unknown ?? '', /colour/, 'the unknown field is named');

    assert.deepEqual(await listIds(u, 'forms'), ['ok1', 'ok2']);
    assert.equal((await u.get('/storage/forms/notstring')).status, 404);
    assert.equal((await u.get('/storage/forms/negttl')).status, 404);
    const ok2 = await u.get('/storage/forms/ok2');
    assert.equal(ok2.json().modified, body.modified, 'a client-sent modified is ignored');
  });

  describe('whole-request failures answer 400 with body 8 and write nothing', () => {
    const cases: Array<[string, unknown]> = [
      ['a body that is not JSON', '[{"id": "a", "payload": "x"}'],
      ['a body that is not an array', { id: 'a', payload: 'x' }],
      ['an element that is a number', [{ id: 'a', payload: 'x' }, 5]],
      ['an element that is null', [{ id: 'a', payload: 'x' }, null]],
      ['an element that is an array', [{ id: 'a', payload: 'x' }, [{ id: 'b' }]]],
      ['an element without an id', [{ id: 'a', payload: 'x' }, { payload: 'y' }]],
      ['an element whose id is an object', [{ id: 'a', payload: 'x' }, { id: {}, payload: 'y' }]],
      ['an element whose id is true', [{ id: 'a', payload: 'x' }, { id: true, payload: 'y' }]],
      ['an element whose id is a list', [{ id: 'a', payload: 'x' }, { id: ['b'], payload: 'y' }]],
      ['an element whose id is a fraction', [{ id: 'a', payload: 'x' }, { id: 1.5, payload: 'y' }]],
      ['a numeric id that repeats a string id', [{ id: '7', payload: 'x' }, { id: 'a' }, { id: 7, payload: 'z' }]],
      ['two elements with the same id', [{ id: 'a', payload: 'x' }, { id: 'b' }, { id: 'a', payload: 'z' }]],
    ];
    for (const [what, body] of cases) {
      it(`POST storage/{c} with ${what} answers 400 / 8`, async () => {
        const u = gw.newUser();
        const res = await u.post('/storage/history', body);
        assertStatusBody(res, 400, '8', what);
        assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS);
        assert.equal((await u.get('/storage/history/a')).status, 404, 'nothing is written');
        assert.equal((await collections(u)).history, undefined, 'the collection is not created');
      });
    }
  });

  it('POST storage/{c} with ids sent as JSON numbers stores them as their decimal strings, as Mozilla\'s Python server did', async () => {
    const u = gw.newUser();
    const res = await u.request('POST', '/storage/forms', { body: '[{"id": 12, "payload": "twelve"}, {"id": -3, "payload": "minus"}, {"id": "s", "payload": "str"}]' });
    const body = assertPostOk(res);
    assert.deepEqual(body.success, ['12', '-3', 's']);
    assert.deepEqual(await listIds(u, 'forms'), ['-3', '12', 's']);
    const twelve = await u.get('/storage/forms/12');
    assert.equal(twelve.status, 200);
    assert.deepEqual(twelve.json(), { id: '12', modified: body.modified, payload: 'twelve' });
    const full = (await u.get('/storage/forms?full=1&sort=index')).json() as Array<{ id: unknown }>;
    for (const r of full) assert.equal(typeof r.id, 'string', 'listed back as strings');
    // A PUT body may carry a numeric id too: validated, and the path's id is kept.
    assert.equal((await u.put('/storage/forms/p', { id: 99, payload: 'put' })).status, 200);
    assert.equal((await u.get('/storage/forms/p')).json().id, 'p');
    assert.equal((await u.put('/storage/forms/q', { id: {}, payload: 'put' })).status, 400);
  });

  it('POST storage/{c} whose items all fail still creates and then touches the collection', async () => {
    const u = gw.newUser();
    const first = await u.post('/storage/prefs', [{ id: 'p', payload: 5 }]);
    const body = assertPostOk(first);
    assert.deepEqual(body.success, []);
    assert.deepEqual(Object.keys(body.failed), ['p']);
    assert.equal((await collections(u)).prefs, body.modified, 'info/collections lists the collection at T');
    assert.deepEqual(await listIds(u, 'prefs'), []);

    const second = assertPostOk(await u.post('/storage/prefs', [{ id: 'q', sortindex: 'high' }]));
    assert.ok(second.modified > body.modified);
    assert.equal((await collections(u)).prefs, second.modified, 'an all-failed POST bumps the collection timestamp');
  });

  it('POST storage/{c} merges into an existing record: sending only sortindex keeps the payload', async () => {
    const u = gw.newUser();
    const first = assertPostOk(await u.post('/storage/bookmarks', [{ id: 'm', payload: 'keep me', sortindex: 5 }]));
    const second = assertPostOk(await u.post('/storage/bookmarks', [{ id: 'm', sortindex: 7 }]));
    assert.deepEqual(second.success, ['m']);
    assert.ok(second.modified > first.modified);
    assert.deepEqual((await u.get('/storage/bookmarks/m')).json(), {
      id: 'm',
      modified: second.modified,
      payload: 'keep me',
      sortindex: 7,
    });
    const third = assertPostOk(await u.post('/storage/bookmarks', [{ id: 'm', payload: 'new' }]));
    assert.deepEqual((await u.get('/storage/bookmarks/m')).json(), {
      id: 'm',
      modified: third.modified,
      payload: 'new',
      sortindex: 7,
    });
  });

  it('POST storage/{c} with X-If-Unmodified-Since older than the collection answers 412 and writes nothing', async () => {
    const u = gw.newUser();
    const first = assertPostOk(await u.post('/storage/tabs', [{ id: 't1', payload: 'x' }]));
    const older = (first.modified - 0.01).toFixed(2);
    const res = await u.post('/storage/tabs', [{ id: 't2', payload: 'y' }, { id: 't1', payload: 'changed' }], {
      'X-If-Unmodified-Since': older,
    });
    assert.equal(res.status, 412);
    assert.equal(res.text, '');
    assert.equal(res.header('x-last-modified'), first.modified.toFixed(2));
    assert.equal((await u.get('/storage/tabs/t2')).status, 404, 'nothing is written');
    assert.equal((await u.get('/storage/tabs/t1')).json().payload, 'x');
    assert.equal((await collections(u)).tabs, first.modified, 'the collection timestamp is unchanged');

    const equal = await u.post('/storage/tabs', [{ id: 't2', payload: 'y' }], {
      'X-If-Unmodified-Since': first.modified.toFixed(2),
    });
    assertPostOk(equal);
  });

  it('POST storage/{c} gives every write of a user a strictly greater timestamp than the previous one', async () => {
    const u = gw.newUser();
    const stamps: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await u.post(`/storage/${i % 2 === 0 ? 'history' : 'forms'}`, [{ id: `r${i}`, payload: String(i) }]);
      assert.equal(res.status, 200, res.text);
      assert.match(res.header('x-last-modified') ?? '', TWO_DECIMALS);
      stamps.push(Number(res.header('x-last-modified')));
    }
    for (let i = 1; i < stamps.length; i++) {
      assert.ok(stamps[i]! > stamps[i - 1]!, `write ${i} at ${stamps[i]} is after write ${i - 1} at ${stamps[i - 1]}`);
    }
  });

  describe('Content-Type', () => {
    it('POST storage/{c} with application/newlines reads one object per line, trailing newline allowed', async () => {
      const u = gw.newUser();
      const body = '{"id":"a","payload":"1"}\n{"id":"b","payload":"2","sortindex":3}\n';
      const res = await u.request('POST', '/storage/history', { body, contentType: 'application/newlines' });
      assert.deepEqual([...assertPostOk(res).success].sort(), ['a', 'b']);
      const noTrailing = await u.request('POST', '/storage/history', {
        body: '{"id":"c","payload":"3"}\n{"id":"d","payload":5}',
        contentType: 'application/newlines',
      });
      const r2 = assertPostOk(noTrailing);
      assert.deepEqual(r2.success, ['c']);
      assert.deepEqual(Object.keys(r2.failed), ['d']);
      assert.deepEqual(await listIds(u, 'history'), ['a', 'b', 'c']);
      assert.equal((await u.get('/storage/history/b')).json().sortindex, 3);
    });

    it('POST storage/{c} with application/newlines and an empty line answers 400 and writes nothing', async () => {
      const u = gw.newUser();
      const res = await u.request('POST', '/storage/history', {
        body: '{"id":"a","payload":"1"}\n\n{"id":"b","payload":"2"}\n',
        contentType: 'application/newlines',
      });
      assert.equal(res.status, 400, res.text);
      const lone = await u.request('POST', '/storage/history', { body: '\n', contentType: 'application/newlines' });
      assert.equal(lone.status, 400, lone.text);
      const bad = await u.request('POST', '/storage/history', {
        body: '{"id":"a","payload":"1"}\nnot json\n',
        contentType: 'application/newlines',
      });
      assert.equal(bad.status, 400, bad.text);
      assert.equal((await u.get('/storage/history/a')).status, 404);
    });

    it('POST storage/{c} with text/plain or application/json; charset=utf-8 treats the body as JSON', async () => {
      const u = gw.newUser();
      const plain = await u.request('POST', '/storage/clients', {
        body: [{ id: 'c1', payload: 'x' }],
        contentType: 'text/plain',
      });
      assert.deepEqual(assertPostOk(plain).success, ['c1']);
      const charset = await u.request('POST', '/storage/clients', {
        body: [{ id: 'c2', payload: 'y' }],
        contentType: 'application/json; charset=utf-8',
      });
      assert.deepEqual(assertPostOk(charset).success, ['c2']);
      assert.deepEqual(await listIds(u, 'clients'), ['c1', 'c2']);
    });

    it('POST storage/{c} with application/x-foo answers 415 with body 0 and writes nothing', async () => {
      const u = gw.newUser();
      const res = await u.request('POST', '/storage/clients', {
        body: [{ id: 'c1', payload: 'x' }],
        contentType: 'application/x-foo',
      });
      assertStatusBody(res, 415, '0', 'application/x-foo');
      assert.equal((await u.get('/storage/clients/c1')).status, 404);
      assert.equal((await collections(u)).clients, undefined);
    });
  });
});

describe('POST storage/{collection} per-request limits', () => {
  let gw: TestGateway;
  before(
    async () =>
      (gw = await startGateway({
        SYNCGATE_MAX_POST_RECORDS: '3',
        SYNCGATE_MAX_POST_BYTES: '100',
        SYNCGATE_MAX_RECORD_PAYLOAD_BYTES: '60',
        SYNCGATE_MAX_REQUEST_BYTES: '1000',
      })),
  );
  after(() => gw.close());

  const p = (n: number): string => 'x'.repeat(n);

  it('POST storage/{c} with more than max_post_records valid items fails the extra ones with "retry bso"', async () => {
    const u = gw.newUser();
    const body = assertPostOk(
      await u.post('/storage/history', ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, payload: 'x' }))),
    );
    assert.deepEqual([...body.success].sort(), ['a', 'b', 'c']);
    assert.deepEqual(body.failed, { d: 'retry bso', e: 'retry bso' });
    assert.deepEqual(await listIds(u, 'history'), ['a', 'b', 'c']);
  });

  it('POST storage/{c} with exactly max_post_records items and exactly max_post_bytes succeeds (limits are inclusive)', async () => {
    const u = gw.newUser();
    const body = assertPostOk(
      await u.post('/storage/history', [
        { id: 'a', payload: p(40) },
        { id: 'b', payload: p(60) },
        { id: 'c' },
      ]),
    );
    assert.deepEqual([...body.success].sort(), ['a', 'b', 'c']);
    assert.deepEqual(body.failed, {});
    assert.equal((await u.get('/storage/history/b')).json().payload, p(60), 'a payload of exactly max_record_payload_bytes is kept');
  });

  it('POST storage/{c} fails with "retry bytes" the item that pushes the total over max_post_bytes and every later one', async () => {
    const u = gw.newUser();
    const body = assertPostOk(
      await u.post('/storage/history', [
        { id: 'a', payload: p(40) },
        { id: 'b', payload: p(40) },
        { id: 'c', payload: p(30) },
        { id: 'd', payload: p(10) },
      ]),
    );
    assert.deepEqual([...body.success].sort(), ['a', 'b']);
    assert.deepEqual(body.failed, { c: 'retry bytes', d: 'retry bytes' });
    assert.deepEqual(await listIds(u, 'history'), ['a', 'b']);
  });

  it('POST storage/{c} fails an item over max_record_payload_bytes with "retry bytes" and still counts its bytes', async () => {
    const u = gw.newUser();
    const body = assertPostOk(
      await u.post('/storage/history', [
        { id: 'big', payload: p(61) },
        { id: 'fits', payload: p(39) },
        { id: 'over', payload: p(1) },
      ]),
    );
    assert.deepEqual(body.success, ['fits']);
    assert.deepEqual(body.failed, { big: 'retry bytes', over: 'retry bytes' });
    assert.deepEqual(await listIds(u, 'history'), ['fits']);
  });

  it('POST storage/{c} with X-Weave-Records over max_post_records answers 400 / 17 (equal is accepted)', async () => {
    const u = gw.newUser();
    const over = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }], { 'X-Weave-Records': '4' });
    assertStatusBody(over, 400, '17', 'X-Weave-Records 4');
    assert.equal((await u.get('/storage/tabs/a')).status, 404, 'nothing is written');
    const equal = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }], { 'X-Weave-Records': '3' });
    assertPostOk(equal);
  });

  it('POST storage/{c} with X-Weave-Bytes over max_post_bytes answers 400 / 17 (equal is accepted)', async () => {
    const u = gw.newUser();
    const over = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }], { 'X-Weave-Bytes': '101' });
    assertStatusBody(over, 400, '17', 'X-Weave-Bytes 101');
    assert.equal((await u.get('/storage/tabs/a')).status, 404, 'nothing is written');
    const equal = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }], { 'X-Weave-Bytes': '100' });
    assertPostOk(equal);
  });

  for (const value of ['abc', '-1', '1.5', '2x']) {
    it(`POST storage/{c} with X-Weave-Records or X-Weave-Bytes "${value}" (not a non-negative integer) answers 400`, async () => {
      const u = gw.newUser();
      const records = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }], { 'X-Weave-Records': value });
      assert.equal(records.status, 400, `X-Weave-Records ${value}: ${records.text}`);
      const bytes = await u.post('/storage/tabs', [{ id: 'a', payload: 'x' }], { 'X-Weave-Bytes': value });
      assert.equal(bytes.status, 400, `X-Weave-Bytes ${value}: ${bytes.text}`);
      assert.equal((await u.get('/storage/tabs/a')).status, 404, 'nothing is written');
    });
  }

  it('POST storage/{c} with Content-Length over max_request_bytes answers 413 / 17 and writes nothing', async () => {
    const u = gw.newUser();
    const body = JSON.stringify([{ id: 'a', payload: p(1500) }]);
    const res = await u.post('/storage/tabs', body);
    assertStatusBody(res, 413, '17', 'oversized body');
    assert.equal((await u.get('/storage/tabs/a')).status, 404);
    assert.equal((await collections(u)).tabs, undefined);
  });
});
