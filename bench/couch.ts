// Each hot path through a syncgate gateway (a separate process, HTTP + Hawk) against the raw
// Couch calls that path needs under syncgate's data model, made directly with nano, on the
// same data in the same run. The ratio is gateway time over raw time: what the gateway adds.
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nano from 'nano';
import { makeToken } from '../server/auth/tokenlib.js';
import { loadConfig } from '../server/config.js';
import { createStore } from '../storage/create-store.js';
import { userDbName } from '../storage/db-name.js';
import { LeanSyncClient } from './lean-client.js';
import { cpuMs, openFiles, rss } from './proc.js';
import { freePort, startCouchNode } from '../test/support/couch.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = 4;
const HOT = 64; // users with 1,100 records each: one per connection at concurrency 64
const RECORDS = 1000;

interface Row {
  path: string;
  users: number;
  concurrency: number;
  gateway: number;
  raw: number;
}

type Op = (client: number) => Promise<unknown>;

const mb = (bytes: number | undefined) => (bytes === undefined ? '?' : bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} kB`);

/** Bytes under a folder (its files' sizes, as du -b counts them). */
async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** A user's database on disk as Couch reports it: file (live data), or '?' (pouchdb-server reports none). */
async function dbFile(couch: nano.ServerScope, uid: number): Promise<string> {
  const info = (await couch.db.get(userDbName(String(uid))).catch(() => undefined)) as { sizes?: { file?: number; active?: number } } | undefined;
  return info?.sizes?.file === undefined ? '?' : `${mb(info.sizes.file)} (${mb(info.sizes.active)} live)`;
}

/** CPU ms per operation of the three processes on one side of a comparison. */
interface Cpu {
  gateway: number;
  couch: number;
  bench: number;
}
/** The processes whose CPU time is read: the gateway, and the Couch when the bench started it. */
interface Pids {
  gateway: number | undefined;
  couch: number | undefined;
}
const cpuNow = (pids: Pids): Cpu => ({ gateway: pids.gateway ? cpuMs(pids.gateway) : 0, couch: pids.couch ? cpuMs(pids.couch) : 0, bench: cpuMs() });

/**
 * Closed-loop clients; runs at least `seconds` and at least `minOps` operations per client, so
 * slow paths are not quantised (compare() asks 2 per round: 8 over its four rounds).
 */
async function rate(op: Op, concurrency: number, seconds: number, minOps = 2): Promise<{ done: number; ms: number }> {
  let done = 0;
  const start = Date.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      for (let mine = 0; Date.now() < end || mine < minOps; mine++) {
        await op(c);
        done++;
      }
    }),
  );
  return { done, ms: Date.now() - start };
}

/**
 * Gateway and raw in alternating rounds, so drift of the machine (caches, compaction, other
 * load) falls on both alike instead of on whichever ran first.
 */
async function compare(gateway: Op, raw: Op, concurrency: number, pids: Pids): Promise<{ gateway: number; raw: number; cpu: { gateway: Cpu; raw: Cpu } }> {
  // Unmeasured: both sides' code is optimised and their caches hot before the first round.
  await rate(gateway, concurrency, 1, 1);
  await rate(raw, concurrency, 1, 1);
  const zero = (): Cpu => ({ gateway: 0, couch: 0, bench: 0 });
  const g = { done: 0, ms: 0, cpu: zero() };
  const r = { done: 0, ms: 0, cpu: zero() };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [op, sum] of [[gateway, g], [raw, r]] as const) {
      const before = cpuNow(pids);
      const one = await rate(op, concurrency, SECONDS / ROUNDS);
      const after = cpuNow(pids);
      sum.done += one.done;
      sum.ms += one.ms;
      for (const k of ['gateway', 'couch', 'bench'] as const) sum.cpu[k] += after[k] - before[k];
    }
  }
  const perOp = (s: typeof g): Cpu => ({ gateway: s.cpu.gateway / s.done, couch: s.cpu.couch / s.done, bench: s.cpu.bench / s.done });
  return { gateway: (g.done * 1000) / g.ms, raw: (r.done * 1000) / r.ms, cpu: { gateway: perOp(g), raw: perOp(r) } };
}

// Every read of the gateway asks for _conflicts (replication may bring some), so the raw
// calls do too: the same requests, on the same documents.
const READ = { conflicts: true };

const expect = async <R extends { status: number; text: string }>(p: Promise<R>, status: number): Promise<R> => {
  const r = await p;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text.slice(0, 100)}`);
  return r;
};

