// Counts what a measured window saw: per request kind, per session, per second.
import { Histogram } from './histogram.js';
import type { KindSummary, Tick } from './result.js';
import type { Outcome } from './session.js';

interface KindStats {
  histogram: Histogram;
  errors: number;
  shed: number;
  statuses: Map<number, number>;
}

interface Second {
  sessions: number;
  requests: number;
  errors: number;
  shed: number;
  started: number;
  histogram: Histogram;
}

export class Collector {
  readonly kinds = new Map<string, KindStats>();
  readonly sessions = new Histogram();
  /** Sessions the server did not shed: the latency of what it admitted. */
  readonly admitted = new Histogram();
  aborted = 0;
  readonly abortReasons = new Map<string, number>();
  /** Sessions that met a 503 or 429 (the sweep's shed share). */
  shedSessions = 0;
  requests = 0;
  errors = 0;
  shed = 0;
  backoff = 0;
  bytesOut = 0;
  bytesIn = 0;
  private readonly seconds: Second[] = [];

  /** t0: performance.now() at the window's start; requests sent before it are not counted. */
  constructor(readonly t0: number) {}

  private second(at: number): Second {
    const i = Math.max(0, Math.floor((at - this.t0) / 1000));
    while (this.seconds.length <= i) this.seconds.push({ sessions: 0, requests: 0, errors: 0, shed: 0, started: 0, histogram: new Histogram() });
    return this.seconds[i]!;
  }

  request(o: Outcome): void {
    if (o.start < this.t0) return;
    let k = this.kinds.get(o.kind);
    if (!k) this.kinds.set(o.kind, (k = { histogram: new Histogram(), errors: 0, shed: 0, statuses: new Map() }));
    k.histogram.record(o.ms);
    k.statuses.set(o.status, (k.statuses.get(o.status) ?? 0) + 1);
    const s = this.second(o.at);
    s.requests++;
    s.histogram.record(o.ms);
    this.requests++;
    this.bytesOut += o.bytesOut;
    this.bytesIn += o.bytesIn;
    if (o.backoff) this.backoff++;
    if (!o.ok) {
      k.errors++;
      s.errors++;
      this.errors++;
    }
    if (o.shed) {
      k.shed++;
      s.shed++;
      this.shed++;
    }
  }

  started(at: number): void {
    this.second(at).started++;
  }

  session(start: number, end: number, failure: string | undefined, shed: boolean): void {
    if (start < this.t0) return;
    this.sessions.record(end - start);
    this.second(end).sessions++;
    if (shed) this.shedSessions++;
    else this.admitted.record(end - start);
    if (failure !== undefined) {
      this.aborted++;
      // Reasons grouped: numbers (batch ids, sizes, timestamps) do not make a reason of their own.
      const reason = failure.replace(/[A-Za-z0-9_-]{16,}/g, '…').replace(/\d+(\.\d+)?/g, 'N').slice(0, 120);
      this.abortReasons.set(reason, (this.abortReasons.get(reason) ?? 0) + 1);
    }
  }

  summary(seconds: number): KindSummary[] {
    return [...this.kinds.entries()]
      .map(([kind, k]) => ({
        kind,
        count: k.histogram.count,
        rate: k.histogram.count / seconds,
        p50: k.histogram.percentile(0.5),
        p95: k.histogram.percentile(0.95),
        p99: k.histogram.percentile(0.99),
        max: k.histogram.max,
        errors: k.errors,
        shed: k.shed,
        statuses: Object.fromEntries([...k.statuses].sort(([a], [b]) => a - b).map(([s, n]) => [String(s), n])),
        histogram: k.histogram.toJSON(),
      }))
      .sort((a, b) => b.count - a.count);
  }

  timeline(): Tick[] {
    return this.seconds.map((s, t) => ({ t, sessions: s.sessions, requests: s.requests, errors: s.errors, shed: s.shed, started: s.started, p50: s.histogram.percentile(0.5), p99: s.histogram.percentile(0.99) }));
  }
}
