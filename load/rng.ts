// A seeded random source, so that a load run can be repeated request for request: sfc32
// (Chris Doty-Humphrey's small fast counter generator), seeded through splitmix32.

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included (Python's random.randint). */
  int(min: number, max: number): number;
  /** Pareto-distributed with shape alpha and scale 1 (Python's random.paretovariate). */
  pareto(alpha: number): number;
  /** An index into weights, each chosen in proportion to its weight. */
  weighted(weights: readonly number[]): number;
  /** n distinct elements of list, in random order (Python's random.sample). */
  sample<T>(list: readonly T[], n: number): T[];
  pick<T>(list: readonly T[]): T;
  /** An independent stream derived from this one (one per worker, per user). */
  fork(): Random;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function seeded(seed: number): Random {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const u32 = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32();
  const next = () => u32() / 4294967296;
  const random: Random = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pareto: (alpha) => 1 / Math.pow(1 - next(), 1 / alpha),
    weighted(weights) {
      // As syncstorage-loadtest's get_num_requests: i in [1, sum], the first bucket reaching it.
      const total = weights.reduce((s, w) => s + w, 0);
      const i = random.int(1, total);
      let base = 0;
      for (const [k, w] of weights.entries()) {
        base += w;
        if (i <= base) return k;
      }
      return weights.length - 1;
    },
    sample(list, n) {
      const copy = [...list];
      for (let i = 0; i < n; i++) {
        const j = i + Math.floor(next() * (copy.length - i));
        [copy[i], copy[j]] = [copy[j]!, copy[i]!];
      }
      return copy.slice(0, n);
    },
    pick: (list) => list[Math.floor(next() * list.length)]!,
    fork: () => seeded(u32()),
  };
  return random;
}
