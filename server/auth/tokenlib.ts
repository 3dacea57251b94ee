// Mozilla's tokenlib format (spec 7.1–7.3), so tokens from Mozilla's tokenserver work here and
// ours work with Mozilla's tools: id = base64url(JSON payload || HMAC-SHA256(signing key, payload)),
// key = base64url(HKDF(master secret, salt, "…/derive/" + id)).
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const SIGNING_INFO = 'services.mozilla.com/tokenlib/v1/signing';
const DERIVE_INFO = 'services.mozilla.com/tokenlib/v1/derive/';

export interface TokenInput {
  uid: number;
  node: string;
  expires: number;
  salt?: string;
  fxa_uid?: string;
  fxa_kid?: string;
  hashed_fxa_uid?: string;
  hashed_device_id?: string;
}

export interface TokenClaims {
  uid: number;
  node: string;
  expires: number;
  salt: string;
  fxa_uid?: string;
  fxa_kid?: string;
  hashed_fxa_uid?: string;
  hashed_device_id?: string;
  [extra: string]: unknown;
}

/** Python's urlsafe_b64encode: base64url with '=' padding. */
const b64urlPadded = (b: Buffer): string => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

const hkdf = (ikm: string, salt: string | Buffer, info: string): Buffer =>
  Buffer.from(hkdfSync('sha256', Buffer.from(ikm, 'utf8'), salt, Buffer.from(info, 'utf8'), 32));

export function signingKey(masterSecret: string): Buffer {
  // "salt = none" is RFC 5869's HashLen zero bytes, the same as an empty HMAC key.
  return hkdf(masterSecret, Buffer.alloc(32), SIGNING_INFO);
}

export function deriveKey(masterSecret: string, id: string, salt: string): string {
  return b64urlPadded(hkdf(masterSecret, Buffer.from(salt, 'ascii'), DERIVE_INFO + id));
}

export function makeToken(
  masterSecret: string,
  claims: TokenInput,
): { id: string; key: string; claims: TokenClaims } {
  const full: TokenClaims = { ...claims, salt: claims.salt ?? randomBytes(3).toString('hex') };
  const payload = Buffer.from(JSON.stringify(full), 'utf8');
  const sig = createHmac('sha256', signingKey(masterSecret)).update(payload).digest();
  const id = b64urlPadded(Buffer.concat([payload, sig]));
  return { id, key: deriveKey(masterSecret, id, full.salt), claims: full };
}

/** Verifies the signature and shape of a token id; undefined when it is not ours or malformed. */
export function parseToken(masterSecret: string, id: string, key = signingKey(masterSecret)): TokenClaims | undefined {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(id)) return undefined;
  const raw = Buffer.from(id, 'base64url');
  if (raw.length <= 32) return undefined;
  const payload = raw.subarray(0, raw.length - 32);
  const sig = raw.subarray(raw.length - 32);
  const expected = createHmac('sha256', key).update(payload).digest();
  if (!timingSafeEqual(sig, expected)) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const c = claims as Record<string, unknown>;
  if (!Number.isSafeInteger(c.uid) || (c.uid as number) < 0) return undefined;
  if (typeof c.expires !== 'number' || typeof c.salt !== 'string') return undefined;
  return c as unknown as TokenClaims;
}
