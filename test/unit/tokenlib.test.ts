import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { deriveKey, makeToken, parseToken, signingKey } from '../../server/auth/tokenlib.js';

const SECRET = 'a-master-secret-of-some-length';
const claims = { uid: 42, node: 'https://sync.example.com', expires: 1_900_000_000 };

/** RFC 5869 HKDF-SHA256 written out with HMACs, independent of node's hkdfSync. */
function hkdfByHand(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  let t = Buffer.alloc(0);
  const out: Buffer[] = [];
  for (let i = 1; Buffer.concat(out).length < length; i++) {
    t = createHmac('sha256', prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, length);
}

const b64urlPadded = (b: Buffer): string => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

describe('tokenlib (server/auth/tokenlib.ts)', () => {
  it('makeToken then parseToken returns the claims, with a 6-hex-char salt', () => {
    const t = makeToken(SECRET, { ...claims, fxa_uid: 'f'.repeat(32), fxa_kid: '0000000001234-qqo' });
    const parsed = parseToken(SECRET, t.id);
    assert.ok(parsed);
    assert.equal(parsed.uid, 42);
    assert.equal(parsed.node, claims.node);
    assert.equal(parsed.expires, claims.expires);
    assert.equal(parsed.fxa_uid, 'f'.repeat(32));
    assert.equal(parsed.fxa_kid, '0000000001234-qqo');
    assert.match(parsed.salt, /^[0-9a-f]{6}$/);
    assert.deepEqual(parsed, t.claims);
  });

  it('the id is urlsafe base64 with = padding of JSON payload || HMAC-SHA256(signing key, payload)', () => {
    let sawPadding = false;
    for (let i = 0; i < 12; i++) {
      const t = makeToken(SECRET, { ...claims, node: 'https://n.example' + 'x'.repeat(i) });
      assert.match(t.id, /^[A-Za-z0-9_-]+={0,2}$/);
      assert.equal(t.id.length % 4, 0, 'padded to a multiple of 4');
      if (t.id.endsWith('=')) sawPadding = true;
      const raw = Buffer.from(t.id.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      const payload = raw.subarray(0, raw.length - 32);
      assert.deepEqual(JSON.parse(payload.toString('utf8')), t.claims);
      const sig = createHmac('sha256', signingKey(SECRET)).update(payload).digest();
      assert.deepEqual(raw.subarray(raw.length - 32), sig);
    }
    assert.ok(sawPadding, 'some ids need padding and keep it');
  });

  it('the key is 44 chars of padded urlsafe base64 (32 bytes)', () => {
    const t = makeToken(SECRET, claims);
    assert.equal(t.key.length, 44);
    assert.match(t.key, /^[A-Za-z0-9_-]{43}=$/);
  });

  it('the signing key is HKDF-SHA256(master, 32 zero bytes, "services.mozilla.com/tokenlib/v1/signing")', () => {
    const expected = Buffer.from(
      hkdfSync('sha256', Buffer.from(SECRET, 'utf8'), Buffer.alloc(32), 'services.mozilla.com/tokenlib/v1/signing', 32),
    );
    assert.deepEqual(signingKey(SECRET), expected);
    const byHand = hkdfByHand(Buffer.from(SECRET), Buffer.alloc(32), Buffer.from('services.mozilla.com/tokenlib/v1/signing'), 32);
    assert.deepEqual(signingKey(SECRET), byHand);
    // An empty salt is the same thing in RFC 5869 ("not provided" = HashLen zeros).
    assert.deepEqual(signingKey(SECRET), hkdfByHand(Buffer.from(SECRET), Buffer.alloc(0), Buffer.from('services.mozilla.com/tokenlib/v1/signing'), 32));
  });

  it('the key is HKDF-SHA256(master, ASCII salt, "services.mozilla.com/tokenlib/v1/derive/" + id)', () => {
    const t = makeToken(SECRET, { ...claims, salt: 'abc123' });
    assert.equal(t.claims.salt, 'abc123');
    const expected = Buffer.from(
      hkdfSync('sha256', Buffer.from(SECRET, 'utf8'), Buffer.from('abc123', 'ascii'), 'services.mozilla.com/tokenlib/v1/derive/' + t.id, 32),
    );
    assert.equal(t.key, b64urlPadded(expected));
    assert.equal(deriveKey(SECRET, t.id, 'abc123'), t.key);
    assert.notEqual(deriveKey(SECRET, t.id, 'abc124'), t.key);
  });

  it('the master secret is used as UTF-8 text, not hex-decoded', () => {
    const hexSecret = '00112233445566778899aabbccddeeff';
    const asText = Buffer.from(hkdfSync('sha256', Buffer.from(hexSecret, 'utf8'), Buffer.alloc(32), 'services.mozilla.com/tokenlib/v1/signing', 32));
    assert.deepEqual(signingKey(hexSecret), asText);
  });

  it('parseToken rejects a tampered id', () => {
    const t = makeToken(SECRET, claims);
    const raw = Buffer.from(t.id, 'base64url');
    // Another uid in the payload, the original signature.
    const payload = Buffer.from(JSON.stringify({ ...t.claims, uid: 43 }));
    const forged = b64urlPadded(Buffer.concat([payload, raw.subarray(raw.length - 32)]));
    assert.equal(parseToken(SECRET, forged), undefined);
    // One flipped bit in the signature.
    const flipped = Buffer.from(raw);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    assert.equal(parseToken(SECRET, b64urlPadded(flipped)), undefined);
    // One flipped bit in the payload.
    const flipped2 = Buffer.from(raw);
    flipped2[3] = flipped2[3]! ^ 4;
    assert.equal(parseToken(SECRET, b64urlPadded(flipped2)), undefined);
  });

  it('parseToken rejects short, empty and non-base64 ids', () => {
    assert.equal(parseToken(SECRET, ''), undefined);
    assert.equal(parseToken(SECRET, b64urlPadded(Buffer.alloc(32))), undefined);
    const t = makeToken(SECRET, claims);
    const raw = Buffer.from(t.id, 'base64url');
    assert.equal(parseToken(SECRET, b64urlPadded(raw.subarray(raw.length - 32))), undefined); // signature only
    assert.equal(parseToken(SECRET, t.id.slice(0, 20)), undefined);
    assert.equal(parseToken(SECRET, t.id + '"'), undefined);
    assert.equal(parseToken(SECRET, 'not a token!'), undefined);
  });

  it('parseToken rejects an id signed with another master secret', () => {
    const t = makeToken('some-other-master-secret', claims);
    assert.equal(parseToken(SECRET, t.id), undefined);
    assert.ok(parseToken('some-other-master-secret', t.id));
  });

  it('parseToken rejects a correctly signed payload without an integer uid, numeric expires or salt', () => {
    const sign = (obj: unknown): string => {
      const payload = Buffer.from(JSON.stringify(obj));
      return b64urlPadded(Buffer.concat([payload, createHmac('sha256', signingKey(SECRET)).update(payload).digest()]));
    };
    assert.ok(parseToken(SECRET, sign({ uid: 1, expires: 2, salt: 'aabbcc', node: 'x' })));
    assert.equal(parseToken(SECRET, sign({ uid: '1', expires: 2, salt: 'aabbcc' })), undefined);
    assert.equal(parseToken(SECRET, sign({ uid: 1.5, expires: 2, salt: 'aabbcc' })), undefined);
    assert.equal(parseToken(SECRET, sign({ uid: 1, expires: '2', salt: 'aabbcc' })), undefined);
    assert.equal(parseToken(SECRET, sign({ uid: 1, expires: 2 })), undefined);
    assert.equal(parseToken(SECRET, sign([1, 2, 3])), undefined);
  });
});
