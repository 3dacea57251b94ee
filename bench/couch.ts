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
import { startCouchNode, type CouchNode } from '../test/support/couch.js';
import type { ChildProcess } from 'node:child_process';
import { spawnBenchGateway } from './gateway-process.js';
import type { SyncStore } from '../storage/engine/sync-store.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
// BENCH_GATEWAYS: gateway processes per level. One process's luck (JIT decisions, heap layout)
// moved a level's gateway rate by 10% between runs of the same code; the rounds rotate
// through several, so that no single process is the verdict.
const GATEWAYS = Number(process.env.BENCH_GATEWAYS ?? 3);
const ROUNDS = 2 * GATEWAYS;
// BENCH_CONCURRENCY: the numbers of connections each path is measured at.
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '16,64').split(',').map(Number);
const HOT = 64; // users with 1,100 records each: one per connection at concurrency 64
const RECORDS = 1000;

interface Row {
  path: string;
  users: number;
  concurrency: number;
  gateway: number;
  raw: number;
  /** Per round, in the order measured (every level's round r ran within the same minute). */
  gatewayRounds: number[];
  rawRounds: number[];
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
 * One side of a comparison: its operation, and the processes whose CPU it is charged. A side
 * with several (one per gateway process of a level) uses them in turn, a round each.
 */
interface Side {
  ops: Op[];
  pids: Pids[];
  /** Index of its level in compare()'s `levels`. */
  level: number;
}
interface Measured {
  rate: number;
  cpu: Cpu;
  /** The rate of each round, for ratios taken within a round. */
  rounds: number[];
}

/**
 * Every side in turn, in rounds: the gateway and raw of each level alternate, and the levels
 * with each other, so drift of the machine (caches, compaction, other load) falls on all alike
 * instead of on whichever ran first.
 */
async function compare(sides: Side[], concurrency: number, levels: number[][]): Promise<Measured[]> {
  const focus = pauser(levels);
  try {
    return await measureRounds(sides, concurrency, focus);
  } finally {
    await focus(undefined);
  }
}

/**
 * While one level is measured the processes of the others (their node and gateways) are
 * stopped (SIGSTOP), so that their background work does not fall on it: in a full run with
 * every level running, a Couch compacting or a gateway's purge sweep of another level was
 * charged to whichever side met it (GET storage/meta/global at 10,000 users measured g/r 1.53
 * and 2.93 ms of gateway CPU per request; alone on the machine, 0.86 and 1.29 ms).
 */
function pauser(levels: number[][]): (level: number | undefined) => Promise<void> {
  let current: number | undefined;
  const signal = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
    }
  };
  return async (level) => {
    if (levels.length < 2 || level === current) return;
    current = level;
    for (const [i, pids] of levels.entries()) signal(pids, level === undefined || i === level ? 'SIGCONT' : 'SIGSTOP');
    // What piled up while the level was stopped (timers, a health check) runs before measuring.
    if (level !== undefined) await new Promise((r) => setTimeout(r, 250));
  };
}

