// Replication between nodes: how many active users one gateway keeps replicated to a second
// node (lag from acknowledged write to replica, p50/p99, at growing numbers of users writing),
// and what synchronous mode costs (writes through the gateway to a synchronous operator's node
// against an asynchronous one, same machine, same run).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyIdOf, LocalAccounts } from '../server/tokenserver/local-accounts.js';
import { SyncClient } from '../test/support/client.js';
import { freePort, startCouchNode, basicAuth } from '../test/support/couch.js';
import { credentialsOf, requestToken } from '../test/support/tokens.js';
import { cpuMs } from './proc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const DELAY_MS = 1000;
const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stats {
  replication: { queued: number; running: number; completed: number; failed: number; lagMs: { p50: number; p99: number; max: number; samples: number } };
}

export async function benchReplication(): Promise<void> {
  const levels = (process.env.BENCH_REPLICATION_USERS ?? '20,100,300').split(',').map(Number);
  const [p, q, r] = await Promise.all([startCouchNode(), startCouchNode(), startCouchNode()]);
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-bench-repl-'));
  const port = await freePort();
  const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/syncgate.js', import.meta.url)), 'serve'], {
    env: {
      ...process.env,
      COUCH_URL: '',
      SYNCGATE_DATA: dir,
      HOST: '127.0.0.1',
      PORT: String(port),
      SYNCGATE_ADMIN_TOKEN: ADMIN,
      SYNCGATE_FXA: 'false',
      SYNCGATE_MAX_OPEN_USERS: '20000',
      SYNCGATE_BACKOFF_INFLIGHT: '0',
      SYNCGATE_MAX_INFLIGHT: '0',
      SYNCGATE_MAX_CONCURRENT: '0',
      SYNCGATE_REPLICATION_DELAY_MS: String(DELAY_MS),
    },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; !(await fetch(`${url}/__lbheartbeat__`).then((x) => x.ok, () => false)); i++) {
      if (child.exitCode !== null || i > 300) throw new Error('the gateway did not start');
      await sleep(100);
    }
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}/__admin__${path}`, {
        method,
        headers: { Authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    await admin('POST', '/operators', { name: 'async-op' });
    await admin('POST', '/operators', { name: 'replica-op' });
    await admin('POST', '/operators', { name: 'sync-op', synchronous: true });
    // Primaries on p (asynchronous) or r (synchronous), every replica on q.
    await admin('POST', '/nodes', { name: 'p', operator: 'async-op', url: p.url, capacity: 100_000, weight: 1000 });
    await admin('POST', '/nodes', { name: 'q', operator: 'replica-op', url: q.url, capacity: 100_000 });
    await admin('POST', '/nodes/default/drain');
    const accounts = new LocalAccounts(dir);
    const newUsers = async (n: number): Promise<SyncClient[]> => {
      const out: SyncClient[] = [];
      for (let i = 0; i < n; i++) {
        const acct = await accounts.create(`bench-${randomBytes(6).toString('hex')}@example.com`);
        const res = await requestToken(url, { bearer: await accounts.bearer(acct, 86400), keyId: keyIdOf(acct) });
        if (res.status !== 200) throw new Error(`token: ${res.status} ${res.text}`);
        out.push(new SyncClient(credentialsOf(res)));
      }
      return out;
    };
    const feed = new FeedDelay(p.url);
    // A 503 (with Retry-After) is the gateway saying the nodes cannot keep up: counted, not fatal.
    let refused = 0;
    const post = async (c: SyncClient, n: number): Promise<boolean> => {
      const records = Array.from({ length: 10 }, (_, j) => ({ id: `r${n}-${j}`, payload: 'x'.repeat(300) }));
      const res = await c.post('/storage/history', records);
      if (res.status === 503 && res.header('retry-after')) {
        refused++;
        return false;
      }
      if (res.status !== 200) throw new Error(`POST answered ${res.status}`);
      feed.acknowledged(c.uid);
      return true;
    };

    const kind = process.env.COUCHDB_HOME ? 'Apache CouchDB nodes' : 'pouchdb-servers';
    const following = await feed.start();
    console.log(`\nReplication (one gateway, ${kind} on 127.0.0.1; delay ${DELAY_MS} ms; each active user POSTs 10 records every second for ${2 * SECONDS} s)`);
    console.log(
      following
        ? 'feed p50/p99: when the primary node\'s _db_updates reported each acknowledged write (what replication driven by the feed would start from; per-write scheduling starts at the acknowledgement)'
        : 'feed: the primary node offers no _db_updates (pouchdb-server)',
    );
    console.log('cpu p, cpu q: CPU ms of the primary node and of the replica node per acknowledged write (10 records), replication included; cpu gw: the gateway');
    console.log(
      `${'active users'.padStart(12)} ${'writes/s'.padStart(9)} ${'repl/s'.padStart(7)} ${'lag p50'.padStart(8)} ${'lag p99'.padStart(8)} ${'queued'.padStart(7)}  kept up ${'feed p50'.padStart(9)} ${'feed p99'.padStart(9)}` +
        ` ${'cpu p'.padStart(6)} ${'cpu q'.padStart(6)} ${'cpu gw'.padStart(6)} ${'503s'.padStart(5)}`,
    );
    const users: SyncClient[] = [];
    for (const level of levels) {
      users.push(...(await newUsers(level - users.length)));
      for (const u of users) await post(u, 0); // every user database exists on both nodes first
      await sleep(DELAY_MS * 3);
      await admin('POST', '/replication/reset');
      feed.reset();
      refused = 0;
      const cpu0 = [cpuMs(p.pid), cpuMs(q.pid), cpuMs(child.pid)];
      let writes = 0;
      const until = Date.now() + 2 * SECONDS * 1000;
      const t0 = Date.now();
      await Promise.all(
        users.map(async (u, i) => {
          await sleep((i * 1000) / users.length); // spread over the second
          for (let n = 1; Date.now() < until; n++) {
            const started = Date.now();
            if (await post(u, n)) writes++;
            await sleep(Math.max(0, 1000 - (Date.now() - started)));
          }
        }),
      );
      const ms = Date.now() - t0;
      const s = (await admin('GET', '/replication')) as Stats;
      // Replication of the last writes finishes after the writers stop: wait for it before reading CPU.
      for (let i = 0; i < 50; i++) {
        const now = (await admin('GET', '/replication')) as Stats;
        if (now.replication.queued + now.replication.running === 0) break;
        await sleep(100);
      }
      const perWrite = [cpuMs(p.pid), cpuMs(q.pid), cpuMs(child.pid)].map((c, i) => ((c - (cpu0[i] as number)) / Math.max(1, writes)).toFixed(1).padStart(6));
      const lag = s.replication.lagMs;
      // Kept up: nothing piling up, and the oldest acknowledged write waits little beyond the delay.
      const keptUp = s.replication.queued <= users.length / 10 + 1 && lag.p99 < DELAY_MS + 2000;
      console.log(
        `${String(users.length).padStart(12)} ${((writes * 1000) / ms).toFixed(0).padStart(9)} ${((s.replication.completed * 1000) / ms).toFixed(0).padStart(7)} ${String(lag.p50).padStart(8)} ${String(lag.p99).padStart(8)} ${String(s.replication.queued + s.replication.running).padStart(7)}  ${(keptUp ? 'yes' : 'no').padEnd(7)} ${feed.percentile(0.5).padStart(9)} ${feed.percentile(0.99).padStart(9)} ${perWrite.join(' ')} ${String(refused).padStart(5)}`,
      );
      await sleep(DELAY_MS * 3);
    }

    // Synchronous mode: the same closed-loop writers, on a synchronous node and an asynchronous one.
    await admin('POST', '/nodes', { name: 'r', operator: 'sync-op', url: r.url, capacity: 100_000, weight: 100_000 });
    await admin('POST', '/nodes/p/drain');
    const syncUsers = await newUsers(16);
    const asyncUsers = users.slice(0, 16);
    const closedLoop = async (clients: SyncClient[]) => {
      let done = 0;
      const until = Date.now() + SECONDS * 1000;
      const t0 = Date.now();
      await Promise.all(
        clients.map(async (c) => {
          for (let n = 1000; Date.now() < until; n++) {
            if (await post(c, n)) done++;
          }
        }),
      );
      return (done * 1000) / (Date.now() - t0);
    };
    await closedLoop(syncUsers); // warm
    const a1 = await closedLoop(asyncUsers);
    const s1 = await closedLoop(syncUsers);
    const a2 = await closedLoop(asyncUsers);
    const s2 = await closedLoop(syncUsers);
    const asyncRate = (a1 + a2) / 2;
    const syncRate = (s1 + s2) / 2;
    console.log(`POST of 10 records, 16 connections: asynchronous ${asyncRate.toFixed(0)}/s (${(16_000 / asyncRate).toFixed(0)} ms each), synchronous ${syncRate.toFixed(0)}/s (${(16_000 / syncRate).toFixed(0)} ms each): synchronous costs ${(asyncRate / syncRate).toFixed(2)}x`);
    feed.stop();
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => (child.exitCode !== null ? res(undefined) : child.once('exit', res)));
    await Promise.all([p.stop(), q.stop(), r.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Follows a node's _db_updates and times each acknowledged write until the feed reports its database. */
class FeedDelay {
  private readonly waiting = new Map<string, number[]>();
  private delays: number[] = [];
  private readonly abort = new AbortController();
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(couchUrl: string) {
    const u = new URL(couchUrl);
    this.headers = u.username ? { Authorization: basicAuth(u) } : {};
    this.base = `${u.protocol}//${u.host}`;
  }

  /** Whether the node has the feed; follows it in the background when it has. */
  async start(): Promise<boolean> {
    const first = await fetch(`${this.base}/_db_updates?feed=normal&since=now`, { headers: this.headers });
    if (!first.ok) return false;
    let since = ((await first.json()) as { last_seq: string }).last_seq;
    void (async () => {
      while (!this.abort.signal.aborted) {
        const r = await fetch(`${this.base}/_db_updates?feed=longpoll&timeout=5000&since=${encodeURIComponent(since)}`, { headers: this.headers, signal: this.abort.signal }).catch(() => undefined);
        if (!r?.ok) {
          await sleep(100);
          continue;
        }
        const batch = (await r.json()) as { results: Array<{ db_name: string }>; last_seq: string };
        const now = Date.now();
        for (const e of batch.results) {
          const acks = this.waiting.get(e.db_name.replace(/^sync_/, ''));
          for (const at of acks?.splice(0) ?? []) this.delays.push(now - at);
        }
        since = batch.last_seq;
      }
    })();
    return true;
  }

  acknowledged(uid: number): void {
    const list = this.waiting.get(String(uid)) ?? [];
    list.push(Date.now());
    this.waiting.set(String(uid), list);
  }

  reset(): void {
    this.waiting.clear();
    this.delays = [];
  }

  percentile(p: number): string {
    if (this.delays.length === 0) return '-';
    const sorted = [...this.delays].sort((a, b) => a - b);
    return `${sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]} ms`;
  }

  stop(): void {
    this.abort.abort();
  }
}
