// The headers that carry the client's sync key state (spec 9.1): X-KeyID
// `<keys_changed_at>-<base64url client state>` and the legacy hex X-Client-State.
import { TokenError } from '../../common/errors.js';

export interface KeyId {
  /** undefined when 0 (spec 9.3 step 6). */
  keysChangedAt?: number;
  /** Hex, as the registry stores and compares it. */
  clientState: string;
}

export function parseKeyId(header: string): KeyId {
  if (header === '') throw new TokenError('invalid-key-id');
  const dash = header.indexOf('-');
  if (dash < 1) throw new TokenError('invalid-credentials', 'X-KeyID without a dash');
  const ts = header.slice(0, dash);
  const b64 = header.slice(dash + 1);
  if (!/^\d{1,16}$/.test(ts) || !Number.isSafeInteger(Number(ts))) throw new TokenError('invalid-credentials', 'X-KeyID timestamp');
  // base64url without padding; its bytes are the first 16 of SHA-256(kB), or fewer.
  if (!/^[A-Za-z0-9_-]*$/.test(b64) || b64.length % 4 === 1) throw new TokenError('invalid-credentials', 'X-KeyID client state');
  const bytes = Buffer.from(b64, 'base64url');
  if (bytes.length > 16) throw new TokenError('invalid-credentials', 'X-KeyID client state too long');
  const keyId: KeyId = { clientState: bytes.toString('hex') };
  const kca = Number(ts);
  if (kca > 0) keyId.keysChangedAt = kca;
  return keyId;
}

const CLIENT_STATE = /^[a-zA-Z0-9._-]{1,32}$/;

/** The optional legacy header: malformed is a 400, different from X-KeyID's a 401. */
export function checkClientStateHeader(header: string | undefined, keyId: KeyId | undefined): void {
  if (header === undefined) return;
  if (!CLIENT_STATE.test(header)) throw new TokenError('bad-client-state');
  if (keyId && header.toLowerCase() !== keyId.clientState) throw new TokenError('client-state-mismatch');
}
