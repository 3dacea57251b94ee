// The Sync session mixes of `syncgate load` against syncgate, and against a peer server when
// PEER_URL names one (PEER_SECRET: its tokenlib secret; PEER_PID: its process, for CPU and
// memory): the servers alternate in rounds, so that drift of the machine falls on both alike,
// and each figure is the median of its rounds.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoadRun, type MixName } from '../load/run.js';
import type { LoadResult } from '../load/result.js';
import { closeConnections } from '../load/sync-client.js';
import { startCouchNode, type CouchNode } from '../test/support/couch.js';
import { spawnBenchGateway, type BenchGateway } from './gateway-process.js';

const USERS = Number(process.env.BENCH_MIX_USERS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_MIX_CONCURRENCY ?? 16);
const SECONDS = Number(process.env.BENCH_MIX_SECONDS ?? 15);
const ROUNDS = Number(process.env.BENCH_MIX_ROUNDS ?? 3);

interface Server {
  name: string;
  url: string;
  secret: string;
  pids: number[];
  stop(): Promise<void>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function syncgate(store: 'embedded' | 'couch'): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-bench-mix-'));
  const secret = randomBytes(24).toString('hex');
  let node: CouchNode | undefined;
  const couchUrl = store === 'couch' ? (process.env.COUCH_URL ?? (node = await startCouchNode()).url) : undefined;
  const gw: BenchGateway = await spawnBenchGateway({ SYNCGATE_DATA: dir, SYNC_MASTER_SECRET: secret, ...(couchUrl ? { COUCH_URL: couchUrl } : {}) });
  return {
    name: `syncgate (${store === 'couch' ? (process.env.COUCHDB_HOME ? 'Apache CouchDB' : 'Couch') : 'embedded'})`,
    url: gw.url,
    secret,
    pids: [gw.child.pid!, ...(node?.pid ? [node.pid] : [])],
    async stop() {
      await gw.stop();
      await node?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function benchSessionMix(): Promise<void> {
  const peer: Server | undefined = process.env.PEER_URL
    ? { name: process.env.PEER_NAME ?? 'peer', url: process.env.PEER_URL, secret: process.env.PEER_SECRET ?? '', pids: process.env.PEER_PID ? [Number(process.env.PEER_PID)] : [], stop: async () => {} }
    : undefined;
  const stores: Array<'embedded' | 'couch'> = process.env.COUCH_URL || process.env.COUCHDB_HOME ? ['embedded', 'couch'] : ['embedded'];
  console.log(`\nSession mixes (syncgate load): ${USERS} users, ${CONCURRENCY} connections, ${ROUNDS} rounds of ${SECONDS} s per server, servers alternating; medians`);
  for (const store of stores) {
    for (const mix of ['realistic', 'mozilla'] as MixName[]) {
      const ours = await syncgate(store);
      const servers = peer ? [ours, peer] : [ours];
      try {
        // A run per server, its users' first syncs before any round; the same seed for each.
        const runs = servers.map(
          (s) => new LoadRun({ url: s.url, auth: { kind: 'secret', secret: s.secret }, mix, users: USERS, devices: 2, concurrency: CONCURRENCY, seconds: SECONDS, warmup: true, seed: 1, pids: s.pids, timeoutMs: 60_000, maxInflight: 5000, label: s.name }),
        );
        for (const r of runs) await r.warmup();
        const results: LoadResult[][] = servers.map(() => []);
        for (let round = 0; round < ROUNDS; round++) for (const [i, r] of runs.entries()) results[i]!.push(await r.measure());
        const figures = results.map((rs) => ({
          perSecond: median(rs.map((r) => r.sessions.perSecond)),
          p50: median(rs.map((r) => r.sessions.p50)),
          p99: median(rs.map((r) => r.sessions.p99)),
          cpu: median(rs.map((r) => r.server?.cpuMsPerSession ?? NaN)),
          cores: median(rs.map((r) => r.server?.coresUsed ?? NaN)),
          rss: Math.max(...rs.map((r) => r.server?.peakRssBytes ?? NaN)) / (1 << 20),
          errors: rs.reduce((s, r) => s + r.requests.errors, 0),
        }));
        for (const [i, f] of figures.entries()) {
          console.log(
            `${mix.padEnd(10)} ${servers[i]!.name.padEnd(30)} ${f.perSecond.toFixed(1).padStart(8)} sessions/s  p50 ${f.p50.toFixed(1).padStart(7)} ms  p99 ${f.p99.toFixed(0).padStart(6)} ms  ` +
              `server ${f.cpu.toFixed(2)} CPU ms/session, ${f.cores.toFixed(2)} cores, peak RSS ${f.rss.toFixed(0)} MB; errors ${f.errors}`,
          );
        }
        if (peer) console.log(`${mix.padEnd(10)} sessions/s ${servers[0]!.name}/${peer.name}: ${(figures[0]!.perSecond / figures[1]!.perSecond).toFixed(2)}; p99 ${(figures[0]!.p99 / figures[1]!.p99).toFixed(2)}`);
      } finally {
        await ours.stop();
        closeConnections();
      }
    }
  }
}
