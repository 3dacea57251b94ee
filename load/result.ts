// What a load run reports: the numbers of the summary table, the series of the plots, and the
// histograms behind the percentiles, as one JSON document (`--out run.json`), which the HTML
// report and `syncgate load report a.json b.json` read back.

export interface KindSummary {
  kind: string;
  count: number;
  /** Per second of the measured window. */
  rate: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Answers the mix did not expect (shed ones included), and failed connections. */
  errors: number;
  shed: number;
  statuses: Record<string, number>;
  histogram: Array<[number, number]>;
}

/** One second of the measured window. */
export interface Tick {
  /** Seconds since the measured window began. */
  t: number;
  sessions: number;
  requests: number;
  errors: number;
  shed: number;
  /** Sessions started that second (the offered rate, in arrival-rate mode). */
  started: number;
  p50: number;
  p99: number;
  /** Server processes, when their pids were given: CPU used that second (cores), memory. */
  serverCores?: number;
  serverRssBytes?: number;
  serverWrittenBytes?: number;
}

/** One step of an arrival-rate sweep: what was offered, what came back. */
export interface CurvePoint {
  offered: number;
  served: number;
  p50: number;
  p99: number;
  /** p99 of the sessions the server did not shed (none shed: the same as p99). */
  admittedP99: number;
  /** Share of sessions that met a 503/429. */
  shedShare: number;
  /** Share of requests answered with X-Weave-Backoff or Retry-After. */
  backoffShare: number;
  errors: number;
}

export interface LoadResult {
  tool: 'syncgate load';
  label: string;
  url: string;
  mix: string;
  users: number;
  devices: number;
  seed: number;
  mode: { kind: 'closed'; concurrency: number } | { kind: 'rate'; sessionsPerSecond: number } | { kind: 'replay'; speed: number };
  startedAt: string;
  seconds: number;
  warmup: { sessions: number; seconds: number; errors: number; reasons: Record<string, number> };
  sessions: { count: number; perSecond: number; aborted: number; p50: number; p95: number; p99: number; histogram: Array<[number, number]>; abortReasons: Record<string, number> };
  requests: { count: number; perSecond: number; errors: number; shed: number; backoff: number; bytesOut: number; bytesIn: number };
  kinds: KindSummary[];
  timeline: Tick[];
  server?: { pids: number[]; cpuSeconds: number; cpuMsPerSession: number; peakRssBytes: number; writtenBytes: number; coresUsed: number };
  curve?: CurvePoint[];
}
