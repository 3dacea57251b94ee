// The open-user pool and the registry's placement cache evict from the front of a
// RecencyMap: what is used keeps away from the front, what is not drifts to it.
import assert from 'node:assert/strict';
import { RecencyMap } from '../../common/recency-map.js';

const filled = (n: number): RecencyMap<number, string> => {
  const m = new RecencyMap<number, string>();
  for (let i = 0; i < n; i++) m.set(i, `v${i}`);
  return m;
};

describe('RecencyMap', () => {
  it('iterates least recently set first', () => {
    assert.deepEqual([...filled(4).keys()], [0, 1, 2, 3]);
  });

  it('moves an entry of the older half to the end when it is used', () => {
    const m = filled(10);
    assert.equal(m.get(2), 'v2');
    assert.deepEqual([...m.keys()], [0, 1, 3, 4, 5, 6, 7, 8, 9, 2]);
  });

  it('leaves an entry of the newer half where it is, without losing it', () => {
    const m = filled(10);
    assert.equal(m.get(8), 'v8');
    assert.deepEqual([...m.keys()], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('keeps an entry in steady use out of the oldest half however many others come and go', () => {
    const m = filled(100);
    for (let i = 100; i < 10_000; i++) {
      m.get(0);
      m.set(i, `v${i}`);
      m.delete([...m.keys()][0] as number); // evict the oldest, as the pool does
    }
    assert.ok(m.has(0), 'the entry in use was evicted');
    const position = [...m.keys()].indexOf(0);
    assert.ok(position >= 49, `the entry in use is at ${position} of 100`);
  });

  it('peek and replace read and change a value without moving it', () => {
    const m = filled(10);
    assert.equal(m.peek(1), 'v1');
    m.replace(1, 'w1');
    m.replace(42, 'absent');
    assert.equal(m.peek(1), 'w1');
    assert.equal(m.has(42), false);
    assert.deepEqual([...m.keys()].slice(0, 2), [0, 1]);
  });

  it('set replaces a value and makes it the newest; delete and clear remove', () => {
    const m = filled(3);
    m.set(0, 'again');
    assert.deepEqual([...m.entries()], [
      [1, 'v1'],
      [2, 'v2'],
      [0, 'again'],
    ]);
    assert.equal(m.delete(1), true);
    assert.equal(m.size, 2);
    m.clear();
    assert.equal(m.size, 0);
  });
});