export async function benchCouch(): Promise<number> {
  // BENCH_USERS: the numbers of user databases on the node. Without COUCH_URL the node is the
  // bench's own: an Apache CouchDB from COUCHDB_HOME when it is set, otherwise a
  // pouchdb-server on disk (leveldb). pouchdb-server never closes a
  // database and each open one holds four file descriptors, so past 4,000 users it would
  // exceed this machine's hard limit of 20,000: those runs put the node in memory (memdown),
  // all levels alike, so that the levels stay comparable. BENCH_COUCH=disk|memory overrides.
  const levels = (process.env.BENCH_USERS ?? '100,1000').split(',').map(Number);
  const inMemory = (process.env.BENCH_COUCH ?? (Math.max(...levels) > 4000 ? 'memory' : 'disk')) === 'memory';
  const own = process.env.COUCH_URL ? undefined : await startCouchNode({ inMemory });
  const couchUrl = process.env.COUCH_URL ?? own!.url;
  // BENCH_COUCH_CONFIG: CouchDB settings for the run, e.g. "couchdb/max_dbs_open=5000,global_changes/max_write_delay=500".
  for (const setting of process.env.BENCH_COUCH_CONFIG?.split(',').filter(Boolean) ?? []) {
    const [key, value] = setting.split('=') as [string, string];
    await nano(couchUrl).relax({ method: 'put', path: `_node/_local/_config/${key}`, body: value });
  }
  const secret = randomBytes(24).toString('hex');
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-bench-'));
  const base = randomInt(1_000_000, 1_000_000_000); // fresh uids, also on a Couch that keeps data
  const uids = (n: number) => Array.from({ length: n }, (_, i) => base + i);

  // Data, written through the store (the same documents a gateway writes).
  const store = createStore(loadConfig({ SYNCGATE_DATA: dir, COUCH_URL: couchUrl, SYNCGATE_MAX_OPEN_USERS: '100' }));
  await store.start();
  const cutoff = new Map<number, number>();
  const newest = new Map<number, string[]>();
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (const uid of uids(HOT).filter((_, i) => i % 8 === w)) {
        await store.put(String(uid), 'meta', { id: 'global', payload: 'meta' }, {});
        for (let i = 0; i < RECORDS; i += 100) {
          const records = Array.from({ length: 100 }, (_, j) => ({ id: `h${i + j}`, payload: 'x'.repeat(450) }));
          await store.post(String(uid), 'history', { records, failed: {} }, {});
        }
        cutoff.set(uid, (await store.info(String(uid), {})).storage);
        const records = Array.from({ length: 100 }, (_, j) => ({ id: `n${j}`, payload: 'y'.repeat(450) }));
        await store.post(String(uid), 'history', { records, failed: {} }, {});
        newest.set(uid, records.map((r) => r.id));
      }
    }),
  );

  // Logs go to /dev/null, not into this process: the gateway still formats and writes every
  // line, but the load generator does not spend its CPU reading them.
  const port = await freePort();
  // BENCH_GATEWAY_NODE_ARGS: node flags for the gateway, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const nodeArgs = process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, fileURLToPath(new URL('../bin/syncgate.js', import.meta.url)), 'serve'], {
    env: {
      ...process.env,
      SYNCGATE_DATA: dir,
      SYNC_MASTER_SECRET: secret,
      HOST: '127.0.0.1',
      PORT: String(port),
      COUCH_URL: couchUrl,
      SYNCGATE_MAX_OPEN_USERS: '20000',
      SYNCGATE_BACKOFF_INFLIGHT: '0',
      SYNCGATE_MAX_INFLIGHT: '0',
    },
    stdio: 'ignore',
  });
  const pids: Pids = { gateway: child.pid, couch: own?.pid };
  const gw = { url: `http://127.0.0.1:${port}` };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}`);
    if (await fetch(`${gw.url}/__lbheartbeat__`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('the gateway did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const clients = new Map<number, LeanSyncClient>();
  const client = (uid: number) => {
    let c = clients.get(uid);
    if (!c) {
      const t = makeToken(secret, { uid, node: gw.url, expires: Math.floor(Date.now() / 1000) + 86400 });
      clients.set(uid, (c = new LeanSyncClient({ id: t.id, key: t.key, api_endpoint: `${gw.url}/1.5/${uid}` })));
    }
    return c;
  };
  const couch = nano(couchUrl);
  const raw = (uid: number) => couch.use<any>(userDbName(String(uid)));

  const rows: Row[] = [];
  // BENCH_PATHS: only the paths whose name contains one of these (comma-separated).
  const only = process.env.BENCH_PATHS?.split(',');
  const measure = async (path: string, users: number, concurrency: number, gateway: Op, rawOp: Op) => {
    if (only && !only.some((p) => path.includes(p))) return;
    const { gateway: g, raw: r, cpu } = await compare(gateway, rawOp, concurrency, pids);
    rows.push({ path, users, concurrency, gateway: g, raw: r });
    const ratio = r / g;
    const ms = (n: number) => n.toFixed(2).padStart(6);
    console.log(
      `${path.padEnd(44)} ${String(users).padStart(6)} ${String(concurrency).padStart(4)} ${g.toFixed(0).padStart(9)} ${r.toFixed(0).padStart(9)} ${ratio.toFixed(2).padStart(7)}` +
        `   ${ms(cpu.gateway.gateway)} ${ms(cpu.gateway.couch)} ${ms(cpu.raw.couch)} ${ms(cpu.gateway.bench)} ${ms(cpu.raw.bench)}`,
    );
  };

  const kind = !own ? 'COUCH_URL' : process.env.COUCHDB_HOME ? `Apache CouchDB from ${process.env.COUCHDB_HOME}` : `pouchdb-server ${inMemory ? 'in memory' : 'on disk (leveldb)'}`;
  const setting = (key: string) => couch.relax({ path: `_node/_local/_config/${key}` }).then(String, () => 'default');
  const settings = process.env.COUCHDB_HOME || process.env.COUCH_URL ? `; max_dbs_open ${await setting('couchdb/max_dbs_open')}, global_changes max_write_delay ${await setting('global_changes/max_write_delay')} ms` : '';
  console.log(`\nCouch: ${kind} at ${couchUrl.replace(/\/\/[^@]*@/, '//')}${settings}; ${HOT} users with ${RECORDS + 100} records; ${SECONDS} s per measurement, gateway and raw alternating in ${ROUNDS} rounds`);
  console.log(`CPU ms per request: gw = the gateway process; couch(g), couch(r) = the Couch process on the gateway and the raw side; bench(g), bench(r) = this load generator`);
  console.log(
    `${'path'.padEnd(44)} ${'users'.padStart(6)} ${'conc'.padStart(4)} ${'gateway/s'.padStart(9)} ${'raw/s'.padStart(9)} ${'g/r'.padStart(7)}` +
      `   ${'gw'.padStart(6)} ${'couch(g)'.padStart(6)} ${'couch(r)'.padStart(6)} ${'bench(g)'.padStart(6)} ${'bench(r)'.padStart(6)}`,
  );
  let populated = HOT;
  for (const users of levels) {
    // Grow the node to `users` databases: the rest are small users with meta/global only.
    const filler = uids(users).slice(populated);
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (const uid of filler.filter((_, i) => i % 8 === w)) await store.put(String(uid), 'meta', { id: 'global', payload: 'meta' }, {});
      }),
    );
    populated = Math.max(populated, users);
    const all = uids(users);
    const hot = uids(HOT);
    const pick = (list: number[], c: number, n: number) => list[(c + n * 7919) % list.length] as number;
    // Steady state, not warm-up: every user is touched once through the gateway (its caches:
    // registry placement, design version, record index) and raw before anything is timed.
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (const uid of all.filter((_, i) => i % 16 === w)) {
          await expect(client(uid).get('/info/collections'), 200);
          await raw(uid).get('state');
        }
      }),
    );
    if (users === levels[0]) {
      // The gateway's hot code optimised before the first measurement, not during it (the
      // first path measured read up to 1.9 ms of gateway CPU per request, the same path
      // later 0.9-1.0).
      let w = 0;
      await rate((c) => (w++ % 2 ? expect(client(pick(all, c, w)).get('/storage/meta/global'), 200) : expect(client(pick(all, c, w)).get('/info/collections'), 200)), 16, 5, 1);
    }
    console.log(
      `(${users} user databases on the node, each touched once; resident memory: gateway ${rss(child.pid)}, Couch ${rss(own?.pid)}; Couch open files ${openFiles(own?.pid)}; ` +
        `on disk: node ${own ? mb(await du(own.dir)) : '?'}, a user with ${RECORDS + 100} records ${await dbFile(couch, hot[0] as number)}, one with meta/global only ${await dbFile(couch, all[all.length - 1] as number)})`,
    );
    for (const concurrency of [16, 64]) {
      let n = 0;
      const spread = (c: number) => pick(all, c, n++);
      const storage = new Map<number, string>();
      for (const uid of all.slice(0, 200)) storage.set(uid, (await client(uid).get('/info/collections')).header('x-last-modified') as string);
      await measure('GET info/collections', users, concurrency, (c) => expect(client(spread(c)).get('/info/collections'), 200), (c) => raw(spread(c)).get('state', READ));
      const known = all.slice(0, 200);
      await measure('GET info/collections, 304', users, concurrency, async (c) => {
        const uid = pick(known, c, n++);
        const res = await client(uid).get('/info/collections', { 'X-If-Modified-Since': storage.get(uid) as string });
        // The raw side's writes go to Couch behind the gateway's back, as another gateway's
        // do: the gateway learns of them from _db_updates, which can lag by seconds under this
        // load, so the snapshot above may predate one. Then the answer is rightly 200, once.
        if (res.status === 200) {
          storage.set(uid, res.header('x-last-modified') as string);
          return res;
        }
        return expect(Promise.resolve(res), 304);
      }, (c) => raw(pick(known, c, n++)).get('state', READ));
      await measure('GET storage/meta/global', users, concurrency, (c) => expect(client(spread(c)).get('/storage/meta/global'), 200), async (c) => {
        const db = raw(spread(c));
        await db.get('state', READ);
        return db.get('r:meta:global', READ);
      });
      const hotOf = (c: number) => hot[c % HOT] as number;
      await measure('GET storage/history?newer=&full=1&limit=100', users, concurrency, (c) => {
        const uid = hotOf(c);
        return expect(client(uid).get(`/storage/history?newer=${(cutoff.get(uid)! / 1000).toFixed(2)}&full=1&limit=100`), 200);
      }, async (c) => {
        const uid = hotOf(c);
        const db = raw(uid);
        await db.get('state', READ);
        return db.fetch({ keys: newest.get(uid)!.map((id) => `r:history:${id}`) }, READ);
      });
      const tabs = Array.from({ length: 100 }, (_, j) => ({ id: `t${j}`, payload: 'z'.repeat(450) }));
      await measure('POST storage/tabs (100 records)', users, concurrency, (c) => expect(client(hotOf(c)).post('/storage/tabs', tabs), 200), (c) => rawPost(raw(hotOf(c)), tabs));
      await measure('batch: 3 POSTs and a commit', users, concurrency, async (c) => {
        const u = client(hotOf(c));
        const open = await expect(u.post('/storage/forms?batch=true', tabs.slice(0, 30)), 202);
        const id = JSON.parse(open.text).batch as string;
        await expect(u.post(`/storage/forms?batch=${id}`, tabs.slice(30, 60)), 202);
        await expect(u.post(`/storage/forms?batch=${id}`, tabs.slice(60, 90)), 202);
        return expect(u.post(`/storage/forms?batch=${id}&commit=true`, tabs.slice(90)), 200);
      }, (c) => rawBatch(raw(hotOf(c)), tabs));
    }
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await store.close();
  await own?.stop();
  await rm(dir, { recursive: true, force: true });

  // How cost grows with users: the same path at the smallest and largest level, concurrency 16.
  const first = levels[0] as number;
  const last = levels[levels.length - 1] as number;
  for (const path of [...new Set(rows.map((r) => r.path))]) {
    const a = rows.find((r) => r.path === path && r.users === first && r.concurrency === 16);
    const b = rows.find((r) => r.path === path && r.users === last && r.concurrency === 16);
    if (a && b) console.log(`${path}: ${first} -> ${last} users: gateway ${(b.gateway / a.gateway).toFixed(2)}x, raw ${(b.raw / a.raw).toFixed(2)}x the throughput`);
  }
  return Math.max(...rows.map((r) => r.raw / r.gateway));
}

// The raw writes' leases are long: at 64 connections one raw batch takes seconds, and a
// gateway that found a short one expired would roll the raw write forward itself.

/** What a non-batch POST costs in Couch calls under syncgate's model (user-db.ts commit). */
async function rawPost(db: nano.DocumentScope<any>, records: Array<{ id: string; payload: string }>): Promise<void> {
  const state = await db.get('state', READ);
  const ids = records.map((r) => `r:tabs:${r.id}`);
  const existing = await db.fetch({ keys: ids }, READ);
  const revs = new Map(existing.rows.flatMap((r: any) => (r.doc ? [[r.id, r.doc._rev]] : [])));
  const T = Math.max(Date.now() - (Date.now() % 10), state.storage + 10);
  const claimed = await db.insert({ ...state, pending: { T, collection: 'tabs', owner: 'raw', lease: Date.now() + 600_000, op: { kind: 'write', records } } });
  await db.bulk({
    docs: records.map((r) => ({ _id: `r:tabs:${r.id}`, _rev: revs.get(`r:tabs:${r.id}`), c: 'tabs', i: r.id, w: T, m: T, p: r.payload, n: r.payload.length })),
  });
  await db.insert({ ...state, _rev: claimed.rev, pending: null, storage: T, collections: { ...state.collections, tabs: T } });
}

/** A batch of three POSTs and a commit, as the Couch calls syncgate makes for it. */
async function rawBatch(db: nano.DocumentScope<any>, records: Array<{ id: string; payload: string }>): Promise<void> {
  const id = randomBytes(16).toString('base64url');
  const parts = [records.slice(0, 30), records.slice(30, 60), records.slice(60, 90), records.slice(90)];
  let state = await db.get('state', READ);
  await db.insert({ _id: `q:${id}:000000`, records: parts[0] });
  let batch = await db.insert({ _id: `b:${id}`, collection: 'forms', created: state.storage + 10, expires: Date.now() + 7200000, chunks: 1, records: 30, bytes: 0 });
  for (const n of [1, 2, 3]) {
    state = await db.get('state', READ);
    const doc = await db.get(`b:${id}`, READ);
    batch = await db.insert({ ...doc, _rev: batch.rev, chunks: n + 1 });
    await db.insert({ _id: `q:${id}:00000${n}`, records: parts[n] });
  }
  const T = Math.max(Date.now() - (Date.now() % 10), state.storage + 10);
  const claimed = await db.insert({ ...state, pending: { T, collection: 'forms', owner: 'raw', lease: Date.now() + 600_000, op: { kind: 'commit', batch: id } } });
  await db.get(`b:${id}`, READ);
  const chunks = await db.list({ startkey: `q:${id}:`, endkey: `q:${id}:\uffff`, include_docs: true, conflicts: true });
  const ids = records.map((r) => `r:forms:${r.id}`);
  const existing = await db.fetch({ keys: ids }, READ);
  const revs = new Map(existing.rows.flatMap((r: any) => (r.doc ? [[r.id, r.doc._rev]] : [])));
  await db.bulk({ docs: records.map((r) => ({ _id: `r:forms:${r.id}`, _rev: revs.get(`r:forms:${r.id}`), c: 'forms', i: r.id, w: T, m: T, p: r.payload, n: 450 })) });
  await db.bulk({ docs: chunks.rows.map((r: any) => ({ _id: r.id, _rev: r.value.rev, _deleted: true })) });
  await db.destroy(`b:${id}`, batch.rev);
  await db.insert({ ...state, _rev: claimed.rev, pending: null, storage: T, collections: { ...state.collections, forms: T } });
}
