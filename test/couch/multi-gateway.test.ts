// Two or more gateway processes on ONE Couch node, as in production behind a load balancer:
// the per-user `state` document (compare-and-swap on _rev) is the only thing that orders
// their writes, and a pending write whose gateway died is rolled forward by the survivor once
// its lease (1 s here) has run out. Proved here across processes: parallel writers never get a
// 500 or a shared timestamp, X-If-Unmodified-Since lets exactly one of two gateways win, a
// batch may travel between gateways, a gateway killed (SIGKILL) mid-commit never shows a
// half-applied batch on the other one, and nothing acknowledged is lost with its gateway.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToken } from '../../server/auth/tokenlib.js';
import { SyncClient, type SyncResponse } from '../support/client.js';
import { testCouchUrl } from '../support/couch.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';

const SECRET = randomBytes(24).toString('hex');
const LEASE_MS = 1000;
const BATCH_RECORDS = 600; // more than one apply slice (500), so a kill can land mid-apply
/** A liveness bound, not a speed test: a few leases past a crash, the survivor must have settled. */
const SETTLE_DEADLINE_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Gateway {
  name: string;
  proc: GatewayProcess;
  url: string;
  /** Warning and error lines the gateway logged, for assertion messages. */
  problems: string[];
}

function clientFor(gw: Gateway, uid: number): SyncClient {
  const t = makeToken(SECRET, { uid, node: gw.url, expires: Math.floor(Date.now() / 1000) + 3600 });
  return new SyncClient({ id: t.id, key: t.key, uid, api_endpoint: `${gw.url}/1.5/${uid}` });
}

const newUid = () => randomInt(1, 2 ** 31);
const lastModified = (r: SyncResponse) => Number(r.header('x-last-modified'));
const logOf = (gw: Gateway) => (gw.problems.length ? ` — ${gw.name} logged: ${gw.problems.slice(-2).join(' | ')}` : '');

function describeAnswer(gw: Gateway, what: string, r: SyncResponse): string {
  return `${what} via gateway ${gw.name} answered ${r.status} ${r.text.slice(0, 200)}${logOf(gw)}`;
}

/**
 * Sends a write; a 503 carrying Retry-After is the protocol's answer to a lost race, so it is
 * counted and retried (quickly: this is a test, not Firefox). Any 500 fails at once.
 */
async function retry503(gw: Gateway, what: string, send: () => Promise<SyncResponse>, retried: { n: number }): Promise<SyncResponse> {
  for (let attempt = 0; ; attempt++) {
    const r = await send();
    assert.notEqual(r.status, 500, describeAnswer(gw, what, r));
    if (r.status !== 503) return r;
    assert.ok(r.header('retry-after'), `a 503 must carry Retry-After: ${describeAnswer(gw, what, r)}`);
    assert.ok(attempt < 20, `still 503 after 20 retries: ${describeAnswer(gw, what, r)}`);
    retried.n++;
    await sleep(30 + randomInt(70));
  }
}

interface Listed {
  id: string;
  modified: number;
  payload: string;
}

