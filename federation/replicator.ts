// Keeps every user's second copy current with Couch replication, without a permanent
// replication per user: a write schedules a one-shot replication of that user's database from
// the node that served it to the node with the other copy, debounced, so a burst of writes
// costs one replication, and only users who write cost anything.
//
// The gateway runs the replication protocol itself (federation/replicate-db.ts) rather than
// asking one node to pull from the other: that would hand one operator's Couch credentials to
// another operator.
import type { Metrics } from '../common/metrics.js';
import { userDbName } from '../storage/db-name.js';
import type { NodeEndpoint } from './node-stores.js';
import { replicateDb, type Replicated, type ReplicateOptions } from './replicate-db.js';

export interface ReplicatorOptions {
  /** How long after a write the replication starts (more writes meanwhile join it). */
  delayMs: number;
  /** Replications running at once from this gateway. */
  concurrency: number;
  endpoint: (node: string) => Promise<NodeEndpoint | undefined>;
  /** Whether the node may be written to now (not failed or downed). */
  reachable: (node: string) => boolean;
  /**
   * Whether the node's writes reach its users' other copies by failback, not by replication:
   * it is out, or back and not yet merged. Copied plainly, the writes only it had would keep
   * their old timestamps, and a device that synced from the other copy meanwhile would never
   * list them; failback gives them new ones.
   */
  mergedByFailback?: (node: string) => boolean;
  onError?: (err: unknown, uid: string, from: string, to: string) => void;
  onSkipped?: (skipped: Replicated['skipped'], from: string, to: string) => void;
  /** The gateway's metrics: replications completed, failed and dropped, lag, queue. */
  metrics?: Metrics;
}

interface Job {
  uid: string;
  from: string;
  to: string;
  /** When the oldest write not yet replicated was acknowledged. */
  since: number;
  due: number;
  attempts: number;
}

export interface ReplicationStats {
  queued: number;
  running: number;
  completed: number;
  failed: number;
  /** Dropped because the target was out or the source is failback's to merge; failback copies those users. */
  dropped: number;
  /** Write acknowledged → on the other node, over the recent replications (ms). */
  lagMs: { p50: number; p99: number; max: number; samples: number };
}

const LAG_SAMPLES = 2000;

const ensured = new Set<string>();

/** One one-shot replication of a user database; returns the documents written to the target. */
export async function replicateUser(uid: string, from: NodeEndpoint, to: NodeEndpoint, opts: ReplicateOptions = {}): Promise<Replicated> {
  const name = userDbName(uid);
  // The target is created with its _security closed before anything is copied into it (once
  // per process and database; a database deleted since is created again on the next failure).
  const key = `${to.name}\n${name}`;
  if (!ensured.has(key)) {
    await to.backend.ensureDatabase(name);
    ensured.add(key);
    if (ensured.size > 100_000) ensured.delete(ensured.values().next().value as string);
  }
  try {
    return await replicateDb(from.client, to.client, name, `${from.name}->${to.name}`, opts);
  } catch (e) {
    ensured.delete(key); // checked again next time
    throw e;
  }
}

export class Replicator {
  private readonly jobs = new Map<string, Job>();
  private readonly running = new Map<string, Job>();
  private readonly lags: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private completed = 0;
  private failed = 0;
  private dropped = 0;

  constructor(private readonly opts: ReplicatorOptions) {
    opts.metrics?.source('syncgate_replication_queue', () => this.jobs.size);
    opts.metrics?.source('syncgate_replications_running', () => this.running.size);
  }

