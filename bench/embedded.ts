// The embedded store's hot paths against the PouchDB calls a view-based design would make on
// the same data, in the same run. 16 concurrent clients, each syncing its own user (one device
// syncs sequentially; load spreads over users). Why listings come from an in-memory index.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../server/config.js';
import { createStore } from '../storage/create-store.js';
import { userDbName } from '../storage/db-name.js';
import { Shards } from '../storage/pouch/shards.js';

const USERS = 16;
const RECORDS = 1000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

/** Runs fn(user) in USERS closed loops, one per user, for SECONDS; returns operations/s. */
async function rate(name: string, fn: (user: number) => Promise<unknown>): Promise<number> {
  for (let u = 0; u < USERS; u++) await fn(u); // warm up (and build lazily built indexes)
  let done = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: USERS }, async (_, u) => {
      while (Date.now() < end) {
        await fn(u);
        done++;
      }
    }),
  );
  const perSec = done / SECONDS;
  console.log(`${name.padEnd(58)} ${perSec.toFixed(0).padStart(8)}/s`);
  return perSec;
}

export async function benchEmbedded(): Promise<void> {
const dir = await mkdtemp(join(tmpdir(), 'syncgate-bench-'));
const env = { SYNCGATE_DATA: dir, SYNCGATE_PURGE_INTERVAL: '3600' };
let store = createStore(loadConfig(env));
const cutoff: number[] = [];
const last: number[] = [];
for (let u = 0; u < USERS; u++) {
  for (let i = 0; i < RECORDS; i += 100) {
    const records = Array.from({ length: 100 }, (_, j) => ({ id: `r${i + j}`, payload: 'x'.repeat(450), sortindex: i + j }));
    const w = await store.post(String(u + 1), 'history', { records, failed: {} }, {});
    if (i === RECORDS - 200) cutoff[u] = w.modified; // the last 100 records are newer than this
  }
  last[u] = (await store.info(String(u + 1), {})).storage;
}
await store.close();

console.log(`${USERS} users x ${RECORDS} records of 450 bytes, one closed-loop client per user, ${SECONDS} s each\n`);
// The alternative design: a PouchDB map view by collection and modified time.
// The same databases the store wrote, opened as the store opens them (LevelDB shards).
const shards = new Shards(dir);
const pouches = await Promise.all(Array.from({ length: USERS }, (_, u) => shards.pouch(join(dir, 'users', userDbName(String(u + 1))))));
const byModified = `function (doc) { if (doc._id.indexOf('r:') === 0) emit([doc.c, doc.m, doc.i], null); }`;
for (const p of pouches) await p.put({ _id: '_design/bench', views: { by_modified: { map: byModified } } });
const t0 = Date.now();
await pouches[0]!.query('bench/by_modified', { limit: 1 });
console.log(`${'PouchDB view build, first query of one user'.padEnd(58)} ${String(Date.now() - t0).padStart(6)} ms`);
const viewNewer = (since: number[]) => (u: number) =>
  pouches[u]!.query('bench/by_modified', { startkey: ['history', since[u]! + 1], endkey: ['history', {}], limit: 100, include_docs: true });
const viewListing = await rate('view: newer= listing, full, limit 100 (100 rows)', viewNewer(cutoff));
const viewEmpty = await rate('view: newer= listing, nothing new', viewNewer(last));
const rawInfo = await rate('raw: get of the state document', (u) => pouches[u]!.get('state'));
const rawGet = await rate('raw: get of one record document', (u) => pouches[u]!.get('r:history:r500'));
for (const p of pouches) await p.close();
await shards.close();

store = createStore(loadConfig(env));
const list = (since: number[]) => (u: number) => store.list(String(u + 1), 'history', { full: true, newer: since[u]!, limit: 100 }, {});
const storeListing = await rate('store: newer= listing, full, limit 100 (100 rows)', list(cutoff));
const storeEmpty = await rate('store: newer= listing, nothing new', list(last));
const storeInfo = await rate('store: info/collections', (u) => store.info(String(u + 1), {}));
const storeGet = await rate('store: get one record', (u) => store.get(String(u + 1), 'history', 'r500', {}));
await store.close();
await rm(dir, { recursive: true, force: true });

console.log('');
console.log(`store/view ratio, newer= listing (100 rows):  ${(storeListing / viewListing).toFixed(1)}x faster`);
console.log(`store/view ratio, newer= listing (0 rows):    ${(storeEmpty / viewEmpty).toFixed(1)}x faster`);
console.log(`store/raw ratio, info/collections:            ${(storeInfo / rawInfo).toFixed(2)}`);
console.log(`store/raw ratio, get one record:              ${(storeGet / rawGet).toFixed(2)}`);
}
