// One user's usage as stored: `usage:<uid>` in the usage database (federation/usage-db.ts).
// Sizes are the last count of the user's live records; traffic is kept in time steps that
// gateways add to (a compare-and-swap merge), and summed relative to now only when read, so a
// user nobody touches needs no write to age out of "the last hour".
import type { Doc } from '../storage/doc-db.js';

export const STEP_MS = 5 * 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** One time step: its start (ms since the epoch), requests, request body bytes, response body bytes. */
export type Step = [start: number, requests: number, bytesIn: number, bytesOut: number];

export interface CollectionSize {
  records: number;
  /** Payload bytes of the live records. */
  bytes: number;
}

export interface UsageDoc extends Doc {
  type: 'usage';
  uid: number;
  /** The user's primary node when a gateway last wrote this document. */
  node: string;
  collections: Record<string, CollectionSize>;
  records: number;
  bytes: number;
  /**
   * The storage timestamp the sizes were counted at: two gateways counting at once, the count
   * of the older state never replaces the newer one.
   */
  sizesAt: number;
  /** 5-minute steps of the last hour, and hourly steps of the last day, oldest first. */
  steps: Step[];
  hours: Step[];
  updatedAt: number;
}

/** What one gateway saw of one user since its last flush. */
export interface UsageDelta {
  node: string;
  /** Counted after the user wrote; absent when the user only read. */
  sizes?: { collections: Record<string, CollectionSize>; lastModified: number };
  /** Traffic by 5-minute step start. */
  steps: Map<number, Step>;
}

export interface TrafficSum {
  requests: number;
  bytesIn: number;
  bytesOut: number;
}

export const usageId = (uid: number): string => `usage:${uid}`;
export const stepOf = (ms: number, size = STEP_MS): number => Math.floor(ms / size) * size;

function add(steps: Step[], s: Step, size: number): void {
  const start = stepOf(s[0], size);
  let at = steps.find((x) => x[0] === start);
  if (!at) {
    at = [start, 0, 0, 0];
    steps.push(at);
  }
  at[1] += s[1];
  at[2] += s[2];
  at[3] += s[3];
}

/** The document with the delta added; steps that fell out of their window are dropped. */
export function mergeUsage(doc: UsageDoc | undefined, uid: number, delta: UsageDelta, now: number): UsageDoc {
  const next: UsageDoc = doc
    ? structuredClone(doc)
    : { _id: usageId(uid), type: 'usage', uid, node: delta.node, collections: {}, records: 0, bytes: 0, sizesAt: -1, steps: [], hours: [], updatedAt: now };
  next.node = delta.node;
  next.updatedAt = now;
  if (delta.sizes && delta.sizes.lastModified >= next.sizesAt) {
    next.collections = delta.sizes.collections;
    next.records = Object.values(delta.sizes.collections).reduce((n, c) => n + c.records, 0);
    next.bytes = Object.values(delta.sizes.collections).reduce((n, c) => n + c.bytes, 0);
    next.sizesAt = delta.sizes.lastModified;
  }
  for (const s of delta.steps.values()) {
    add(next.steps, s, STEP_MS);
    add(next.hours, s, HOUR_MS);
  }
  next.steps = next.steps.filter((s) => s[0] > now - HOUR_MS).sort((a, b) => a[0] - b[0]);
  next.hours = next.hours.filter((s) => s[0] > now - DAY_MS).sort((a, b) => a[0] - b[0]);
  return next;
}

function sum(steps: readonly Step[], since: number): TrafficSum {
  const t: TrafficSum = { requests: 0, bytesIn: 0, bytesOut: 0 };
  for (const s of steps) {
    if (s[0] <= since) continue;
    t.requests += s[1];
    t.bytesIn += s[2];
    t.bytesOut += s[3];
  }
  return t;
}

/** Traffic of the last hour (to 5 minutes) and the last day (to an hour), as of `now`. */
export function trafficOf(doc: Pick<UsageDoc, 'steps' | 'hours'>, now: number): { hour: TrafficSum; day: TrafficSum } {
  return { hour: sum(doc.steps, now - HOUR_MS), day: sum(doc.hours, now - DAY_MS) };
}

/** Per-collection sizes from the store's tally (storage/store.ts UsageInfo). */
export function sizesOf(usage: { bytes: Record<string, number>; counts: Record<string, number> }): Record<string, CollectionSize> {
  const out: Record<string, CollectionSize> = {};
  for (const [c, records] of Object.entries(usage.counts)) out[c] = { records, bytes: usage.bytes[c] ?? 0 };
  return out;
}