describe('several gateway processes on one Couch', function () {
  this.timeout(90_000);
  let couchUrl: string;
  const running: Gateway[] = [];
  const dirs: string[] = [];

  before(async () => (couchUrl = await testCouchUrl()));

  async function gateway(name: string, extra: Record<string, string> = {}): Promise<Gateway> {
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-multi-'));
    dirs.push(dir);
    const proc = await spawnGateway({
      SYNCGATE_DATA: dir,
      SYNC_MASTER_SECRET: SECRET,
      PORT: '0',
      COUCH_URL: couchUrl,
      SYNCGATE_WRITE_LEASE_MS: String(LEASE_MS),
      ...extra,
    });
    const gw: Gateway = { name, proc, url: proc.url, problems: [] };
    let buffered = '';
    proc.child.stdout?.on('data', (d: Buffer) => {
      buffered += String(d);
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (/"level":(4|5|6)0/.test(line)) gw.problems.push(line.slice(0, 1200));
    });
    running.push(gw);
    return gw;
  }

  afterEach(async () => {
    for (const gw of running.splice(0)) await gw.proc.kill();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('6 parallel writers spread over 2 gateways: every write is acknowledged (never 500), timestamps are distinct, and both gateways return every record and the same info/collections', async () => {
    const gws = [await gateway('A'), await gateway('B')];
    const uid = newUid();
    const retried = { n: 0 };
    const acked: Array<{ collection: string; id: string; payload: string; modified: number; via: string }> = [];
    let stop = false;
    const readViolations: string[] = [];

    const writers = Array.from({ length: 6 }, async (_, w) => {
      const gw = gws[w % 2]!; // 3 writers per gateway
      const c = clientFor(gw, uid);
      for (let i = 0; i < 10; i++) {
        const collection = i % 2 === 0 ? 'shared' : `own${w}`;
        const id = `w${w}-${i}`;
        const payload = `payload ${w} ${i} ${randomBytes(4).toString('hex')}`;
        const usePut = i % 3 === 2;
        const what = `${usePut ? 'PUT' : 'POST'} ${collection}/${id}`;
        const r = await retry503(
          gw,
          what,
          () => (usePut ? c.put(`/storage/${collection}/${id}`, { payload }) : c.post(`/storage/${collection}`, [{ id, payload }])),
          retried,
        );
        assert.equal(r.status, 200, describeAnswer(gw, what, r));
        const modified = lastModified(r);
        assert.ok(modified > 0, `${what}: X-Last-Modified ${r.header('x-last-modified')}`);
        assert.equal(r.header('x-weave-timestamp'), r.header('x-last-modified'), `${what}: a write's X-Weave-Timestamp is its T`);
        if (!usePut) {
          const body = r.json();
          assert.deepEqual(body.success, [id], describeAnswer(gw, what, r));
          assert.deepEqual(body.failed, {}, describeAnswer(gw, what, r));
          assert.equal(body.modified, modified);
        }
        acked.push({ collection, id, payload, modified, via: gw.name });
      }
    });
    // One poller per gateway: the storage timestamp it sees never goes back, and never a 500.
    const readers = gws.map(async (gw) => {
      const c = clientFor(gw, uid);
      let last = 0;
      while (!stop) {
        const r = await c.get('/info/collections');
        if (r.status === 503 && r.header('retry-after')) continue;
        if (r.status !== 200) {
          readViolations.push(describeAnswer(gw, 'GET info/collections', r));
          continue;
        }
        const seen = lastModified(r);
        if (seen < last) readViolations.push(`gateway ${gw.name}: storage timestamp went back from ${last} to ${seen}`);
        last = seen;
      }
    });
    try {
      await Promise.all(writers);
    } finally {
      stop = true;
      await Promise.all(readers);
    }

    assert.equal(acked.length, 60);
    const stamps = acked.map((a) => a.modified);
    assert.equal(new Set(stamps).size, stamps.length, `acknowledged writes share a timestamp: ${stamps.sort().join(' ')}`);
    assert.deepEqual(readViolations, []);

    const expectedInfo: Record<string, number> = {};
    for (const a of acked) expectedInfo[a.collection] = Math.max(expectedInfo[a.collection] ?? 0, a.modified);
    const newest = Math.max(...stamps);

    const infos: unknown[] = [];
    for (const gw of gws) {
      const c = clientFor(gw, uid);
      for (const a of acked) {
        const r = await c.get(`/storage/${a.collection}/${a.id}`);
        assert.equal(r.status, 200, `${a.collection}/${a.id} was acknowledged via ${a.via}: ${describeAnswer(gw, 'GET', r)}`);
        assert.equal(r.json().payload, a.payload, `${a.collection}/${a.id} read via ${gw.name}, written via ${a.via}`);
        assert.equal(r.json().modified, a.modified, `${a.collection}/${a.id} read via ${gw.name}, written via ${a.via}`);
      }
      const shared = await c.get('/storage/shared?full=1');
      assert.equal(shared.status, 200);
      const listed = new Map((shared.json() as Listed[]).map((b) => [b.id, b]));
      const ackedShared = acked.filter((a) => a.collection === 'shared');
      assert.equal(listed.size, ackedShared.length, `listing of shared via ${gw.name}`);
      for (const a of ackedShared) assert.equal(listed.get(a.id)?.modified, a.modified, `shared/${a.id} listed via ${gw.name}`);

      const info = await c.get('/info/collections');
      assert.equal(info.status, 200);
      assert.deepEqual(info.json(), expectedInfo, `info/collections via ${gw.name}: each collection at its newest acknowledged write`);
      assert.equal(lastModified(info), newest, `storage timestamp via ${gw.name} is the newest acknowledged write`);
      infos.push(info.json());
    }
    assert.deepEqual(infos[0], infos[1], 'both gateways answer the same info/collections');
    // A lost race may be answered 503 + Retry-After: legal, retried above, and reported here.
    if (retried.n > 0) console.log(`      (${retried.n} writes were answered 503 + Retry-After and retried)`);
  });

  it('a new user\'s first requests arriving on both gateways at once are all answered 200 (the user database is created once, never a 500)', async () => {
    const gws = [await gateway('A'), await gateway('B')];
    for (let round = 0; round < 5; round++) {
      const uid = newUid();
      const results = await Promise.all(
        gws.flatMap((gw) => {
          const c = clientFor(gw, uid);
          return [
            c.get('/info/collections').then((r) => ({ gw, what: 'GET info/collections', r })),
            c.post('/storage/clients', [{ id: gw.name, payload: 'hello' }]).then((r) => ({ gw, what: 'POST clients', r })),
          ];
        }),
      );
      for (const { gw, what, r } of results) {
        if (r.status === 503 && r.header('retry-after') && what.startsWith('POST')) continue; // a lost write race is legal
        assert.equal(r.status, 200, `new user, round ${round}: ${describeAnswer(gw, what, r)}`);
      }
    }
  });

  it('POSTs racing on two gateways with the same X-If-Unmodified-Since: each of 20 rounds gives exactly one 200 and one 412, and only winners are stored', async () => {
    const A = await gateway('A');
    const B = await gateway('B');
    const uid = newUid();
    const a = clientFor(A, uid);
    const b = clientFor(B, uid);
    const seed = await a.post('/storage/bookmarks', [{ id: 'seed', payload: 's' }]);
    assert.equal(seed.status, 200, describeAnswer(A, 'seed POST', seed));
    let since = seed.header('x-last-modified') as string;
    const winners = ['seed'];
    const losers: string[] = [];
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all([
        a.post('/storage/bookmarks', [{ id: `a${round}`, payload: 'a' }], { 'X-If-Unmodified-Since': since }),
        b.post('/storage/bookmarks', [{ id: `b${round}`, payload: 'b' }], { 'X-If-Unmodified-Since': since }),
      ]);
      const statuses = results.map((r) => r.status);
      assert.deepEqual(
        [...statuses].sort(),
        [200, 412],
        `round ${round}, X-If-Unmodified-Since: ${since}: ${describeAnswer(A, 'POST a', results[0]!)}; ${describeAnswer(B, 'POST b', results[1]!)}`,
      );
      const w = statuses[0] === 200 ? 0 : 1;
      const winner = results[w]!;
      const loser = results[1 - w]!;
      assert.equal(loser.header('x-last-modified'), winner.header('x-last-modified'), `round ${round}: the 412 carries the winner's collection timestamp`);
      assert.equal(loser.text, '', 'a 412 has no body');
      winners.push(w === 0 ? `a${round}` : `b${round}`);
      losers.push(w === 0 ? `b${round}` : `a${round}`);
      since = winner.header('x-last-modified') as string;
    }
    for (const c of [a, b]) {
      const ids = ((await c.get('/storage/bookmarks')).json() as string[]).sort();
      assert.deepEqual(ids, [...winners].sort(), 'seed plus one winner per round; no loser was written');
    }
  });

  it('a batch opened on gateway A, appended on B and committed on A: 202, 202, 200, nothing visible before the commit, then every record on both gateways with the commit timestamp', async () => {
    const A = await gateway('A');
    const B = await gateway('B');
    const uid = newUid();
    const a = clientFor(A, uid);
    const b = clientFor(B, uid);
    const before = await a.post('/storage/tabs', [{ id: 'old', payload: 'old tab' }]);
    assert.equal(before.status, 200);
    const since = before.header('x-last-modified') as string;
    const pre = { 'X-If-Unmodified-Since': since };

    const open = await a.post('/storage/tabs?batch=true', [1, 2, 3].map((i) => ({ id: `t${i}`, payload: `tab ${i}` })), pre);
    assert.equal(open.status, 202, describeAnswer(A, 'open', open));
    const batch = open.json().batch as string;
    assert.ok(batch, '202 carries the batch id');
    assert.equal(open.header('x-last-modified'), since, 'opening a batch does not move the collection');

    const append = await b.post(`/storage/tabs?batch=${encodeURIComponent(batch)}`, [4, 5, 6].map((i) => ({ id: `t${i}`, payload: `tab ${i}` })), pre);
    assert.equal(append.status, 202, describeAnswer(B, 'append', append));
    assert.equal(append.json().batch, batch, 'the 202 of an append echoes the batch id');
    assert.deepEqual(append.json().success, ['t4', 't5', 't6']);

    for (const c of [a, b]) {
      const ids = (await c.get('/storage/tabs')).json() as string[];
      assert.deepEqual(ids, ['old'], 'staged records are invisible before the commit');
    }

    const commit = await a.post(`/storage/tabs?batch=${encodeURIComponent(batch)}&commit=true`, [7, 8].map((i) => ({ id: `t${i}`, payload: `tab ${i}` })), pre);
    assert.equal(commit.status, 200, describeAnswer(A, 'commit', commit));
    const T = lastModified(commit);
    assert.equal(commit.json().modified, T);
    assert.ok(T > Number(since));

    for (const [gw, c] of [[A, a], [B, b]] as const) {
      // B caches the state it read before the commit until the node's update feed reports A's
      // write (10-50 ms, README "Run it on CouchDB"): until then it answers as before the
      // commit, never with part of it.
      let items = (await c.get('/storage/tabs?full=1')).json() as Listed[];
      for (let i = 0; gw === B && items.length === 1 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        items = (await c.get('/storage/tabs?full=1')).json() as Listed[];
      }
      const byId = new Map(items.map((i) => [i.id, i]));
      assert.equal(items.length, 9, `old tab plus 8 batch records via ${gw.name}`);
      for (let i = 1; i <= 8; i++) {
        assert.equal(byId.get(`t${i}`)?.payload, `tab ${i}`, `t${i} via ${gw.name}`);
        assert.equal(byId.get(`t${i}`)?.modified, T, `t${i} via ${gw.name} has the commit timestamp`);
      }
      assert.equal(byId.get('old')?.modified, Number(since));
      assert.equal((await c.get('/info/collections')).json().tabs, T, `info/collections via ${gw.name}`);
    }
    const again = await b.post(`/storage/tabs?batch=${encodeURIComponent(batch)}&commit=true`, []);
    assert.equal(again.status, 400, 'a committed batch is gone on the other gateway too');
  });

  it('appends to one batch racing on two gateways are all kept: 10 concurrent appends (5 per gateway), commit on B, all 50 records visible on both', async () => {
    const A = await gateway('A');
    const B = await gateway('B');
    const uid = newUid();
    const a = clientFor(A, uid);
    const b = clientFor(B, uid);
    const open = await a.post('/storage/forms?batch=true', []);
    assert.equal(open.status, 202, describeAnswer(A, 'open', open));
    const batch = encodeURIComponent(open.json().batch as string);
    const retried = { n: 0 };
    await Promise.all(
      Array.from({ length: 10 }, async (_, k) => {
        const [gw, c] = k % 2 === 0 ? [A, a] : [B, b];
        const items = Array.from({ length: 5 }, (_, i) => ({ id: `f${k}-${i}`, payload: `form ${k} ${i}` }));
        const r = await retry503(gw, `append ${k}`, () => c.post(`/storage/forms?batch=${batch}`, items), retried);
        assert.equal(r.status, 202, describeAnswer(gw, `append ${k}`, r));
      }),
    );
    const commit = await b.post(`/storage/forms?batch=${batch}&commit=true`, []);
    assert.equal(commit.status, 200, describeAnswer(B, 'commit', commit));
    const T = lastModified(commit);
    for (const [gw, c] of [[A, a], [B, b]] as const) {
      const items = (await c.get('/storage/forms?full=1')).json() as Listed[];
      assert.equal(items.length, 50, `every appended record via ${gw.name}`);
      assert.ok(
        items.every((i) => i.modified === T && i.payload === `form ${i.id.slice(1).replace('-', ' ')}`),
        `all with the commit timestamp and their payload via ${gw.name}`,
      );
    }
  });

  describe('gateway A killed (SIGKILL) during a 600-record batch commit while gateway B serves', () => {
    interface Round {
      label: string;
      /** Kill after this many ms, or let a failpoint in A kill it. */
      delayMs?: number;
      failpoint?: string;
      /** A failpoint past the pending write: the survivor must roll the batch forward. */
      mustRollForward?: boolean;
    }
    const rounds: Round[] = [
      { label: 'after 0 ms', delayMs: 0 },
      { label: 'after 20 ms', delayMs: 20 },
      { label: 'after 60 ms', delayMs: 60 },
      { label: 'at failpoint commit:mid-apply (between the two apply slices)', failpoint: 'commit:mid-apply', mustRollForward: true },
      { label: 'at failpoint commit:before-state', failpoint: 'commit:before-state', mustRollForward: true },
    ];
    // Before the batch, history holds h0..h49 ("old") and "keep", acknowledged at T0. The batch
    // rewrites h0..h599, so a half-applied commit would show up as a mix of old and new records.
    const OLD = 50;
    const newPayload = (id: string) => `${id}:${'p'.repeat(400)}`;

    type View = { outcome: 'none' } | { outcome: 'all'; T: number };
    /** The listing is the history before the batch or after all of it; otherwise says what it is. */
    function classify(items: Listed[], T0: number): View | string {
      const keep = items.find((i) => i.id === 'keep');
      const batch = items.filter((i) => i.id !== 'keep');
      const old = batch.filter((i) => i.payload === `old ${i.id}` && i.modified === T0).length;
      const fresh = batch.filter((i) => i.payload === newPayload(i.id));
      const stamps = [...new Set(fresh.map((i) => i.modified))];
      const what = `${items.length} records: keep ${keep ? 'present' : 'missing'}, ${old} old, ${fresh.length} from the batch at ${stamps.join('/') || '-'}`;
      if (keep?.payload !== 'keep' || keep.modified !== T0) return `acknowledged record keep is wrong (${what})`;
      if (batch.length === OLD && old === OLD) return { outcome: 'none' };
      if (batch.length === BATCH_RECORDS && fresh.length === BATCH_RECORDS && stamps.length === 1 && stamps[0]! > T0) return { outcome: 'all', T: stamps[0]! };
      return `a partial batch: ${what}`;
    }

    for (const round of rounds) {
      it(`killed ${round.label}: B never lists part of the batch (old history or all ${BATCH_RECORDS} records with one modified), never answers 500, settles within a few leases, a 200 commit is visible${round.mustRollForward ? ', the pending commit is rolled forward' : ''}, and acknowledged writes remain`, async () => {
        const B = await gateway('B');
        const A = await gateway('A', round.failpoint ? { SYNCGATE_FAILPOINT: round.failpoint } : {});
        const uid = newUid();
        const a = clientFor(A, uid);
        const b = clientFor(B, uid);

        // Writes acknowledged by A before it dies. commit:before-state fires on any commit, so
        // in that round they go through B (the batch itself is still staged through A).
        const [ackGw, ackVia] = round.failpoint === 'commit:before-state' ? [B, b] : [A, a];
        const acknowledged = new Map<string, { payload: string; modified: number }>();
        const meta = await ackVia.put('/storage/meta/global', { payload: 'meta' }, { 'X-If-Unmodified-Since': '0' });
        assert.equal(meta.status, 200, describeAnswer(ackGw, 'PUT meta/global', meta));
        acknowledged.set('/storage/meta/global', { payload: 'meta', modified: lastModified(meta) });
        const bm = await ackVia.post('/storage/bookmarks', Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, payload: `bookmark ${i}` })));
        assert.equal(bm.status, 200, describeAnswer(ackGw, 'POST bookmarks', bm));
        for (let i = 0; i < 10; i++) acknowledged.set(`/storage/bookmarks/b${i}`, { payload: `bookmark ${i}`, modified: lastModified(bm) });
        const oldHistory = [...Array.from({ length: OLD }, (_, i) => ({ id: `h${i}`, payload: `old h${i}` })), { id: 'keep', payload: 'keep' }];
        const hist = await ackVia.post('/storage/history', oldHistory);
        assert.equal(hist.status, 200, describeAnswer(ackGw, 'POST history', hist));
        const T0 = lastModified(hist);

        const open = await a.post('/storage/history?batch=true', []);
        assert.equal(open.status, 202, describeAnswer(A, 'open', open));
        const batch = encodeURIComponent(open.json().batch as string);
        for (let start = 0; start < BATCH_RECORDS; start += 100) {
          const items = Array.from({ length: 100 }, (_, i) => ({ id: `h${start + i}`, payload: newPayload(`h${start + i}`) }));
          const r = await a.post(`/storage/history?batch=${batch}`, items);
          assert.equal(r.status, 202, describeAnswer(A, 'append', r));
        }

        // B polls the collection before, during and after the crash.
        const violations: string[] = [];
        const seen: string[] = [];
        let answers503 = 0;
        let killedAt = Infinity;
        let settled = false;
        let stop = false;
        const reader = (async () => {
          while (!stop) {
            let r: SyncResponse;
            try {
              r = await b.get('/storage/history?full=1');
            } catch (e) {
              violations.push(`gateway B did not answer: ${(e as Error).message}`);
              return;
            }
            if (r.status === 503) {
              if (!r.header('retry-after')) violations.push(`503 without Retry-After from B`);
              answers503++;
              continue;
            }
            if (r.status !== 200) {
              violations.push(describeAnswer(B, 'GET storage/history?full=1', r));
              continue;
            }
            const view = classify(r.json() as Listed[], T0);
            if (typeof view === 'string') {
              violations.push(`B listed ${view}`);
              continue;
            }
            const expectedHeader = view.outcome === 'all' ? view.T : T0;
            if (lastModified(r) !== expectedHeader) violations.push(`B: X-Last-Modified ${r.header('x-last-modified')} with a listing of ${view.outcome}`);
            if (seen.at(-1) === 'all' && view.outcome === 'none') violations.push('B showed the batch, then no longer');
            seen.push(view.outcome);
            if (Date.now() > killedAt + 2 * LEASE_MS) settled = true;
          }
        })();

        // The reader has seen the collection before the commit starts.
        while (seen.length === 0 && violations.length === 0) await sleep(10);
        const commit = a.post(`/storage/history?batch=${batch}&commit=true`, []).catch(() => undefined);
        if (round.failpoint) {
          // The failpoint kills A itself; should it not fire, A answers and the round fails.
          const died = new Promise<void>((r) => (A.proc.child.exitCode !== null || A.proc.child.signalCode !== null ? r() : A.proc.child.once('exit', () => r())));
          const first = await Promise.race([died.then(() => 'died' as const), commit]);
          if (first === undefined) await died; // the connection dropped a moment before the exit event
          assert.equal(A.proc.child.signalCode, 'SIGKILL', `failpoint ${round.failpoint} did not kill A`);
        } else {
          await sleep(round.delayMs ?? 0);
          await A.proc.kill();
        }
        killedAt = Date.now();
        const answered = await commit;

        // Wait until B has given a 200 listing two leases after the kill (bounded, for liveness).
        while (!settled && Date.now() < killedAt + SETTLE_DEADLINE_MS && violations.length === 0) await sleep(50);
        stop = true;
        await reader;
        assert.deepEqual(violations, [], `B during the crash (answers so far: ${seen.join(',')})${logOf(B)}`);
        assert.ok(settled, `B gave no 200 listing within ${SETTLE_DEADLINE_MS} ms of the crash (${answers503} answers were 503)${logOf(B)}`);
        assert.ok(seen[0] === 'none', 'B saw the collection before the commit');

        // Settled: one more look, with info/collections agreeing.
        const final = await b.get('/storage/history?full=1');
        assert.equal(final.status, 200, describeAnswer(B, 'final GET storage/history?full=1', final));
        const view = classify(final.json() as Listed[], T0);
        if (typeof view === 'string') assert.fail(`B listed ${view}`);
        const info = await b.get('/info/collections');
        assert.equal(info.status, 200, describeAnswer(B, 'GET info/collections', info));
        assert.equal(info.json().history, view.outcome === 'all' ? view.T : T0, `info/collections agrees with the listing (${view.outcome})`);
        if (answered !== undefined) {
          assert.equal(answered.status, 200, describeAnswer(A, 'commit (answered before the kill)', answered));
          assert.equal(view.outcome, 'all', 'A answered 200 to the commit, so the batch must be visible on B');
          assert.equal(view.T, lastModified(answered), 'with the timestamp A acknowledged');
        }
        if (round.mustRollForward) assert.equal(view.outcome, 'all', 'A died after writing the pending commit; B must roll it forward');

        // Items in a 202 success list become visible iff the batch is committed: a commit that
        // never started can still be committed on B; a finished one cannot be replayed.
        const replay = await b.post(`/storage/history?batch=${batch}&commit=true`, []);
        if (view.outcome === 'all') {
          assert.equal(replay.status, 400, describeAnswer(B, 'replayed commit', replay));
        } else {
          assert.equal(replay.status, 200, describeAnswer(B, 'commit of the batch A never committed', replay));
          const after = classify((await b.get('/storage/history?full=1')).json() as Listed[], T0);
          assert.deepEqual(after, { outcome: 'all', T: lastModified(replay) });
        }

        for (const [path, want] of acknowledged) {
          const r = await b.get(path);
          assert.equal(r.status, 200, `${path} was acknowledged before the crash: ${describeAnswer(B, 'GET', r)}`);
          assert.equal(r.json().payload, want.payload, path);
          assert.equal(r.json().modified, want.modified, path);
        }
      });
    }
  });

  it('every write acknowledged by gateway A is served by gateway B after A is killed (SIGKILL) right after its last answer; a POST in flight at the kill is all or nothing', async () => {
    const A = await gateway('A');
    const B = await gateway('B');
    const uid = newUid();
    const a = clientFor(A, uid);
    const present = new Map<string, { payload: string; modified: number }>();
    const gone: string[] = [];
    const info: Record<string, number> = {};

    const post = await a.post('/storage/bookmarks', Array.from({ length: 20 }, (_, i) => ({ id: `b${i}`, payload: `bookmark ${i}` })));
    assert.equal(post.status, 200, describeAnswer(A, 'POST bookmarks', post));
    for (let i = 0; i < 20; i++) present.set(`/storage/bookmarks/b${i}`, { payload: `bookmark ${i}`, modified: lastModified(post) });
    const put = await a.put('/storage/meta/global', { payload: 'meta' }, { 'X-If-Unmodified-Since': '0' });
    assert.equal(put.status, 200, describeAnswer(A, 'PUT meta/global', put));
    present.set('/storage/meta/global', { payload: 'meta', modified: lastModified(put) });
    info.meta = lastModified(put);
    const keys = await a.put('/storage/crypto/keys', { payload: 'keys' });
    assert.equal(keys.status, 200);
    present.set('/storage/crypto/keys', { payload: 'keys', modified: lastModified(keys) });
    info.crypto = lastModified(keys);

    const open = await a.post('/storage/history?batch=true', [{ id: 'h0', payload: 'h 0' }]);
    assert.equal(open.status, 202);
    const batch = encodeURIComponent(open.json().batch as string);
    assert.equal((await a.post(`/storage/history?batch=${batch}`, [{ id: 'h1', payload: 'h 1' }])).status, 202);
    const commit = await a.post(`/storage/history?batch=${batch}&commit=true`, [{ id: 'h2', payload: 'h 2' }]);
    assert.equal(commit.status, 200, describeAnswer(A, 'commit', commit));
    for (let i = 0; i < 3; i++) present.set(`/storage/history/h${i}`, { payload: `h ${i}`, modified: lastModified(commit) });
    info.history = lastModified(commit);

    const del = await a.delete('/storage/bookmarks/b0');
    assert.equal(del.status, 200, describeAnswer(A, 'DELETE bookmarks/b0', del));
    present.delete('/storage/bookmarks/b0');
    gone.push('/storage/bookmarks/b0');
    const delIds = await a.delete('/storage/bookmarks?ids=b1,b2');
    assert.equal(delIds.status, 200);
    for (const id of ['b1', 'b2']) {
      present.delete(`/storage/bookmarks/${id}`);
      gone.push(`/storage/bookmarks/${id}`);
    }
    info.bookmarks = lastModified(delIds);
    assert.equal((await a.post('/storage/prefs', [{ id: 'p', payload: 'prefs' }])).status, 200);
    const delColl = await a.delete('/storage/prefs');
    assert.equal(delColl.status, 200);
    gone.push('/storage/prefs/p');
    const last = await a.put('/storage/clients/c1', { payload: 'client 1' });
    assert.equal(last.status, 200);
    present.set('/storage/clients/c1', { payload: 'client 1', modified: lastModified(last) });
    info.clients = lastModified(last);

    // One more POST in flight, then A dies at once.
    const inflight = a
      .post('/storage/forms', Array.from({ length: 5 }, (_, i) => ({ id: `f${i}`, payload: `form ${i}` })))
      .catch(() => undefined);
    await A.proc.kill();
    const inflightAnswer = await inflight;

    const b = clientFor(B, uid);
    const retried = { n: 0 };
    for (const [path, want] of present) {
      const r = await retry503(B, `GET ${path}`, () => b.get(path), retried);
      assert.equal(r.status, 200, `${path} was acknowledged by A: ${describeAnswer(B, 'GET', r)}`);
      assert.equal(r.json().payload, want.payload, path);
      assert.equal(r.json().modified, want.modified, path);
    }
    for (const path of gone) {
      const r = await b.get(path);
      assert.equal(r.status, 404, `${path} was deleted through A: ${describeAnswer(B, 'GET', r)}`);
    }
    const forms = (await b.get('/storage/forms?full=1')).json() as Listed[];
    assert.ok(forms.length === 0 || forms.length === 5, `the in-flight POST is all or nothing on B, saw ${forms.length} of 5`);
    if (inflightAnswer?.status === 200) {
      assert.equal(forms.length, 5, 'A answered 200 to the in-flight POST, so B must show it');
      assert.ok(forms.every((f) => f.modified === lastModified(inflightAnswer)));
    }
    if (forms.length === 5) info.forms = forms[0]!.modified;
    const infoB = await b.get('/info/collections');
    assert.equal(infoB.status, 200, describeAnswer(B, 'GET info/collections', infoB));
    assert.deepEqual(infoB.json(), info, 'info/collections on B is what A acknowledged (prefs deleted)');
  });
});
