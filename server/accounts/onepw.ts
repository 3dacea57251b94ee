// Mozilla accounts' "onepw" key scheme, as its auth server and Firefox compute it
// (shared/spec/firefox-accounts.md section 4). The page derives authPW and unwrapBKey from the
// password; the server keeps only a slow hash of authPW and wrapWrapKb, from which it can make
// wrapKb only while it holds authPW, and kB = wrapKb XOR unwrapBKey never exists here.
// The client half (credentials, openKeyBundle, syncKey) is here too: the CLI and the tests
// act as the page does, with the same functions.
import { createHash, createHmac, hkdfSync, pbkdf2Sync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const NS = 'identity.mozilla.com/picl/v1/';

export function hkdf(ikm: Buffer, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), NS + info, length));
}

export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new Error('xor of buffers of different lengths');
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

export type TokenType = 'sessionToken' | 'keyFetchToken' | 'accountResetToken';

/** A token's Hawk credentials: id (hex, what the Hawk header names) and MAC key, plus 32 bytes more. */
export function tokenKeys(token: Buffer, type: TokenType): { id: string; authKey: Buffer; extra: Buffer } {
  const k = hkdf(token, type, 96);
  return { id: k.subarray(0, 32).toString('hex'), authKey: k.subarray(32, 64), extra: k.subarray(64, 96) };
}

/** The answer of GET /v1/account/keys: kA || wrapKb, encrypted and MACed with the key-fetch token's keys. */
export function keyBundle(extra: Buffer, kA: Buffer, wrapKb: Buffer): string {
  const k = hkdf(extra, 'account/keys', 96);
  const ciphertext = xor(Buffer.concat([kA, wrapKb]), k.subarray(32, 96));
  const mac = createHmac('sha256', k.subarray(0, 32)).update(ciphertext).digest();
  return Buffer.concat([ciphertext, mac]).toString('hex');
}

export function openKeyBundle(extra: Buffer, bundleHex: string): { kA: Buffer; wrapKb: Buffer } {
  const bundle = Buffer.from(bundleHex, 'hex');
  const k = hkdf(extra, 'account/keys', 96);
  const ciphertext = bundle.subarray(0, 64);
  const mac = createHmac('sha256', k.subarray(0, 32)).update(ciphertext).digest();
  if (bundle.length !== 96 || !timingSafeEqual(mac, bundle.subarray(64))) throw new Error('key bundle MAC mismatch');
  const plain = xor(ciphertext, k.subarray(32, 96));
  return { kA: plain.subarray(0, 32), wrapKb: plain.subarray(32, 64) };
}

/** What the page derives from the password (PBKDF2 with the email as salt, then HKDF). */
export function credentials(email: string, password: string): { authPW: Buffer; unwrapBKey: Buffer } {
  const quickStretched = pbkdf2Sync(Buffer.from(password, 'utf8'), `${NS}quickStretch:${email}`, 1000, 32, 'sha256');
  return { authPW: hkdf(quickStretched, 'authPW', 32), unwrapBKey: hkdf(quickStretched, 'unwrapBkey', 32) };
}

/** The oldsync scoped key Firefox receives: k (64 bytes) and kid `<keys changed at, ms>-<fingerprint>`. */
export function syncKey(kB: Buffer, keysChangedAt: number): { k: string; kid: string } {
  const fingerprint = createHash('sha256').update(kB).digest().subarray(0, 16).toString('base64url');
  return { k: hkdf(kB, 'oldsync', 64).toString('base64url'), kid: `${keysChangedAt}-${fingerprint}` };
}

// scrypt as Mozilla's server stretches authPW: N = 2^16, r = 8, p = 1 (64 MiB, on libuv's pool).
const SCRYPT = { N: 65536, r: 8, p: 1, maxmem: 160 * 1024 * 1024 };

function stretch(authPW: Buffer, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(authPW, salt, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}

/** What the server stores of a password: never authPW itself, never wrapKb. */
export interface PasswordRecord {
  authSalt: string;
  verifyHash: string;
  wrapWrapKb: string;
}

/** A new password's record; wrapKb is the account's (kept on a password change) or, new, random. */
export async function passwordRecord(authPW: Buffer, wrapKb: Buffer): Promise<PasswordRecord> {
  const authSalt = randomBytes(32);
  const stretched = await stretch(authPW, authSalt);
  return {
    authSalt: authSalt.toString('hex'),
    verifyHash: hkdf(stretched, 'verifyHash', 32).toString('hex'),
    wrapWrapKb: xor(hkdf(stretched, 'wrapwrapKey', 32), wrapKb).toString('hex'),
  };
}

/** wrapKb if authPW is the password's, undefined otherwise. */
export async function unwrapKb(authPW: Buffer, record: PasswordRecord): Promise<Buffer | undefined> {
  const stretched = await stretch(authPW, Buffer.from(record.authSalt, 'hex'));
  const verifyHash = hkdf(stretched, 'verifyHash', 32);
  if (!timingSafeEqual(verifyHash, Buffer.from(record.verifyHash, 'hex'))) return undefined;
  return xor(hkdf(stretched, 'wrapwrapKey', 32), Buffer.from(record.wrapWrapKb, 'hex'));
}
