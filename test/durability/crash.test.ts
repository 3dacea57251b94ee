// Kills a gateway process hard (SIGKILL) in the middle of a batch commit, starts it again on
// the same data folder, and checks the collection shows all of the batch or none of it, and
// that every write acknowledged before the crash is still there. The commit request carries
// the batch's last records itself: they are in its journal only, never staged.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToken } from '../../server/auth/tokenlib.js';
import { SyncClient } from '../support/client.js';
import { spawnGateway, type GatewayProcess } from '../support/process.js';

const SECRET = randomBytes(24).toString('hex');
const BATCH_RECORDS = 600; // more than one apply slice (500), so mid-apply is reachable

function clientFor(gw: GatewayProcess, uid: number): SyncClient {
  const t = makeToken(SECRET, { uid, node: gw.url, expires: Math.floor(Date.now() / 1000) + 3600 });
  return new SyncClient({ id: t.id, key: t.key, uid, api_endpoint: `${gw.url}/1.5/${uid}` });
}

interface Prepared {
  batch: string;
  acknowledged: Map<string, string>; // path -> payload
  /** The last 100 records of the batch, which the commit request itself carries (they travel in its journal). */
  commitRecords: Array<{ id: string; payload: string }>;
}

const historyRecords = (start: number) => Array.from({ length: 100 }, (_, i) => ({ id: `h${start + i}`, payload: 'p'.repeat(400) }));

/** Acknowledged writes plus a batch of BATCH_RECORDS history records: all but the last 100 staged, not committed. */
async function prepare(u: SyncClient): Promise<Prepared> {
  const acknowledged = new Map<string, string>();
  const meta = await u.put('/storage/meta/global', { payload: 'meta' }, { 'X-If-Unmodified-Since': '0' });
  assert.equal(meta.status, 200);
  acknowledged.set('/storage/meta/global', 'meta');
  const bm = await u.post('/storage/bookmarks', Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, payload: `bookmark ${i}` })));
  assert.equal(bm.status, 200);
  for (let i = 0; i < 10; i++) acknowledged.set(`/storage/bookmarks/b${i}`, `bookmark ${i}`);
  const open = await u.post('/storage/history?batch=true', []);
  assert.equal(open.status, 202);
  const batch = open.json().batch as string;
  for (let start = 0; start < BATCH_RECORDS - 100; start += 100) {
    const r = await u.post(`/storage/history?batch=${batch}`, historyRecords(start));
    assert.equal(r.status, 202);
  }
  return { batch, acknowledged, commitRecords: historyRecords(BATCH_RECORDS - 100) };
}

/** The history collection holds none of the batch, or all of it with one timestamp. */
async function assertAllOrNothing(u: SyncClient): Promise<'all' | 'none'> {
  const res = await u.get('/storage/history?full=1');
  assert.equal(res.status, 200);
  const items = res.json() as Array<{ id: string; modified: number }>;
  if (items.length === 0) {
    const info = (await u.get('/info/collections')).json();
    assert.equal(info.history, undefined, 'no records, so the collection must not have moved');
    return 'none';
  }
  assert.equal(items.length, BATCH_RECORDS, `saw ${items.length} of ${BATCH_RECORDS} batch records`);
  const stamps = new Set(items.map((i) => i.modified));
  assert.equal(stamps.size, 1, 'every record of one commit has the commit timestamp');
  const info = (await u.get('/info/collections')).json();
  assert.equal(info.history, items[0]?.modified);
  return 'all';
}

async function assertAcknowledged(u: SyncClient, acknowledged: Map<string, string>): Promise<void> {
  for (const [path, payload] of acknowledged) {
    const r = await u.get(path);
    assert.equal(r.status, 200, `${path} was acknowledged before the crash`);
    assert.equal(r.json().payload, payload);
  }
}

