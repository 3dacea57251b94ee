// A load run: synthetic users, their first syncs (the warm-up), then a measured window of
// sessions, closed loop (a fixed number of connections, each starting its next session when
// the last ends) or at a fixed arrival rate (sessions start on schedule whether or not the
// server keeps up, and each is timed from its scheduled start, so a slow server cannot hide
// its latency by slowing the load down).
import { Collector } from './collector.js';
import { mozillaSession } from './mozilla-mix.js';
import { sample, type ProbeSample } from './probe.js';
import { realisticFirstSync, realisticSession } from './realistic-mix.js';
import { replayDevice, replayRequest } from './replay-mix.js';
import type { LoggedRequest, RequestLog } from './request-log.js';
import type { CurvePoint, LoadResult } from './result.js';
import { seeded, type Random } from './rng.js';
import { Session, type Auth, type Device, type LoadUser, type Outcome } from './session.js';
import { closeConnections } from './sync-client.js';

export type MixName = 'mozilla' | 'realistic';

export const MIXES: Record<MixName, { first(s: Session): Promise<void>; session(s: Session): Promise<void> }> = {
  // Mozilla's load test has no first sync of its own: a user's first session creates its storage.
  mozilla: { first: mozillaSession, session: mozillaSession },
  realistic: { first: realisticFirstSync, session: realisticSession },
};

export interface LoadOptions {
  url: string;
  auth: Auth;
  mix: MixName;
  users: number;
  /** Devices per user (the realistic mix; Mozilla's mix uses one). */
  devices: number;
  /** Closed loop: this many sessions at once. */
  concurrency: number;
  /** Arrival rates in sessions per second, one measured window each (a sweep when several). */
  rates?: number[];
  seconds: number;
  warmup: boolean;
  seed: number;
  /** Server processes to read CPU, memory and writes of. */
  pids: number[];
  timeoutMs: number;
  /** In arrival-rate mode, sessions in flight above which a scheduled one is counted as not sent. */
  maxInflight: number;
  label?: string;
  /**
   * Instead of a mix: the requests of a recorded log, each sent for its user at its time in the
   * log divided by `speed` (one request is one session of the report). Users and devices come
   * from the log; there is no warm-up.
   */
  replay?: { log: RequestLog; speed: number };
  /** A line about the run so far, about once a second; final when a window ends. */
  progress?: (line: string, final: boolean) => void;
}

