import assert from 'node:assert/strict';
import { SyncError, type SyncErrorCode } from '../../common/errors.js';
import { catalog, CONFLICT_RETRY_AFTER } from '../../server/errors.js';

// Every code of the SyncErrorCode union; the `satisfies` makes the compiler reject a list
// that names a code the union does not have, and the test below checks none is missing.
const ALL_CODES = [
  'not-found',
  'method-not-allowed',
  'unauthorized',
  'bad-request',
  'invalid-bso',
  'size-limit',
  'too-large',
  'unsupported-media-type',
  'not-acceptable',
  'not-modified',
  'precondition-failed',
  'batch-not-found',
  'over-quota',
  'conflict',
  'unavailable',
  'internal',
] as const satisfies readonly SyncErrorCode[];

// Compile-time: a SyncErrorCode missing from ALL_CODES makes this assignment fail to type-check.
type Missing = Exclude<SyncErrorCode, (typeof ALL_CODES)[number]>;
const noneMissing: [Missing] extends [never] ? true : false = true;

describe('error catalog (server/errors.ts)', () => {
  it('has an entry for exactly every SyncErrorCode', () => {
    assert.equal(noneMissing, true);
    assert.deepEqual(Object.keys(catalog).sort(), [...ALL_CODES].sort());
  });

  it('every entry has a 3xx-5xx status, a non-empty doc and an integer or null Weave body', () => {
    for (const code of ALL_CODES) {
      const e = catalog[code];
      assert.ok(e, code);
      assert.ok(Number.isInteger(e.status) && e.status >= 300 && e.status <= 599, `${code}: ${e.status}`);
      assert.equal(typeof e.doc, 'string');
      assert.ok(e.doc.trim().length > 0, `${code} has a doc`);
      assert.ok(e.weave === null || (Number.isInteger(e.weave) && e.weave >= 0), `${code}: weave ${e.weave}`);
      // SyncError can be built with every code.
      assert.equal(new SyncError(code).code, code);
    }
  });

  it('304 and 412 have no Weave body', () => {
    assert.equal(catalog['not-modified'].status, 304);
    assert.equal(catalog['not-modified'].weave, null);
    assert.equal(catalog['precondition-failed'].status, 412);
    assert.equal(catalog['precondition-failed'].weave, null);
    for (const code of ALL_CODES) {
      if (catalog[code].weave === null) assert.ok([304, 412].includes(catalog[code].status), `${code} has no body`);
    }
  });

  it('over-quota is 403 with Weave code 14', () => {
    assert.equal(catalog['over-quota'].status, 403);
    assert.equal(catalog['over-quota'].weave, 14);
  });

  it('conflict is 503 with Retry-After, not 409', () => {
    assert.equal(catalog.conflict.status, 503);
    assert.equal(catalog.conflict.headers?.['Retry-After'], String(CONFLICT_RETRY_AFTER));
    assert.ok(Number(catalog.conflict.headers?.['Retry-After']) > 0);
    for (const code of ALL_CODES) assert.notEqual(catalog[code].status, 409, code);
  });

  it('maps the protocol codes to the statuses and Weave bodies of spec 6', () => {
    const expected: Partial<Record<SyncErrorCode, [number, number | null]>> = {
      'not-found': [404, 0],
      'method-not-allowed': [405, 0],
      unauthorized: [401, 0],
      'bad-request': [400, 0],
      'invalid-bso': [400, 8],
      'size-limit': [400, 17],
      'too-large': [413, 17],
      'unsupported-media-type': [415, 0],
      'not-acceptable': [406, 0],
      'batch-not-found': [400, 0],
      internal: [500, 0],
    };
    for (const [code, [status, weave]] of Object.entries(expected) as Array<[SyncErrorCode, [number, number | null]]>) {
      assert.equal(catalog[code].status, status, code);
      assert.equal(catalog[code].weave, weave, code);
    }
    assert.match(catalog.unauthorized.headers?.['WWW-Authenticate'] ?? '', /^Hawk/);
  });
});
