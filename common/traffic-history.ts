// The last hour of one gateway's requests in 10-second steps: counts, errors and a coarse
// latency histogram per step, from which the dashboard draws its charts. Memory is fixed (360
// steps); a step is reused when the clock comes round to it again.

const STEP_MS = 10_000;
const STEPS = 360;
/** Upper bounds of the latency classes, in milliseconds; the last class is everything above. */
const LATENCY_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

interface Step {
  start: number;
  requests: number;
  serverErrors: number;
  clientErrors: number;
  latency: number[];
}

export interface TrafficPoint {
  /** Start of the step, ms since the epoch. */
  t: number;
  requestsPerSec: number;
  /** Share of the step's answers that were 5xx (0..1). */
  errorRate: number;
  /** Share that were 4xx (0..1), not counting 304. */
  clientErrorRate: number;
  /** Upper bound of the class holding the median / 99th percentile, in ms (0 with no requests). */
  p50Ms: number;
  p99Ms: number;
}

export class TrafficHistory {
  private readonly steps: Step[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  record(status: number, ms: number): void {
    const s = this.step(this.now());
    s.requests++;
    if (status >= 500) s.serverErrors++;
    else if (status >= 400) s.clientErrors++;
    let i = LATENCY_MS.findIndex((b) => ms <= b);
    if (i < 0) i = LATENCY_MS.length;
    s.latency[i] = (s.latency[i] ?? 0) + 1;
  }

  /** Steps of the last hour, oldest first; steps without requests are included as zeros. */
  series(): TrafficPoint[] {
    const current = Math.floor(this.now() / STEP_MS) * STEP_MS;
    const out: TrafficPoint[] = [];
    for (let t = current - (STEPS - 1) * STEP_MS; t <= current; t += STEP_MS) {
      const s = this.steps[(t / STEP_MS) % STEPS];
      if (!s || s.start !== t || s.requests === 0) {
        out.push({ t, requestsPerSec: 0, errorRate: 0, clientErrorRate: 0, p50Ms: 0, p99Ms: 0 });
        continue;
      }
      out.push({
        t,
        requestsPerSec: s.requests / (STEP_MS / 1000),
        errorRate: s.serverErrors / s.requests,
        clientErrorRate: s.clientErrors / s.requests,
        p50Ms: quantile(s, 0.5),
        p99Ms: quantile(s, 0.99),
      });
    }
    return out;
  }

  private step(now: number): Step {
    const start = Math.floor(now / STEP_MS) * STEP_MS;
    const i = (start / STEP_MS) % STEPS;
    let s = this.steps[i];
    if (!s || s.start !== start) {
      s = { start, requests: 0, serverErrors: 0, clientErrors: 0, latency: [] };
      this.steps[i] = s;
    }
    return s;
  }
}

function quantile(s: Step, q: number): number {
  const rank = Math.ceil(s.requests * q);
  let seen = 0;
  for (let i = 0; i <= LATENCY_MS.length; i++) {
    seen += s.latency[i] ?? 0;
    if (seen >= rank) return LATENCY_MS[i] ?? LATENCY_MS[LATENCY_MS.length - 1]! * 2;
  }
  return 0;
}
