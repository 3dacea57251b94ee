// The usage document's merge (federation/usage-doc.ts): what several gateways flush adds up,
// a count of an older storage state never replaces a newer one, and traffic is summed relative
// to the time it is read, so an idle user's counts age out without a write.
import assert from 'node:assert/strict';
import { DAY_MS, HOUR_MS, mergeUsage, STEP_MS, trafficOf, type Step, type UsageDelta } from '../../federation/usage-doc.js';

const T = Date.UTC(2026, 11, 7, 12, 0, 0);
const delta = (steps: Step[], sizes?: UsageDelta['sizes']): UsageDelta => ({ node: 'n1', steps: new Map(steps.map((s) => [s[0], s])), ...(sizes ? { sizes } : {}) });

describe('usage document merge', () => {
  it('adds the traffic of two gateways in the same steps', () => {
    const a = mergeUsage(undefined, 7, delta([[T, 2, 100, 1000]]), T + 1000);
    const b = mergeUsage(a, 7, delta([[T, 3, 10, 20]]), T + 2000);
    assert.equal(b._id, 'usage:7');
    assert.deepEqual(b.steps, [[T, 5, 110, 1020]]);
    assert.deepEqual(b.hours, [[T, 5, 110, 1020]]);
    assert.deepEqual(trafficOf(b, T + 2000), { hour: { requests: 5, bytesIn: 110, bytesOut: 1020 }, day: { requests: 5, bytesIn: 110, bytesOut: 1020 } });
    assert.equal(b.updatedAt, T + 2000);
  });

  it('keeps the count of the newest storage state, whichever gateway writes last', () => {
    const newer = { collections: { tabs: { records: 2, bytes: 30 } }, lastModified: 2000 };
    const older = { collections: { tabs: { records: 1, bytes: 10 } }, lastModified: 1000 };
    const a = mergeUsage(undefined, 7, delta([], newer), T);
    const b = mergeUsage(a, 7, delta([], older), T);
    assert.deepEqual([b.records, b.bytes, b.sizesAt], [2, 30, 2000]);
    const c = mergeUsage(b, 7, delta([[T, 1, 0, 5]]), T); // a read: sizes stay
    assert.deepEqual(c.collections, newer.collections);
  });

  it('sums the last hour from 5-minute steps and the last day from hourly steps, relative to now', () => {
    const doc = mergeUsage(undefined, 7, delta([[T - 70 * 60_000, 1, 1, 1], [T - 10 * 60_000, 2, 2, 2], [T, 4, 4, 4]]), T);
    assert.deepEqual(trafficOf(doc, T).hour.requests, 6);
    assert.deepEqual(trafficOf(doc, T).day.requests, 7);
    // Read an hour later with no write: the hour is empty, the day still has everything.
    assert.deepEqual(trafficOf(doc, T + HOUR_MS + STEP_MS).hour.requests, 0);
    assert.deepEqual(trafficOf(doc, T + HOUR_MS + STEP_MS).day.requests, 7);
    assert.deepEqual(trafficOf(doc, T + DAY_MS + HOUR_MS).day.requests, 0);
    // The next write drops the steps that fell out of their window.
    const later = mergeUsage(doc, 7, delta([[T + DAY_MS, 1, 0, 0]]), T + DAY_MS);
    assert.deepEqual(later.steps.map((s) => s[0]), [T + DAY_MS]);
    assert.ok(later.hours.every((s) => s[0] > T));
  });
});
