// The request log read back for `syncgate load --replay`: storage requests only, users in order
// of appearance, times counted from the first request's start.
import assert from 'node:assert/strict';
import { parseRequestLog } from '../../load/request-log.js';

const line = (o: Record<string, unknown>) => JSON.stringify({ level: 30, app: 'syncgate', msg: 'request', ...o });

describe('request log for replay', () => {
  it('keeps storage requests in the order they were sent, skips everything else', () => {
    const text = [
      line({ time: 10_050, ms: 50, method: 'GET', route: 'info/collections', status: 304, user: 'aa', cond: 'ims' }),
      line({ time: 10_020, ms: 20, method: 'POST', route: 'collection', status: 202, user: 'bb', collection: 'history', records: 30, bytes: 15000, batch: 'open' }),
      line({ time: 10_500, ms: 5, method: 'GET', route: 'collection', status: 200, user: 'aa', collection: 'history', records: 30, full: true }),
      line({ time: 10_600, ms: 1, method: 'GET', route: 'token', status: 200 }), // no user: the token route
      line({ time: 10_700, ms: 1, method: 'GET', route: '__heartbeat__', status: 200, user: 'aa' }),
      JSON.stringify({ level: 30, msg: 'listening', time: 1 }),
      'not json',
      '',
    ].join('\n');
    const log = parseRequestLog(text);
    assert.equal(log.skipped, 4);
    assert.equal(log.users, 2);
    assert.deepEqual(
      log.requests.map((r) => [r.at, r.user, r.method, r.route]),
      [
        [0, 0, 'GET', 'info/collections'],
        [0, 1, 'POST', 'collection'],
        [495, 0, 'GET', 'collection'],
      ],
    );
    assert.equal(log.seconds, 0.495);
    const post = log.requests.find((r) => r.method === 'POST')!;
    assert.deepEqual([post.collection, post.records, post.bytes, post.batch], ['history', 30, 15000, 'open']);
    assert.equal(log.requests[0]!.cond, 'ims');
    assert.equal(log.requests[2]!.full, true);
  });
});