async function measureRounds(sides: Side[], concurrency: number, focus: (level: number) => Promise<void>): Promise<Measured[]> {
  // Unmeasured: each side's code is optimised and its caches hot before the first round.
  for (const side of sides) {
    await focus(side.level);
    for (const op of side.ops) await rate(op, concurrency, 1, 1);
  }
  const sums = sides.map(() => ({ done: 0, ms: 0, cpu: { gateway: 0, couch: 0, bench: 0 } as Cpu, rounds: [] as number[] }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, side] of sides.entries()) {
      await focus(side.level);
      const sum = sums[i]!;
      const pids = side.pids[round % side.pids.length]!;
      const before = cpuNow(pids);
      const one = await rate(side.ops[round % side.ops.length]!, concurrency, SECONDS / ROUNDS);
      const after = cpuNow(pids);
      sum.done += one.done;
      sum.ms += one.ms;
      sum.rounds.push((one.done * 1000) / one.ms);
      for (const k of ['gateway', 'couch', 'bench'] as const) sum.cpu[k] += after[k] - before[k];
    }
  }
  return sums.map((s) => ({
    rate: (s.done * 1000) / s.ms,
    cpu: { gateway: s.cpu.gateway / s.done, couch: s.cpu.couch / s.done, bench: s.cpu.bench / s.done },
    rounds: s.rounds,
  }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

// Every read of the gateway asks for _conflicts (replication may bring some), so the raw
// calls do too: the same requests, on the same documents.
const READ = { conflicts: true };

const expect = async <R extends { status: number; text: string }>(p: Promise<R>, status: number): Promise<R> => {
  const r = await p;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text.slice(0, 100)}`);
  return r;
};

/** One gateway process of a level, and a Hawk client per user of it. */
interface LevelGateway {
  child: ChildProcess;
  stop(): Promise<void>;
  pids: Pids;
  client(uid: number): LeanSyncClient;
}

/**
 * A level of the benchmark: a Couch node holding `users` user databases (HOT of them busy, the
 * rest with meta/global only), GATEWAYS gateway processes in front of it, and the data both
 * sides read.
 */
interface Level {
  users: number;
  node: CouchNode | undefined;
  couch: nano.ServerScope;
  gateways: LevelGateway[];
  store: SyncStore;
  dir: string;
  all: number[];
  hot: number[];
  /** A hot user's storage timestamp before its newest 100 records, and their ids. */
  cutoff: Map<number, number>;
  newest: Map<number, string[]>;
  raw(uid: number): nano.DocumentScope<any>;
}

const inParallel = (workers: number, items: number[], work: (item: number) => Promise<unknown>) =>
  Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (const item of items.filter((_, i) => i % workers === w)) await work(item);
    }),
  );

/** The processes of a level that the bench started: its node and its gateways. */
const levelPids = (l: Level): number[] => [l.node?.pid, ...l.gateways.map((g) => g.child.pid)].filter((p): p is number => p !== undefined);

const pick = (list: number[], c: number, n: number) => list[(c + n * 7919) % list.length] as number;

/** Starts a level's node (unless COUCH_URL names one) and gateway, and fills the node. */
async function prepareLevel(users: number, inMemory: boolean): Promise<Level> {
  const node = process.env.COUCH_URL ? undefined : await startCouchNode({ inMemory });
  const couchUrl = process.env.COUCH_URL ?? node!.url;
  const couch = nano(couchUrl);
  // BENCH_COUCH_CONFIG: CouchDB settings for the run, e.g. "couchdb/max_dbs_open=5000,global_changes/max_write_delay=500".
  for (const setting of process.env.BENCH_COUCH_CONFIG?.split(',').filter(Boolean) ?? []) {
    const [key, value] = setting.split('=') as [string, string];
    await couch.relax({ method: 'put', path: `_node/_local/_config/${key}`, body: value });
  }
  const secret = randomBytes(24).toString('hex');
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-bench-'));
  const base = randomInt(1_000_000, 1_000_000_000); // fresh uids, also on a Couch that keeps data
  const all = Array.from({ length: users }, (_, i) => base + i);
  const hot = all.slice(0, HOT);

  // Data, written through the store (the same documents a gateway writes).
  const store = createStore(loadConfig({ SYNCGATE_DATA: dir, COUCH_URL: couchUrl, SYNCGATE_MAX_OPEN_USERS: '100' }));
  await store.start();
  const cutoff = new Map<number, number>();
  const newest = new Map<number, string[]>();
  await inParallel(8, hot, async (uid) => {
    await store.put(String(uid), 'meta', { id: 'global', payload: 'meta' }, {});
    for (let i = 0; i < RECORDS; i += 100) {
      const records = Array.from({ length: 100 }, (_, j) => ({ id: `h${i + j}`, payload: 'x'.repeat(450) }));
      await store.post(String(uid), 'history', { records, failed: {} }, {});
    }
    cutoff.set(uid, (await store.info(String(uid), {})).storage);
    const records = Array.from({ length: 100 }, (_, j) => ({ id: `n${j}`, payload: 'y'.repeat(450) }));
    await store.post(String(uid), 'history', { records, failed: {} }, {});
    newest.set(uid, records.map((r) => r.id));
  });
  await inParallel(8, all.slice(HOT), (uid) => store.put(String(uid), 'meta', { id: 'global', payload: 'meta' }, {}));

  const gateways: LevelGateway[] = [];
  for (let g = 0; g < GATEWAYS; g++) {
    const gw = await spawnBenchGateway({
      SYNCGATE_DATA: join(dir, `gateway-${g}`),
      SYNC_MASTER_SECRET: secret,
      COUCH_URL: couchUrl,
      SYNCGATE_MAX_OPEN_USERS: '20000',
      SYNCGATE_BACKOFF_INFLIGHT: '0',
      SYNCGATE_MAX_INFLIGHT: '0',
      SYNCGATE_MAX_CONCURRENT: '0',
    });
    const clients = new Map<number, LeanSyncClient>();
    gateways.push({
      child: gw.child,
      stop: gw.stop,
      pids: { gateway: gw.child.pid, couch: node?.pid },
      client(uid) {
        let c = clients.get(uid);
        if (!c) {
          const t = makeToken(secret, { uid, node: gw.url, expires: Math.floor(Date.now() / 1000) + 86400 });
          clients.set(uid, (c = new LeanSyncClient({ id: t.id, key: t.key, api_endpoint: `${gw.url}/1.5/${uid}` })));
        }
        return c;
      },
    });
  }
  const level: Level = { users, node, couch, gateways, store, dir, all, hot, cutoff, newest, raw: (uid) => couch.use<any>(userDbName(String(uid))) };
  // Steady state, not warm-up: every user is touched once through each gateway (its caches:
  // registry placement, design version, record index) and raw before anything is timed.
  await inParallel(16, all, async (uid) => {
    for (const g of gateways) await expect(g.client(uid).get('/info/collections'), 200);
    await level.raw(uid).get('state');
  });
  // The gateways' hot code optimised before the first measurement, not during it (the first
  // path measured read up to 1.9 ms of gateway CPU per request, the same path later 0.9-1.0).
  for (const g of gateways) {
    let w = 0;
    await rate((c) => (w++ % 2 ? expect(g.client(pick(all, c, w)).get('/storage/meta/global'), 200) : expect(g.client(pick(all, c, w)).get('/info/collections'), 200)), 16, 5, 1);
  }
  return level;
}

/** What a level's processes hold: printed after it is filled and again after the run. */
async function describeLevel(l: Level, when: string): Promise<string> {
  return (
    `(${l.users} user databases on the node, ${when}; resident memory: gateways ${l.gateways.map((g) => rss(g.child.pid)).join(', ')}, Couch ${rss(l.node?.pid)}; Couch open files ${openFiles(l.node?.pid)}; ` +
    `on disk: node ${l.node ? mb(await du(l.node.dir)) : '?'}, a user with ${RECORDS + 100} records ${await dbFile(l.couch, l.hot[0] as number)}, one with meta/global only ${await dbFile(l.couch, l.all[l.all.length - 1] as number)})`
  );
}

async function stopLevel(l: Level): Promise<void> {
  for (const g of l.gateways) await g.stop();
  await l.store.close();
  await l.node?.stop();
  await rm(l.dir, { recursive: true, force: true });
}

/** A hot path as both sides call it, on one level through one of its gateways; `n` spreads the requests over its users. */
interface Path {
  name: string;
  /** Before each measurement of the path (the 304's snapshot of the users' timestamps). */
  before?: () => Promise<void>;
  gateway: Op;
  raw: Op;
}

function paths(l: Level, g: LevelGateway): Path[] {
  let n = 0;
  const spread = (c: number) => pick(l.all, c, n++);
  const hotOf = (c: number) => l.hot[c % HOT] as number;
  // As many users at every level: the raw side's reads of 200 databases contended less in
  // Couch than of 100, which made raw faster at 10,000 users and the gateway look slower.
  const known = l.all.slice(0, 100);
  const storage = new Map<number, string>();
  const tabs = Array.from({ length: 100 }, (_, j) => ({ id: `t${j}`, payload: 'z'.repeat(450) }));
  return [
    { name: 'GET info/collections', gateway: (c) => expect(g.client(spread(c)).get('/info/collections'), 200), raw: (c) => l.raw(spread(c)).get('state', READ) },
    {
      name: 'GET info/collections, 304',
      before: async () => {
        for (const uid of known) storage.set(uid, (await g.client(uid).get('/info/collections')).header('x-last-modified') as string);
      },
      gateway: async (c) => {
        const uid = pick(known, c, n++);
        const res = await g.client(uid).get('/info/collections', { 'X-If-Modified-Since': storage.get(uid) as string });
        // The raw side's writes go to Couch behind the gateway's back, as another gateway's
        // do: the gateway learns of them from _db_updates, which can lag by seconds under this
        // load, so the snapshot above may predate one. Then the answer is rightly 200, once.
        if (res.status === 200) {
          storage.set(uid, res.header('x-last-modified') as string);
          return res;
        }
        return expect(Promise.resolve(res), 304);
      },
      raw: (c) => l.raw(pick(known, c, n++)).get('state', READ),
    },
    {
      name: 'GET storage/meta/global',
      gateway: (c) => expect(g.client(spread(c)).get('/storage/meta/global'), 200),
      raw: async (c) => {
        const db = l.raw(spread(c));
        await db.get('state', READ);
        return db.get('r:meta:global', READ);
      },
    },
    {
      name: 'GET storage/history?newer=&full=1&limit=100',
      gateway: (c) => {
        const uid = hotOf(c);
        return expect(g.client(uid).get(`/storage/history?newer=${(l.cutoff.get(uid)! / 1000).toFixed(2)}&full=1&limit=100`), 200);
      },
      raw: async (c) => {
        const uid = hotOf(c);
        const db = l.raw(uid);
        await db.get('state', READ);
        return db.fetch({ keys: l.newest.get(uid)!.map((id) => `r:history:${id}`) }, READ);
      },
    },
    { name: 'POST storage/tabs (100 records)', gateway: (c) => expect(g.client(hotOf(c)).post('/storage/tabs', tabs), 200), raw: (c) => rawPost(l.raw(hotOf(c)), tabs) },
    {
      name: 'batch: 3 POSTs and a commit',
      gateway: async (c) => {
        const u = g.client(hotOf(c));
        const open = await expect(u.post('/storage/forms?batch=true', tabs.slice(0, 30)), 202);
        const id = JSON.parse(open.text).batch as string;
        await expect(u.post(`/storage/forms?batch=${id}`, tabs.slice(30, 60)), 202);
        await expect(u.post(`/storage/forms?batch=${id}`, tabs.slice(60, 90)), 202);
        return expect(u.post(`/storage/forms?batch=${id}&commit=true`, tabs.slice(90)), 200);
      },
      raw: (c) => rawBatch(l.raw(hotOf(c)), tabs),
    },
  ];
}

export async function benchCouch(): Promise<number> {
  // BENCH_USERS: the numbers of user databases on a node. Without COUCH_URL each level has a
  // node of its own: an Apache CouchDB from COUCHDB_HOME when it is set, otherwise a
  // pouchdb-server on disk (leveldb); and all levels are measured together, their rounds
  // interleaved. pouchdb-server never closes a database and each open one holds four file
  // descriptors, so past 4,000 users it would exceed this machine's hard limit of 20,000:
  // those runs put the nodes in memory (memdown), all levels alike, so that the levels stay
  // comparable. BENCH_COUCH=disk|memory overrides. With COUCH_URL the levels share that node
  // and are measured one after another.
  const levels = (process.env.BENCH_USERS ?? '100,1000').split(',').map(Number);
  const inMemory = (process.env.BENCH_COUCH ?? (Math.max(...levels) > 4000 ? 'memory' : 'disk')) === 'memory';
  const groups = process.env.COUCH_URL ? levels.map((users) => [users]) : [levels];
  const kind = process.env.COUCH_URL ? 'COUCH_URL' : process.env.COUCHDB_HOME ? `Apache CouchDB from ${process.env.COUCHDB_HOME}` : `pouchdb-server ${inMemory ? 'in memory' : 'on disk (leveldb)'}`;
  // BENCH_PATHS: only the paths whose name contains one of these (comma-separated).
  const only = process.env.BENCH_PATHS?.split(',');
  const rows: Row[] = [];
  let header = false;
  for (const group of groups) {
    const prepared: Level[] = [];
    for (const users of group) prepared.push(await prepareLevel(users, inMemory));
    if (!header) {
      const couch = prepared[0]!.couch;
      const setting = (key: string) => couch.relax({ path: `_node/_local/_config/${key}` }).then(String, () => 'default');
      const settings = process.env.COUCHDB_HOME || process.env.COUCH_URL ? `; max_dbs_open ${await setting('couchdb/max_dbs_open')}, global_changes max_write_delay ${await setting('global_changes/max_write_delay')} ms` : '';
      const nodes = groups.length === 1 ? `a node and a gateway per level, the levels' rounds interleaved` : `one node at ${process.env.COUCH_URL!.replace(/\/\/[^@]*@/, '//')}, the levels one after another`;
      console.log(`\nCouch: ${kind}${settings}; ${nodes}; ${HOT} busy users with ${RECORDS + 100} records per level; ${SECONDS} s per measurement, in ${ROUNDS} rounds`);
      console.log(`CPU ms per request: gw = the gateway process; couch(g), couch(r) = the Couch process on the gateway and the raw side; bench(g), bench(r) = this load generator`);
      header = true;
    }
    for (const l of prepared) console.log(await describeLevel(l, 'each touched once'));
    console.log(
      `${'path'.padEnd(44)} ${'users'.padStart(6)} ${'conc'.padStart(4)} ${'gateway/s'.padStart(9)} ${'raw/s'.padStart(9)} ${'g/r'.padStart(7)}` +
        `   ${'gw'.padStart(6)} ${'couch(g)'.padStart(6)} ${'couch(r)'.padStart(6)} ${'bench(g)'.padStart(6)} ${'bench(r)'.padStart(6)}`,
    );
    for (const concurrency of CONCURRENCY) {
      // [level][gateway][path]
      const perLevel = prepared.map((l) => l.gateways.map((g) => paths(l, g)));
      for (const [i, { name }] of perLevel[0]![0]!.entries()) {
        if (only && !only.some((p) => name.includes(p))) continue;
        const these = perLevel.map((gs) => gs.map((ps) => ps[i]!));
        for (const ps of these) for (const p of ps) await p.before?.();
        const sides: Side[] = these.flatMap((ps, j) => [
          { ops: ps.map((p) => p.gateway), pids: prepared[j]!.gateways.map((g) => g.pids), level: j },
          { ops: [ps[0]!.raw], pids: [{ gateway: undefined, couch: prepared[j]!.node?.pid }], level: j },
        ]);
        const from = process.hrtime.bigint() / 1000n;
        const measured = await compare(sides, concurrency, prepared.map(levelPids));
        // Profiling the gateways (BENCH_GATEWAY_NODE_ARGS="--cpu-prof ..."): the window of this
        // path on the monotonic clock that a .cpuprofile's startTime and timeDeltas count in.
        if (process.env.BENCH_GATEWAY_NODE_ARGS) console.log(`  (${name}, ${concurrency}: monotonic µs ${from} to ${process.hrtime.bigint() / 1000n})`);
        for (const [j, l] of prepared.entries()) {
          const g = measured[2 * j]!;
          const r = measured[2 * j + 1]!;
          rows.push({ path: name, users: l.users, concurrency, gateway: g.rate, raw: r.rate, gatewayRounds: g.rounds, rawRounds: r.rounds });
          const ms = (x: number) => x.toFixed(2).padStart(6);
          console.log(
            `${name.padEnd(44)} ${String(l.users).padStart(6)} ${String(concurrency).padStart(4)} ${g.rate.toFixed(0).padStart(9)} ${r.rate.toFixed(0).padStart(9)} ${(r.rate / g.rate).toFixed(2).padStart(7)}` +
              `   ${ms(g.cpu.gateway)} ${ms(g.cpu.couch)} ${ms(r.cpu.couch)} ${ms(g.cpu.bench)} ${ms(r.cpu.bench)}`,
          );
        }
      }
    }
    for (const l of prepared) console.log(await describeLevel(l, 'after the run'));
    for (const l of prepared) await stopLevel(l);
  }

  // How cost grows with users: the same path at the smallest and largest level, concurrency 16.
  // Pooled over all rounds, and the median of the growth taken within each round: a round's
  // four measurements ran within a minute of each other, so a spell of the machine's (Couch
  // compacting, another process) moves all four alike instead of whichever level it met.
  const first = levels[0] as number;
  const last = levels[levels.length - 1] as number;
  for (const path of [...new Set(rows.map((r) => r.path))]) {
    const a = rows.find((r) => r.path === path && r.users === first && r.concurrency === 16);
    const b = rows.find((r) => r.path === path && r.users === last && r.concurrency === 16);
    if (a && b) {
      const growth = b.gateway / a.gateway / (b.raw / a.raw);
      const perRound = a.gatewayRounds.map((_, k) => b.gatewayRounds[k]! / a.gatewayRounds[k]! / (b.rawRounds[k]! / a.rawRounds[k]!));
      console.log(
        `${path}: ${first} -> ${last} users: gateway ${(b.gateway / a.gateway).toFixed(2)}x, raw ${(b.raw / a.raw).toFixed(2)}x the throughput; relative to raw ${growth.toFixed(2)}` +
          `, per round median ${median(perRound).toFixed(2)} (${perRound.map((x) => x.toFixed(2)).join(' ')})`,
      );
    }
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
