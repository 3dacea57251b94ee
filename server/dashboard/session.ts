// The dashboard's sign-in session: a cookie value that proves its holder gave the admin token,
// without the token itself being stored in the browser. It is `<expiry ms>.<nonce>.<mac>`,
// the MAC an HMAC-SHA256 under a key derived (HKDF) from the admin token: nothing is kept on
// the server, any gateway with the same token accepts it, and changing the token ends every
// session. A stolen cookie works until it expires; sign-out only clears the browser's copy.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'syncgate_dashboard';
const DEFAULT_TTL_MS = 12 * 3_600_000;

export class DashboardSessions {
  private readonly key: Buffer;

  constructor(
    adminToken: string,
    readonly ttlMs = DEFAULT_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', adminToken, 'syncgate', 'dashboard session v1', 32));
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest();
  }

  issue(): string {
    const payload = `${this.now() + this.ttlMs}.${randomBytes(12).toString('base64url')}`;
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  valid(value: string | undefined): boolean {
    if (!value) return false;
    const cut = value.lastIndexOf('.');
    if (cut < 0) return false;
    const payload = value.slice(0, cut);
    const given = Buffer.from(value.slice(cut + 1), 'base64url');
    const expected = this.mac(payload);
    // Equal lengths first: timingSafeEqual throws otherwise, and a length says nothing secret.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    const expires = Number(payload.split('.')[0]);
    return Number.isSafeInteger(expires) && expires > this.now();
  }
}
