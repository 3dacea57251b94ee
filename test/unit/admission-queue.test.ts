// The admission queue of server/overload.ts: at most maxConcurrent run, the rest wait in
// arrival order, a wait past the timeout is shed with 503 + Retry-After; the requests of syncs
// under way go before those that start one, and a standing queue turns starters away first.
import assert from 'node:assert/strict';
import { SyncError } from '../../common/errors.js';
import { AdmissionQueue, priorityOf, type OverloadLimits, type Priority } from '../../server/overload.js';

const limits = (l: Partial<OverloadLimits>): OverloadLimits => ({ maxConcurrent: 2, queueTimeoutMs: 10_000, backoffInflight: 0, maxInflight: 0, backoffSeconds: 30, ...l });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Enters the queue; the returned list records the order in which waiters were admitted. */
function enterAll(q: AdmissionQueue, names: string[], admitted: string[], priority: Priority = 'in-sync'): Array<Promise<void>> {
  return names.map((name) => {
    const turn = q.enter(priority);
    if (turn === undefined) {
      admitted.push(name);
      return Promise.resolve();
    }
    return turn.then(() => void admitted.push(name));
  });
}

describe('admission queue', () => {
  it('runs maxConcurrent at once; the next ones wait and are admitted in arrival order as others leave', async () => {
    const q = new AdmissionQueue(limits({}));
    const admitted: string[] = [];
    const turns = enterAll(q, ['a', 'b', 'c', 'd'], admitted);
    assert.deepEqual(admitted, ['a', 'b']);
    assert.equal(q.running, 2);
    assert.equal(q.inflight, 4);
    q.leave();
    await turns[2];
    assert.deepEqual(admitted, ['a', 'b', 'c']);
    q.leave();
    await turns[3];
    assert.deepEqual(admitted, ['a', 'b', 'c', 'd']);
    q.leave();
    q.leave();
    assert.equal(q.inflight, 0);
    assert.equal(q.shed, 0);
  });

  it('a request that waits past the timeout is shed with 503 and Retry-After', async () => {
    const q = new AdmissionQueue(limits({ maxConcurrent: 1, queueTimeoutMs: 30 }));
    assert.equal(q.enter(), undefined);
    const waiting = q.enter();
    assert.ok(waiting);
    await assert.rejects(waiting, (e: unknown) => e instanceof SyncError && e.code === 'unavailable' && e.retryAfter === 30);
    assert.equal(q.shed, 1);
    assert.equal(q.inflight, 1);
    q.leave();
    assert.equal(q.enter(), undefined, 'the slot is free again');
  });

  it('requests of a sync under way are admitted before those that start a sync, whatever their arrival', async () => {
    const q = new AdmissionQueue(limits({ maxConcurrent: 1 }));
    q.enter();
    const admitted: string[] = [];
    const starter = enterAll(q, ['info/collections'], admitted, 'starts-sync');
    const inSync = enterAll(q, ['POST'], admitted, 'in-sync');
    q.leave();
    await inSync[0];
    assert.deepEqual(admitted, ['POST']);
    q.leave();
    await starter[0];
    assert.deepEqual(admitted, ['POST', 'info/collections']);
    q.leave();
  });

  it('a queue that has not drained for 100 ms stands: starters wait a tenth, the newest first; requests of a sync under way keep the whole wait', async () => {
    const q = new AdmissionQueue(limits({ maxConcurrent: 1, queueTimeoutMs: 5000 }));
    q.enter();
    const admitted: string[] = [];
    const shed: string[] = [];
    const old = enterAll(q, ['old'], admitted, 'starts-sync').map((p) => p.catch(() => void shed.push('old')));
    const inSync = enterAll(q, ['in-sync'], admitted);
    assert.equal(q.standing(), false);
    await sleep(150);
    assert.equal(q.standing(), true);
    const young = enterAll(q, ['young'], admitted, 'starts-sync');
    q.leave();
    await inSync[0];
    q.leave();
    await young[0];
    assert.deepEqual(admitted, ['in-sync', 'young'], 'the request of a sync under way, then the newest starter');
    // Standing, a starter's wait is a tenth (500 ms): the old one is shed once it has waited
    // that long, though it would have waited up to 5 s in a queue that drains.
    await old[0];
    assert.deepEqual(shed, ['old']);
    q.leave();
    assert.equal(q.standing(), false);
  });

  it('token requests, info/collections and info/configuration start a sync; everything else is part of one', () => {
    assert.equal(priorityOf('GET', '/1.5/42/info/collections'), 'starts-sync');
    assert.equal(priorityOf('GET', '/1.5/42/info/configuration'), 'starts-sync');
    assert.equal(priorityOf('GET', '/1.0/sync/1.5'), 'starts-sync');
    assert.equal(priorityOf('GET', '/1.5/42/storage/meta/global'), 'in-sync');
    assert.equal(priorityOf('POST', '/1.5/42/storage/bookmarks'), 'in-sync');
    assert.equal(priorityOf('GET', '/1.5/42/info/quota'), 'in-sync');
  });

  it('maxInflight bounds running plus waiting: beyond it a request is refused at once', () => {
    const q = new AdmissionQueue(limits({ maxConcurrent: 1, maxInflight: 2 }));
    q.enter();
    const waiting = q.enter();
    waiting?.catch(() => {});
    assert.throws(() => q.enter(), (e: unknown) => e instanceof SyncError && e.code === 'unavailable');
    assert.equal(q.shed, 1);
  });

  it('maxConcurrent 0 admits everything at once', () => {
    const q = new AdmissionQueue(limits({ maxConcurrent: 0 }));
    for (let i = 0; i < 100; i++) assert.equal(q.enter(), undefined);
    assert.equal(q.running, 100);
  });
});
