import assert from 'node:assert/strict';
import type { SyncClient, SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const TWO_DECIMALS = /^\d+\.\d\d$/;
const RAW_MODIFIED = /['"]modified['"]:\s*[0-9]+\.[0-9][0-9]\s*[,}]/;
const FX_ACCEPT = 'application/json;q=0.9,*/*;q=0.2';

/** Writes each record with its own PUT so that every record gets its own, increasing timestamp. */
async function putEach(u: SyncClient, collection: string, records: { id: string; payload?: string; sortindex?: number }[]): Promise<number[]> {
  const stamps: number[] = [];
  for (const { id, ...body } of records) {
    const res = await u.put(`/storage/${collection}/${encodeURIComponent(id)}`, { payload: 'x', ...body });
    assert.equal(res.status, 200, res.text);
    stamps.push(Number(res.header('x-last-modified')));
  }
  for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! > stamps[i - 1]!, 'separate writes get increasing timestamps');
  return stamps;
}

function assertBadRequest(res: SyncResponse, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.text, '0', `${what}: query validation errors answer body 0`);
}

/** Follows X-Weave-Next-Offset until the last page; returns every page's items. */
async function pages(u: SyncClient, path: string): Promise<unknown[][]> {
  const out: unknown[][] = [];
  let offset: string | null = null;
  for (let guard = 0; guard < 20; guard++) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await u.get(offset === null ? path : `${path}${sep}offset=${encodeURIComponent(offset)}`);
    assert.equal(res.status, 200, res.text);
    const items = res.json<unknown[]>();
    assert.equal(res.header('x-weave-records'), String(items.length));
    out.push(items);
    offset = res.header('x-weave-next-offset');
    if (offset === null) return out;
    assert.ok(offset.length > 0, 'X-Weave-Next-Offset is never empty');
  }
  assert.fail(`paging ${path} never ended`);
}