describe('gateway killed during a batch commit (SIGKILL)', function () {
  this.timeout(60_000);
  let dir: string;
  const running: GatewayProcess[] = [];
  const spawnOn = async (extra: Record<string, string> = {}) => {
    const gw = await spawnGateway({ SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: SECRET, PORT: '0', ...extra });
    running.push(gw);
    return gw;
  };

  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'syncgate-crash-'))));
  afterEach(async () => {
    for (const gw of running.splice(0)) await gw.kill();
    await rm(dir, { recursive: true, force: true });
  });

  for (const point of ['commit:after-pending', 'commit:mid-apply', 'commit:before-state']) {
    it(`POST ?batch=<id>&commit=true killed at ${point}: after restart the whole batch is visible and acknowledged writes remain`, async () => {
      const uid = randomInt(1, 2 ** 31);
      const first = await spawnOn();
      const prepared = await prepare(clientFor(first, uid));
      await first.kill();

      const armed = await spawnOn({ SYNCGATE_FAILPOINT: point });
      const commit = clientFor(armed, uid).post(`/storage/history?batch=${prepared.batch}&commit=true`, prepared.commitRecords);
      await assert.rejects(commit, 'the gateway died before answering');
      await armed.kill();

      const again = await spawnOn();
      const u = clientFor(again, uid);
      // The journal in the state document lets the next request finish the commit.
      assert.equal(await assertAllOrNothing(u), 'all');
      await assertAcknowledged(u, prepared.acknowledged);
      const replay = await u.post(`/storage/history?batch=${prepared.batch}&commit=true`, []);
      assert.equal(replay.status, 400, 'a committed batch cannot be committed again');
    });
  }

  it('POST ?batch=<id>&commit=true killed after random delays: every restart shows all of the batch or none', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 4; round++) {
      const uid = randomInt(1, 2 ** 31);
      const gw = await spawnOn();
      const u = clientFor(gw, uid);
      const prepared = await prepare(u);
      const commit = u.post(`/storage/history?batch=${prepared.batch}&commit=true`, prepared.commitRecords).catch(() => undefined);
      await new Promise((r) => setTimeout(r, round * 15));
      await gw.kill();
      const answered = await commit;
      const again = await spawnOn();
      const v = clientFor(again, uid);
      const outcome = await assertAllOrNothing(v);
      if (answered?.status === 200) assert.equal(outcome, 'all', 'a commit that got 200 must be visible');
      await assertAcknowledged(v, prepared.acknowledged);
      outcomes.push(outcome);
      await again.kill();
    }
    assert.equal(outcomes.length, 4);
  });

  /** The records in a batch of three requests: opened with 20, appended 20, committed with 10. */
  async function postAsBatch(u: SyncClient, records: Array<{ id: string; payload: string }>) {
    const open = await u.post('/storage/forms?batch=true', records.slice(0, 20));
    assert.equal(open.status, 202);
    const batch = open.json().batch as string;
    assert.equal((await u.post(`/storage/forms?batch=${batch}`, records.slice(20, 40))).status, 202);
    return u.post(`/storage/forms?batch=${batch}&commit=true`, records.slice(40));
  }

  // On the embedded store a POST, and the commit of a batch of up to 500 records, writes its
  // records and the state that commits them in one LevelDB batch, with no pending marker to roll
  // forward: a kill can only leave all of it or none.
  it('POSTs and small batch commits killed after random delays: each is stored whole or not at all, acknowledged ones whole, and info/collections matches the newest', async () => {
    for (let round = 0; round < 4; round++) {
      const uid = randomInt(1, 2 ** 31);
      const gw = await spawnOn();
      const u = clientFor(gw, uid);
      const acknowledged = new Set<number>();
      let stop = false;
      const writer = (async () => {
        for (let n = 0; !stop; n++) {
          const records = Array.from({ length: 50 }, (_, i) => ({ id: `p${n}r${i}`, payload: `post ${n}` }));
          const r = await (n % 2 === 0 ? u.post('/storage/forms', records) : postAsBatch(u, records)).catch(() => undefined);
          if (!r) return;
          assert.equal(r.status, 200);
          acknowledged.add(n);
        }
      })();
      while (acknowledged.size < 3) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, round * 17));
      await gw.kill();
      stop = true;
      await writer;

      const again = await spawnOn();
      const v = clientFor(again, uid);
      const listing = await v.get('/storage/forms?full=1');
      assert.equal(listing.status, 200, `the listing after restart: ${listing.status} ${listing.text}`);
      const items = listing.json() as Array<{ id: string; payload: string; modified: number }>;
      const byPost = new Map<number, Array<{ modified: number }>>();
      for (const item of items) {
        const n = Number(/^p(\d+)r/.exec(item.id)?.[1]);
        assert.equal(item.payload, `post ${n}`);
        byPost.set(n, [...(byPost.get(n) ?? []), item]);
      }
      for (const [n, records] of byPost) {
        assert.equal(records.length, 50, `POST ${n} is stored whole, not ${records.length} of 50 records`);
        assert.equal(new Set(records.map((r) => r.modified)).size, 1, `POST ${n}'s records carry one timestamp`);
      }
      for (const n of acknowledged) assert.ok(byPost.has(n), `acknowledged POST ${n} survived the kill`);
      assert.ok(acknowledged.size > 0, 'some POSTs were acknowledged before the kill');
      const newest = Math.max(...items.map((i) => i.modified));
      const info = (await v.get('/info/collections')).json();
      assert.equal(info.forms, newest, 'the collection timestamp is that of its newest stored POST');
      await again.kill();
    }
  });
});