interface Window {
  collector: Collector;
  seconds: number;
  samples: Array<{ at: number; s: ProbeSample }>;
  notSent: number;
  /** Seconds from the window's start until its last session ended (the server's backlog drained). */
  drained: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LoadRun {
  private readonly rng: Random;
  private readonly users: LoadUser[];
  private readonly devices: Array<{ user: LoadUser; device: Device; rng: Random }>;
  private record: (o: Outcome) => void = () => {};
  private readonly clock = { skewSeconds: 0 };

  constructor(private readonly opts: LoadOptions) {
    this.rng = seeded(opts.seed);
    const perUser = opts.mix === 'mozilla' || opts.replay ? 1 : opts.devices;
    const users = opts.replay ? opts.replay.log.users : opts.users;
    this.users = Array.from({ length: users }, (_, i) => ({ n: i + 1, devices: [] }));
    this.devices = [];
    for (const user of this.users) {
      for (let d = 0; d < perUser; d++) {
        const rng = this.rng.fork();
        const id = Buffer.from(Array.from({ length: 9 }, () => rng.int(0, 255))).toString('base64url');
        const device: Device = opts.replay ? replayDevice(id) : { id, collections: {}, busy: false };
        user.devices.push(device);
        this.devices.push({ user, device, rng });
      }
    }
  }

  /** One session (or one replayed request); its failure (if any) as a reason, and whether the server shed it. */
  private async runSession(d: { user: LoadUser; device: Device; rng: Random }, first: boolean, replayed?: LoggedRequest): Promise<{ failure?: string; shed: boolean }> {
    const mix = MIXES[this.opts.mix];
    let shed = false;
    const record = this.record;
    // The session's own outcomes are seen here too, to tell a shed session from an ordinary failure.
    const deps = {
      base: new URL(this.opts.url),
      auth: this.opts.auth,
      timeoutMs: this.opts.timeoutMs,
      clock: this.clock,
      record: (o: Outcome) => {
        if (o.shed) shed = true;
        record(o);
      },
    };
    const s = new Session(deps, d.user, d.device, d.rng);
    d.device.busy = true;
    try {
      await (replayed ? replayRequest(s, replayed) : first ? mix.first(s) : mix.session(s));
      return { shed };
    } catch (e) {
      return { failure: (e as Error).message, shed };
    } finally {
      d.device.busy = false;
    }
  }

  /** Every device's first sync, the devices of a user one after another. */
  async warmup(): Promise<LoadResult['warmup']> {
    const start = performance.now();
    let sessions = 0;
    let errors = 0;
    const reasons: Record<string, number> = {};
    this.record = () => {};
    const queue = [...this.users];
    await Promise.all(
      Array.from({ length: Math.max(1, this.opts.concurrency) }, async () => {
        for (let user = queue.shift(); user; user = queue.shift()) {
          for (const d of this.devices.filter((x) => x.user === user)) {
            const r = await this.runSession(d, true);
            sessions++;
            if (r.failure) {
              errors++;
              const reason = r.failure.slice(0, 160);
              reasons[reason] = (reasons[reason] ?? 0) + 1;
            }
          }
        }
      }),
    );
    return { sessions, seconds: (performance.now() - start) / 1000, errors, reasons };
  }

  /** A device not in a session now, at random (any, when all are busy). */
  private pick(): { user: LoadUser; device: Device; rng: Random } {
    for (let i = 0; i < 32; i++) {
      const d = this.rng.pick(this.devices);
      if (!d.device.busy) return d;
    }
    return this.rng.pick(this.devices);
  }

  private async window(rate: number | undefined, label: string): Promise<Window> {
    const { pids } = this.opts;
    const seconds = this.opts.replay ? Math.max(1, this.opts.replay.log.seconds / this.opts.replay.speed) : this.opts.seconds;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    const collector = new Collector(t0);
    this.record = (o) => collector.request(o);
    const samples: Window['samples'] = [];
    const probe = () => pids.length && samples.push({ at: performance.now(), s: sample(pids) });
    probe();
    const timer = setInterval(() => {
      probe();
      const elapsed = Math.min(seconds, (performance.now() - t0) / 1000);
      const p99 = collector.sessions.percentile(0.99);
      this.opts.progress?.(
        `${label}${elapsed.toFixed(0).padStart(4)}/${seconds} s  ${(collector.sessions.count / Math.max(elapsed, 0.001)).toFixed(1)} sessions/s  ${collector.requests} requests  session p99 ${p99.toFixed(0)} ms  errors ${collector.errors}  shed ${collector.shed}`,
        false,
      );
    }, 1000);
    let notSent = 0;
    const inflight = new Set<Promise<unknown>>();
    const start = (scheduled: number, replayed?: LoggedRequest) => {
      collector.started(scheduled);
      const d = replayed ? this.devices[replayed.user]! : rate === undefined ? this.pick() : this.rng.pick(this.devices);
      const p = this.runSession(d, false, replayed).then((r) => {
        collector.session(scheduled, performance.now(), r.failure, r.shed);
        inflight.delete(p);
      });
      inflight.add(p);
      return p;
    };
    const replay = this.opts.replay;
    if (replay) {
      // A user's requests stay in their order, as its devices sent them: each waits for the
      // one before it (a slow server delays them, and its latency counts from the schedule).
      const previous = new Map<number, Promise<unknown>>();
      for (const r of replay.log.requests) {
        const due = t0 + r.at / replay.speed;
        if (due > performance.now()) await sleep(due - performance.now());
        if (inflight.size >= this.opts.maxInflight) notSent++;
        else previous.set(r.user, (previous.get(r.user) ?? Promise.resolve()).then(() => start(due, r)));
      }
      await Promise.all(previous.values());
    } else if (rate === undefined) {
      await Promise.all(
        Array.from({ length: this.opts.concurrency }, async () => {
          while (performance.now() < end) await start(performance.now());
        }),
      );
    } else {
      const gap = 1000 / rate;
      for (let next = t0; next < end; ) {
        const now = performance.now();
        for (; next <= now && next < end; next += gap) {
          if (inflight.size >= this.opts.maxInflight) notSent++;
          else void start(next);
        }
        await sleep(Math.max(0, Math.min(5, next - performance.now())));
      }
      await Promise.all(inflight);
    }
    clearInterval(timer);
    probe();
    return { collector, seconds, samples, notSent, drained: (performance.now() - t0) / 1000 };
  }

  private result(w: Window, mode: LoadResult['mode'], warmup: LoadResult['warmup']): LoadResult {
    const c = w.collector;
    const timeline = c.timeline();
    for (const [i, cur] of w.samples.entries()) {
      if (i === 0) continue;
      const prev = w.samples[i - 1]!;
      const tick = timeline[Math.min(timeline.length - 1, Math.max(0, Math.floor((cur.at - c.t0) / 1000) - 1))];
      if (!tick) continue;
      tick.serverCores = (cur.s.cpuSeconds - prev.s.cpuSeconds) / ((cur.at - prev.at) / 1000);
      tick.serverRssBytes = cur.s.rssBytes;
      tick.serverWrittenBytes = Math.max(0, cur.s.writtenBytes - prev.s.writtenBytes);
    }
    const first = w.samples[0]?.s;
    const last = w.samples[w.samples.length - 1]?.s;
    const span = w.samples.length > 1 ? (w.samples[w.samples.length - 1]!.at - w.samples[0]!.at) / 1000 : w.seconds;
    const result: LoadResult = {
      tool: 'syncgate load',
      label: this.opts.label ?? new URL(this.opts.url).host,
      url: this.opts.url,
      mix: this.opts.replay ? 'replay' : this.opts.mix,
      users: this.users.length,
      devices: this.devices.length / Math.max(1, this.users.length),
      seed: this.opts.seed,
      mode,
      startedAt: new Date(Date.now() - w.seconds * 1000).toISOString(),
      seconds: w.seconds,
      warmup,
      sessions: {
        count: c.sessions.count,
        perSecond: c.sessions.count / w.seconds,
        aborted: c.aborted,
        p50: c.sessions.percentile(0.5),
        p95: c.sessions.percentile(0.95),
        p99: c.sessions.percentile(0.99),
        histogram: c.sessions.toJSON(),
        abortReasons: Object.fromEntries(c.abortReasons),
      },
      requests: { count: c.requests, perSecond: c.requests / w.seconds, errors: c.errors, shed: c.shed, backoff: c.backoff, bytesOut: c.bytesOut, bytesIn: c.bytesIn },
      kinds: c.summary(w.seconds),
      timeline,
    };
    if (first && last) {
      const cpuSeconds = last.cpuSeconds - first.cpuSeconds;
      result.server = {
        pids: this.opts.pids,
        cpuSeconds,
        cpuMsPerSession: c.sessions.count ? (cpuSeconds * 1000) / c.sessions.count : 0,
        peakRssBytes: Math.max(...w.samples.map((x) => x.s.rssBytes)),
        writtenBytes: last.writtenBytes - first.writtenBytes,
        coresUsed: cpuSeconds / span,
      };
    }
    return result;
  }

  /** One measured window, closed loop: the run's connections, its duration. */
  async measure(warmup: LoadResult['warmup'] = { sessions: 0, seconds: 0, errors: 0, reasons: {} }): Promise<LoadResult> {
    const w = await this.window(undefined, '');
    return this.result(w, { kind: 'closed', concurrency: this.opts.concurrency }, warmup);
  }

  /** Warm-up (when asked), then the window: one, or one per arrival rate of a sweep. */
  async run(): Promise<LoadResult> {
    try {
      const warmup = this.opts.warmup && !this.opts.replay ? await this.warmup() : { sessions: 0, seconds: 0, errors: 0, reasons: {} };
      this.opts.progress?.(`warm-up: ${warmup.sessions} first syncs in ${warmup.seconds.toFixed(1)} s, ${warmup.errors} failed${Object.entries(warmup.reasons).map(([r, n]) => `\n  ×${n}: ${r}`).join('')}`, true);
      const rates = this.opts.rates;
      if (this.opts.replay) {
        const w = await this.window(undefined, 'replay: ');
        const r = this.result(w, { kind: 'replay', speed: this.opts.replay.speed }, warmup);
        this.opts.progress?.(`${r.requests.count} requests replayed, ${r.requests.errors} errors`, true);
        return r;
      }
      if (!rates?.length) {
        const r = await this.measure(warmup);
        this.opts.progress?.(`${r.sessions.count} sessions, ${r.sessions.perSecond.toFixed(1)}/s, ${r.requests.errors} errors`, true);
        return r;
      }
      const curve: CurvePoint[] = [];
      let last: LoadResult | undefined;
      const timeline: LoadResult['timeline'] = [];
      for (const rate of rates) {
        const w = await this.window(rate, rates.length > 1 ? `${rate}/s: ` : '');
        last = this.result(w, { kind: 'rate', sessionsPerSecond: rate }, warmup);
        const offset = timeline.length;
        timeline.push(...last.timeline.map((t) => ({ ...t, t: t.t + offset })));
        curve.push({
          offered: rate,
          // Over the time the sessions took to end, not the schedule's: a server that queues
          // what it cannot do serves the backlog long after the window closed.
          served: (last.sessions.count - last.sessions.aborted) / Math.max(w.seconds, w.drained),
          p50: last.sessions.p50,
          p99: last.sessions.p99,
          admittedP99: w.collector.admitted.percentile(0.99),
          shedShare: last.sessions.count ? w.collector.shedSessions / last.sessions.count : 0,
          backoffShare: last.requests.count ? last.requests.backoff / last.requests.count : 0,
          errors: last.requests.errors + w.notSent,
        });
        this.opts.progress?.(`${rate}/s offered: ${curve[curve.length - 1]!.served.toFixed(1)}/s served, session p99 ${last.sessions.p99.toFixed(0)} ms (admitted ${curve[curve.length - 1]!.admittedP99.toFixed(0)} ms), ${(curve[curve.length - 1]!.shedShare * 100).toFixed(1)}% shed`, true);
      }
      return rates.length > 1 ? { ...last!, timeline, curve } : last!;
    } finally {
      closeConnections();
    }
  }
}