describe('GET storage/{collection}', () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('GET storage/{collection} of a missing collection answers 200 [] with X-Last-Modified 0.00', async () => {
    const u = gw.newUser();
    for (const path of ['/storage/nothere', '/storage/nothere?full=1']) {
      const res = await u.get(path);
      assert.equal(res.status, 200, res.text);
      assert.match(res.header('content-type') ?? '', /application\/json/);
      assert.deepEqual(res.json(), []);
      assert.equal(res.header('x-last-modified'), '0.00');
      assert.equal(res.header('x-weave-records'), '0');
      assert.match(res.header('x-weave-timestamp') ?? '', TWO_DECIMALS);
    }
  });

  it('GET storage/{collection} answers ids by default and X-Last-Modified = the collection timestamp', async () => {
    const u = gw.newUser();
    const post = await u.post('/storage/forms', [{ id: 'a', payload: 'x' }, { id: 'b', payload: 'y' }]);
    assert.equal(post.status, 200, post.text);
    const res = await u.get('/storage/forms');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json<string[]>().sort(), ['a', 'b']);
    assert.equal(res.header('x-last-modified'), post.header('x-last-modified'));
  });

  describe('ids=', () => {
    let u: SyncClient;
    before(async () => {
      u = gw.newUser();
      const res = await u.post('/storage/forms', ['a', 'b', 'c', 'd', 'x y'].map((id) => ({ id, payload: id })));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json().failed, {});
    });

    it('GET storage/{collection}?ids=a,c returns only the listed ids that exist', async () => {
      const res = await u.get('/storage/forms?ids=a,c,nope');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json<string[]>().sort(), ['a', 'c']);
      assert.equal(res.header('x-weave-records'), '2');
    });

    it('GET storage/{collection}?ids= URL-decodes the query before splitting on commas', async () => {
      const res = await u.get('/storage/forms?ids=a%2Cb%2Cx%20y');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json<string[]>().sort(), ['a', 'b', 'x y']);
    });

    it('GET storage/{collection}?ids=a,b, tolerates a trailing empty piece', async () => {
      const res = await u.get('/storage/forms?ids=a,b,');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json<string[]>().sort(), ['a', 'b']);
    });

    it('GET storage/{collection}?ids= accepts 100 ids and rejects 101 with 400', async () => {
      const list = (n: number) => ['a', ...Array.from({ length: n - 1 }, (_, i) => `id${i}`)].join(',');
      const ok = await u.get(`/storage/forms?ids=${list(100)}`);
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(ok.json(), ['a']);
      assertBadRequest(await u.get(`/storage/forms?ids=${list(101)}`), '101 ids');
    });

    it('GET storage/{collection}?ids= with an invalid id answers 400', async () => {
      assertBadRequest(await u.get(`/storage/forms?ids=a,${'z'.repeat(65)}`), '65-char id');
      assertBadRequest(await u.get('/storage/forms?ids=a,b%09c'), 'id with a tab');
    });
  });

  it('GET storage/{collection}?newer= and ?older= are strict inequalities', async () => {
    const u = gw.newUser();
    const [ta, tb, tc] = await putEach(u, 'history', [{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const get = async (q: string) => {
      const res = await u.get(`/storage/history?${q}`);
      assert.equal(res.status, 200, res.text);
      return res.json<string[]>().sort();
    };
    assert.deepEqual(await get(`newer=${tb!.toFixed(2)}`), ['c'], 'modified == newer is excluded');
    assert.deepEqual(await get(`older=${tb!.toFixed(2)}`), ['a'], 'modified == older is excluded');
    assert.deepEqual(await get(`newer=${ta!.toFixed(2)}&older=${tc!.toFixed(2)}`), ['b']);
    assert.deepEqual(await get(`newer=${(ta! - 0.01).toFixed(2)}`), ['a', 'b', 'c']);
    assert.deepEqual(await get(`newer=${tc!.toFixed(2)}`), []);
    assert.deepEqual(await get('newer=0'), ['a', 'b', 'c']);
  });

  it('GET storage/{collection}?full is a presence flag: full=0 still returns full BSOs', async () => {
    const u = gw.newUser();
    const put = await u.put('/storage/prefs/p1', { payload: 'hello', sortindex: 3 });
    const expected = [{ id: 'p1', modified: Number(put.header('x-last-modified')), payload: 'hello', sortindex: 3 }];
    for (const q of ['full=1', 'full=0', 'full=', 'full']) {
      const res = await u.get(`/storage/prefs?${q}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json(), expected, q);
    }
    assert.deepEqual((await u.get('/storage/prefs')).json(), ['p1'], 'without full only ids');
  });

  it('GET storage/{collection}?full omits sortindex when null and never returns ttl', async () => {
    const u = gw.newUser();
    const post = await u.post('/storage/tabs', [
      { id: 'plain', payload: 'p', ttl: 3600 },
      { id: 'indexed', payload: 'q', sortindex: 0, ttl: 3600 },
    ]);
    assert.deepEqual(post.json().failed, {});
    const res = await u.get('/storage/tabs?full=1');
    assert.equal(res.status, 200, res.text);
    assert.doesNotMatch(res.text, /ttl/);
    const byId = new Map(res.json<Record<string, unknown>[]>().map((b) => [b.id, b]));
    assert.deepEqual(Object.keys(byId.get('plain') ?? {}).sort(), ['id', 'modified', 'payload']);
    assert.deepEqual(Object.keys(byId.get('indexed') ?? {}).sort(), ['id', 'modified', 'payload', 'sortindex']);
    assert.equal(byId.get('indexed')?.sortindex, 0);
  });

  it('GET storage/{collection}?full writes every modified with exactly two decimals in the raw body', async () => {
    const u = gw.newUser();
    // Write until one record's timestamp ends in 0 (e.g. 1700000000.50), which plain JSON would print short.
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      const res = await u.put(`/storage/clients/c${i}`, { payload: 'x' });
      assert.equal(res.status, 200, res.text);
      found = (res.header('x-last-modified') ?? '').endsWith('0');
    }
    assert.ok(found, 'some write got a timestamp ending in 0');
    const res = await u.get('/storage/clients?full=1');
    assert.equal(res.status, 200);
    const items = res.json<unknown[]>();
    assert.ok(items.length > 0);
    // Every item carries exactly one modified key, so every one must match the two-decimal form.
    assert.equal(res.text.match(new RegExp(RAW_MODIFIED.source, 'g'))?.length, items.length, res.text);
  });

  it('GET storage/{collection}?sort=newest|oldest|index orders by modified desc, modified asc, sortindex desc', async () => {
    const u = gw.newUser();
    await putEach(u, 'bookmarks', [
      { id: 'first', sortindex: 5 },
      { id: 'second', sortindex: 100 },
      { id: 'third', sortindex: -3 },
      { id: 'fourth', sortindex: 50 },
    ]);
    const order = async (q: string) => {
      const res = await u.get(`/storage/bookmarks?${q}`);
      assert.equal(res.status, 200, res.text);
      return res.json<(string | { id: string })[]>().map((x) => (typeof x === 'string' ? x : x.id));
    };
    assert.deepEqual(await order('sort=newest'), ['fourth', 'third', 'second', 'first']);
    assert.deepEqual(await order('sort=oldest'), ['first', 'second', 'third', 'fourth']);
    assert.deepEqual(await order('sort=index'), ['second', 'fourth', 'first', 'third']);
    assert.deepEqual(await order('sort=index&full=1'), ['second', 'fourth', 'first', 'third']);
    assert.deepEqual(await order('sort=newest&full=1'), ['fourth', 'third', 'second', 'first']);
  });

  it('GET storage/{collection}?limit= returns that many items, X-Weave-Records and X-Weave-Next-Offset', async () => {
    const u = gw.newUser();
    await putEach(u, 'forms', [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }, { id: 'e' }]);
    const first = await u.get('/storage/forms?sort=oldest&limit=2');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json(), ['a', 'b']);
    assert.equal(first.header('x-weave-records'), '2');
    const next = first.header('x-weave-next-offset');
    assert.ok(next, 'a page with more items behind it carries X-Weave-Next-Offset');
    const all = await pages(u, '/storage/forms?sort=oldest&limit=2');
    assert.deepEqual(all, [['a', 'b'], ['c', 'd'], ['e']]);
    const exact = await u.get('/storage/forms?limit=5');
    assert.equal(exact.header('x-weave-next-offset'), null, 'no offset when nothing is left');
    assert.equal(exact.header('x-weave-records'), '5');
    const none = await u.get('/storage/forms?limit=0');
    assert.equal(none.status, 200);
    assert.deepEqual(none.json(), []);
  });

  it('GET storage/{collection}?limit=10 pages through 25 records sharing one timestamp without duplicates', async () => {
    const u = gw.newUser();
    const ids = Array.from({ length: 25 }, (_, i) => `rec${String(i).padStart(2, '0')}`);
    const post = await u.post('/storage/history', ids.map((id, i) => ({ id, payload: `p${i}`, sortindex: 7 })));
    assert.equal(post.status, 200, post.text);
    assert.equal(post.json().success.length, 25);
    for (const q of ['limit=10', 'limit=10&sort=newest', 'limit=10&sort=oldest', 'limit=10&sort=index', 'limit=10&full=1']) {
      const all = await pages(u, `/storage/history?${q}`);
      assert.deepEqual(all.map((p) => p.length), [10, 10, 5], q);
      const seen = all.flat().map((x) => (typeof x === 'string' ? x : (x as { id: string }).id));
      assert.equal(new Set(seen).size, 25, `${q}: no duplicates`);
      assert.deepEqual([...seen].sort(), ids, `${q}: every id`);
    }
  });

  it('GET storage/{collection}?offset=garbage answers 400', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x' }, { id: 'b', payload: 'y' }]);
    for (const off of ['garbage!', 'xyz', '~~~']) {
      assertBadRequest(await u.get(`/storage/forms?limit=1&offset=${encodeURIComponent(off)}`), `offset=${off}`);
    }
  });

  it('GET storage/{collection} with bad sort, limit, newer or older answers 400', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x' }]);
    for (const q of ['sort=bogus', 'sort=NEWEST', 'limit=-1', 'limit=abc', 'limit=1.5', 'newer=abc', 'newer=-1', 'older=abc', 'older=-5']) {
      assertBadRequest(await u.get(`/storage/forms?${q}`), q);
    }
  });

  it('GET storage/{collection} ignores unknown query parameters', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x' }]);
    const res = await u.get('/storage/forms?v=1.2.3&frobnicate=yes&full=1');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().length, 1);
    assert.equal(res.json()[0].id, 'a');
  });

  it('GET storage/{collection} with Accept: application/newlines answers one JSON value per line', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [
      { id: 'a', payload: 'line1\nline2' },
      { id: 'b', payload: 'y', sortindex: 2 },
    ]);
    const res = await u.get('/storage/forms?full=1&sort=oldest', { Accept: 'application/newlines' });
    assert.equal(res.status, 200, res.text);
    assert.match(res.header('content-type') ?? '', /^application\/newlines/);
    assert.ok(res.text.endsWith('\n'), 'the last line is terminated too');
    const lines = res.text.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 2);
    const items = lines.map((l) => JSON.parse(l));
    assert.deepEqual(items.map((b) => b.id).sort(), ['a', 'b']);
    assert.equal(items.find((b) => b.id === 'a').payload, 'line1\nline2');
    for (const l of lines) assert.match(l, RAW_MODIFIED);
    assert.equal(res.header('x-weave-records'), '2');

    const ids = await u.get('/storage/forms', { Accept: 'application/newlines' });
    assert.equal(ids.status, 200);
    assert.deepEqual(ids.text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)).sort(), ['a', 'b']);
    assert.ok(ids.text.endsWith('\n'));
  });

  it('GET storage/{collection} with Accept: x/yy answers 406', async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x' }]);
    const res = await u.get('/storage/forms', { Accept: 'x/yy' });
    assert.equal(res.status, 406, res.text);
  });

  it("GET storage/{collection} with Firefox's weighted Accept answers JSON", async () => {
    const u = gw.newUser();
    await u.post('/storage/forms', [{ id: 'a', payload: 'x' }]);
    for (const accept of [FX_ACCEPT, '*/*', 'application/json']) {
      const res = await u.get('/storage/forms?full=1', { Accept: accept });
      assert.equal(res.status, 200, `${accept}: ${res.text}`);
      assert.match(res.header('content-type') ?? '', /^application\/json/, accept);
      assert.equal(res.json()[0].id, 'a');
    }
  });

  it('GET storage/{collection} with X-If-Modified-Since at the collection timestamp answers 304 with no body', async () => {
    const u = gw.newUser();
    const post = await u.post('/storage/forms', [{ id: 'a', payload: 'x' }]);
    const lm = post.header('x-last-modified') as string;
    await u.put('/storage/other/z', { payload: 'later write elsewhere' });
    const res = await u.get('/storage/forms?full=1', { 'X-If-Modified-Since': lm });
    assert.equal(res.status, 304);
    assert.equal(res.text, '');
    assert.equal(res.header('x-last-modified'), lm);
    const older = await u.get('/storage/forms', { 'X-If-Modified-Since': (Number(lm) - 0.01).toFixed(2) });
    assert.equal(older.status, 200);
    assert.deepEqual(older.json(), ['a']);
  });

  it('GET storage/{collection} with X-If-Unmodified-Since older than the collection answers 412 with X-Last-Modified', async () => {
    const u = gw.newUser();
    const post = await u.post('/storage/forms', [{ id: 'a', payload: 'x' }]);
    const lm = post.header('x-last-modified') as string;
    const res = await u.get('/storage/forms', { 'X-If-Unmodified-Since': (Number(lm) - 0.01).toFixed(2) });
    assert.equal(res.status, 412);
    assert.equal(res.text, '');
    assert.equal(res.header('x-last-modified'), lm);
    const same = await u.get('/storage/forms', { 'X-If-Unmodified-Since': lm });
    assert.equal(same.status, 200, 'equal is allowed');
    assert.deepEqual(same.json(), ['a']);
  });
});