  start(): void {
    this.timer = setInterval(() => this.pump(), Math.max(20, Math.min(200, this.opts.delayMs / 2)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A write for uid was acknowledged on `from`; its other copy lives on `to`. */
  schedule(uid: string, from: string, to: string): void {
    const now = Date.now();
    const job = this.jobs.get(uid);
    if (job && job.from === from && job.to === to) return; // the queued run will carry it
    this.jobs.set(uid, { uid, from, to, since: job?.since ?? now, due: now + this.opts.delayMs, attempts: 0 });
  }

  /**
   * Replicates now and resolves once the other node has everything written so far
   * (synchronous mode). Concurrent calls for one user share runs.
   */
  async now(uid: string, from: string, to: string): Promise<void> {
    const started = Date.now();
    const key = `${uid}\n${from}\n${to}`;
    let entry = this.syncRuns.get(key);
    if (!entry) {
      entry = { tail: Promise.resolve() };
      this.syncRuns.set(key, entry);
    }
    // A run that has started may have read the source before this write: join the next one.
    if (!entry.queued) {
      const e = entry;
      const run: Promise<void> = e.tail
        .catch(() => undefined)
        .then(() => {
          e.queued = undefined;
          return this.copy(uid, from, to);
        });
      e.queued = run;
      e.tail = run;
      void run.catch(() => undefined).finally(() => {
        if (this.syncRuns.get(key) === e && e.tail === run) this.syncRuns.delete(key);
      });
    }
    try {
      await entry.queued;
    } catch (e) {
      this.opts.metrics?.replicationsFailed.inc();
      throw e;
    }
    this.opts.metrics?.replicationsCompleted.inc();
    this.recordLag(Date.now() - started);
  }
  private readonly syncRuns = new Map<string, { tail: Promise<void>; queued?: Promise<void> }>();

  private async copy(uid: string, from: string, to: string): Promise<void> {
    const [a, b] = await Promise.all([this.opts.endpoint(from), this.opts.endpoint(to)]);
    if (!a || !b) return; // an embedded default node has no replica
    const { skipped } = await replicateUser(uid, a, b);
    if (skipped.length > 0) this.opts.onSkipped?.(skipped, from, to);
  }

  private pump(): void {
    const now = Date.now();
    for (const job of this.jobs.values()) {
      if (this.running.size >= this.opts.concurrency) break;
      if (job.due > now || this.running.has(job.uid)) continue;
      this.jobs.delete(job.uid);
      if (!this.opts.reachable(job.to) || this.opts.mergedByFailback?.(job.from)) {
        this.dropped++;
        this.opts.metrics?.replicationsDropped.inc();
        continue;
      }
      this.running.set(job.uid, job);
      void this.run(job);
    }
  }

  private async run(job: Job): Promise<void> {
    try {
      await this.copy(job.uid, job.from, job.to);
      this.completed++;
      this.opts.metrics?.replicationsCompleted.inc();
      this.recordLag(Date.now() - job.since);
    } catch (err) {
      this.failed++;
      this.opts.metrics?.replicationsFailed.inc();
      this.opts.onError?.(err, job.uid, job.from, job.to);
      // Again later, unless a newer write queued it meanwhile; failback covers a dead target.
      if (!this.jobs.has(job.uid) && job.attempts < 5) {
        this.jobs.set(job.uid, { ...job, due: Date.now() + 1000 * 2 ** job.attempts, attempts: job.attempts + 1 });
      }
    } finally {
      this.running.delete(job.uid);
    }
  }

  private recordLag(ms: number): void {
    this.opts.metrics?.replicationLag.observe(ms / 1000);
    this.lags.push(ms);
    if (this.lags.length > LAG_SAMPLES) this.lags.splice(0, this.lags.length - LAG_SAMPLES);
  }

  resetStats(): void {
    this.lags.length = 0;
    this.completed = 0;
    this.failed = 0;
    this.dropped = 0;
  }

  stats(): ReplicationStats {
    const sorted = [...this.lags].sort((x, y) => x - y);
    const at = (q: number) => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number) : 0);
    return {
      queued: this.jobs.size,
      running: this.running.size,
      completed: this.completed,
      failed: this.failed,
      dropped: this.dropped,
      lagMs: { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0, samples: sorted.length },
    };
  }
}
