// Latencies by bucket, for percentiles without keeping every sample: buckets grow by 2% from
// 10 µs to about 20 minutes, so a percentile is within 2% of the true value, and two
// histograms add (per second of a run, per request kind, per run). Written here rather than
// taken from hdr-histogram-js: this is all the load tool needs, and it serialises to the
// report as a plain array.

const MIN_MS = 0.01;
const GROWTH = 1.02;
const BUCKETS = Math.ceil(Math.log(1_200_000 / MIN_MS) / Math.log(GROWTH)) + 1;
const LOG_GROWTH = Math.log(GROWTH);

export class Histogram {
  readonly counts: number[];
  count = 0;
  sum = 0;
  max = 0;

  constructor(counts?: readonly number[]) {
    this.counts = counts ? [...counts] : new Array<number>(BUCKETS).fill(0);
    for (const [i, c] of this.counts.entries()) {
      if (c === 0) continue;
      this.count += c;
      this.sum += c * Histogram.bucketValue(i);
      this.max = Math.max(this.max, Histogram.bucketValue(i));
    }
  }

  private static bucketOf(ms: number): number {
    if (ms <= MIN_MS) return 0;
    return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH));
  }

  /** The bucket's upper bound: a percentile never reads lower than the truth. */
  private static bucketValue(i: number): number {
    return MIN_MS * Math.pow(GROWTH, i);
  }

  record(ms: number): void {
    this.counts[Histogram.bucketOf(ms)]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  add(other: Histogram): void {
    for (const [i, c] of other.counts.entries()) if (c) this.counts[i]! += c;
    this.count += other.count;
    this.sum += other.sum;
    this.max = Math.max(this.max, other.max);
  }

  /** The latency under which a share q (0..1) of the samples fall; 0 for none. */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const [i, c] of this.counts.entries()) {
      seen += c;
      if (seen >= rank) return Math.min(Histogram.bucketValue(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count ? this.sum / this.count : 0;
  }

  /** Sparse form for a report: [bucket, count] pairs. */
  toJSON(): Array<[number, number]> {
    return this.counts.flatMap((c, i) => (c ? [[i, c] as [number, number]] : []));
  }

  static fromJSON(pairs: Array<[number, number]>): Histogram {
    const counts = new Array<number>(BUCKETS).fill(0);
    for (const [i, c] of pairs) counts[i] = c;
    return new Histogram(counts);
  }
}
