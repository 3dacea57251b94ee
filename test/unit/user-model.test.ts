// The tokenserver user model (spec 9.4), rule by rule, without I/O.
import assert from 'node:assert/strict';
import { TokenError } from '../../common/errors.js';
import { applyDecision, currentRow, decide, type UserRow } from '../../federation/user-model.js';

const row = (over: Partial<UserRow>): UserRow => ({ uid: 1, generation: 0, clientState: 'aa', keysChangedAt: 100, createdAt: 1, node: 'n', ...over });
const usable = () => true;

function refused(rows: UserRow[], login: Parameters<typeof decide>[1]): string {
  try {
    decide(rows, login, usable);
  } catch (e) {
    assert.ok(e instanceof TokenError);
    return e.detail ? `${e.code}: ${e.detail}` : e.code;
  }
  assert.fail('the login was accepted');
}

describe('user model (spec 9.4)', () => {
  it('a first login creates a row with generation 0 when absent and keys_changed_at null when absent', () => {
    assert.deepEqual(decide([], { clientState: 'aa' }, usable), { kind: 'new-uid', values: { generation: 0, clientState: 'aa', keysChangedAt: null } });
    assert.deepEqual(decide([], { clientState: 'aa', generation: 5, keysChangedAt: 4 }, usable), {
      kind: 'new-uid',
      values: { generation: 5, clientState: 'aa', keysChangedAt: 4 },
    });
  });

  it('the current row is the one with the largest (generation, created_at)', () => {
    const rows = [row({ uid: 1, generation: 5, createdAt: 9 }), row({ uid: 2, generation: 7, createdAt: 1 }), row({ uid: 3, generation: 7, createdAt: 2 })];
    assert.equal(currentRow(rows)?.uid, 3);
  });

  it('rule 1: keys_changed_at moving forward past the generation is invalid-keysChangedAt', () => {
    assert.equal(refused([row({})], { clientState: 'aa', keysChangedAt: 200, generation: 150 }), 'invalid-keysChangedAt');
  });
  it('rule 2: an empty client state after a non-empty one', () => {
    assert.equal(refused([row({})], { clientState: '', keysChangedAt: 100 }), 'invalid-client-state: empty string');
  });
  it('rule 3: a client state once replaced is stale forever', () => {
    const rows = [row({ uid: 1, clientState: 'aa', createdAt: 1, replacedAt: 2 }), row({ uid: 2, clientState: 'bb', keysChangedAt: 200, createdAt: 2 })];
    assert.equal(refused(rows, { clientState: 'aa', keysChangedAt: 300 }), 'invalid-client-state: stale value');
  });
  it('rule 4: a new client state needs a generation change when generations are known', () => {
    assert.equal(refused([row({ generation: 50 })], { clientState: 'bb', generation: 50, keysChangedAt: 40 }), 'invalid-client-state: new value with no generation change');
  });
  it('rule 5: a new client state needs a keys_changed_at change', () => {
    assert.equal(refused([row({})], { clientState: 'bb', keysChangedAt: 100 }), 'invalid-client-state: new value with no keys_changed_at change');
  });
  it('rule 6: an older generation is invalid-generation', () => {
    assert.equal(refused([row({ generation: 50 })], { clientState: 'aa', generation: 40, keysChangedAt: 100 }), 'invalid-generation');
  });
  it('rule 7: an older keys_changed_at is invalid-keysChangedAt', () => {
    assert.equal(refused([row({})], { clientState: 'aa', keysChangedAt: 99 }), 'invalid-keysChangedAt');
  });
  it('rule 8: keys_changed_at missing once it was seen', () => {
    assert.equal(refused([row({})], { clientState: 'aa' }), 'invalid-keysChangedAt');
    // Never seen (null) or 0: fine.
    assert.equal(decide([row({ keysChangedAt: null })], { clientState: 'aa' }, usable).kind, 'use');
  });

  it('a newer generation or keys_changed_at with the same keys updates the row in place (same uid)', () => {
    const d = decide([row({ generation: 10 })], { clientState: 'aa', generation: 20, keysChangedAt: 100 }, usable);
    assert.deepEqual(d, { kind: 'use', row: row({ generation: 20 }), changed: true });
    const same = decide([row({ generation: 10 })], { clientState: 'aa', generation: 10, keysChangedAt: 100 }, usable);
    assert.deepEqual(same, { kind: 'use', row: row({ generation: 10 }), changed: false });
  });

  it('without a generation, a newer keys_changed_at becomes the generation', () => {
    const d = decide([row({ generation: 0, keysChangedAt: 100 })], { clientState: 'bb', keysChangedAt: 300 }, usable);
    assert.deepEqual(d, { kind: 'new-uid', values: { generation: 300, clientState: 'bb', keysChangedAt: 300 }, node: 'n' });
  });

  it('a new client state gives a new uid on the same node and replaces every older row', () => {
    const rows = [row({ uid: 1 })];
    const d = decide(rows, { clientState: 'bb', keysChangedAt: 200 }, usable);
    assert.equal(d.kind, 'new-uid');
    const next = applyDecision(rows, d, row({ uid: 2, clientState: 'bb', keysChangedAt: 200, createdAt: 5 }), 5);
    assert.equal(next.length, 2);
    assert.equal(next[0]?.replacedAt, 5);
    assert.equal(next[1]?.replacedAt, undefined);
  });

  it('a replaced current row, or one on a node that is gone, gets a new uid with the same values', () => {
    const d = decide([row({ replacedAt: 3 })], { clientState: 'aa', keysChangedAt: 100 }, usable);
    assert.deepEqual(d, { kind: 'new-uid', values: { generation: 0, clientState: 'aa', keysChangedAt: 100 } });
    const gone = decide([row({})], { clientState: 'aa', keysChangedAt: 100 }, () => false);
    assert.equal(gone.kind, 'new-uid');
  });

  it('a revoked row (key reset, account deleted) gets no token for its key, replaced or not; a new key gets a new uid', () => {
    assert.equal(refused([row({ revokedAt: 3 })], { clientState: 'aa', keysChangedAt: 100 }), 'invalid-credentials: the key of this account was reset');
    assert.equal(refused([row({ revokedAt: 3, replacedAt: 3 })], { clientState: 'aa', keysChangedAt: 100 }), 'invalid-credentials: the key of this account was reset');
    const fresh = decide([row({ revokedAt: 3 })], { clientState: 'bb', keysChangedAt: 200 }, usable);
    assert.deepEqual(fresh, { kind: 'new-uid', values: { generation: 200, clientState: 'bb', keysChangedAt: 200 }, node: 'n' });
  });
});
