// Devices that keep syncing while their user is moved (test/federation/user-move*.test.ts): a
// writer that uploads one new record after another and remembers what was acknowledged, and a
// reader that syncs incrementally (`newer=` its last sync) and remembers every record it saw.
// Each goes through whichever gateway is alive, as a device behind a load balancer would.
import assert from 'node:assert/strict';
import { userDbName } from '../../storage/db-name.js';
import type { SyncClient } from './client.js';
import { basicAuth, type CouchNode } from './couch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DeviceLoad {
  /** Ids whose upload was answered 200. */
  acked: Set<string>;
  /** Ids whose upload was once answered 503 (sent again: a reader may see them twice). */
  retried: Set<string>;
  /** Every record the reader listed, and those it listed more than once. */
  seen: Set<string>;
  duplicates: string[];
  /** Answers that are neither 200 nor 503 (with Retry-After). */
  errors: string[];
  /** Each stretch of time the writer was refused with 503, in ms. */
  refusals: number[];
  stop(): Promise<void>;
}

/** Starts a writer and a reader for one user; `clients()` gives the gateways alive now. */
export function syncWithoutPause(clients: () => SyncClient[], collection = 'history'): DeviceLoad {
  const load: DeviceLoad = { acked: new Set(), retried: new Set(), seen: new Set(), duplicates: [], errors: [], refusals: [], stop: async () => {} };
  let stopped = false;
  let turn = 0;
  const next = () => {
    const all = clients();
    return all[turn++ % all.length] as SyncClient;
  };
  const writer = (async () => {
    let n = 0;
    let refusedSince: number | undefined;
    while (!stopped) {
      const id = `w${String(n).padStart(5, '0')}`;
      let res;
      try {
        res = await next().post(`/storage/${collection}`, [{ id, payload: `payload ${n}` }]);
      } catch {
        await sleep(50); // that gateway is gone: the next one
        continue;
      }
      if (res.status === 200) {
        if (!(res.json().success as string[]).includes(id)) load.errors.push(`200 without ${id}: ${res.text}`);
        load.acked.add(id);
        n++;
        if (refusedSince !== undefined) load.refusals.push(Date.now() - refusedSince);
        refusedSince = undefined;
      } else if (res.status === 503 && res.header('retry-after')) {
        refusedSince ??= Date.now();
        load.retried.add(id);
        await sleep(100);
      } else {
        load.errors.push(`POST ${id}: ${res.status} ${res.text}`);
        await sleep(100);
      }
      await sleep(20);
    }
    if (refusedSince !== undefined) load.refusals.push(Date.now() - refusedSince);
  })();
  let last = '0';
  /** One incremental sync; false when no gateway answered it. */
  const sync = async (): Promise<boolean> => {
    let res;
    try {
      res = await next().get(`/storage/${collection}?full=1&newer=${last}`);
    } catch {
      return false;
    }
    if (res.status === 503 && res.header('retry-after')) return false;
    if (res.status !== 200) {
      load.errors.push(`GET newer=${last}: ${res.status} ${res.text}`);
      return false;
    }
    for (const r of res.json() as Array<{ id: string }>) {
      if (load.seen.has(r.id)) load.duplicates.push(r.id);
      load.seen.add(r.id);
    }
    last = res.header('x-last-modified') ?? last;
    return true;
  };
  const reader = (async () => {
    while (!stopped) {
      await sleep(200);
      await sync();
    }
  })();
  load.stop = async () => {
    stopped = true;
    await Promise.all([writer, reader]);
    // The device's sync after the last upload.
    for (let i = 0; i < 100 && !(await sync()); i++) await sleep(200);
  };
  return load;
}

/** Median and maximum of a list of numbers (0 for none). */
export function medianMax(xs: number[]): { median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : 0, max: s.at(-1) ?? 0 };
}

/** The ids of the collection's records in a user database, read from the node's Couch itself. */
export async function recordsOnNode(node: CouchNode, uid: number, collection: string): Promise<Set<string>> {
  const url = new URL(node.url);
  const prefix = `r:${collection}:`;
  const qs = new URLSearchParams({ startkey: JSON.stringify(prefix), endkey: JSON.stringify(`${prefix}\ufff0`) });
  const res = await fetch(`${url.origin}/${userDbName(String(uid))}/_all_docs?${qs}`, { headers: { Authorization: basicAuth(url) } });
  assert.equal(res.status, 200, `${userDbName(String(uid))} on ${url.port}: ${res.status}`);
  const rows = ((await res.json()) as { rows: Array<{ id: string }> }).rows;
  return new Set(rows.map((r) => r.id.slice(prefix.length)));
}

export async function dbExists(node: CouchNode, uid: number): Promise<boolean> {
  const url = new URL(node.url);
  const res = await fetch(`${url.origin}/${userDbName(String(uid))}`, { method: 'HEAD', headers: { Authorization: basicAuth(url) } });
  return res.status === 200;
}

