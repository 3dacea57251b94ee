// Slows password guessing without locking an owner out for good. Per account (kept in the
// account document, so every gateway sees it): after FREE failures in a row, each further
// attempt waits BASE_MS doubled per failure, at most MAX_MS; a success clears it. Per address
// (this gateway's memory): at most ADDRESS_FAILURES failures in ADDRESS_WINDOW_MS.
import { AccountsError } from '../../common/errors.js';
import type { AccountDoc } from './account-store.js';

const FREE = 5;
const BASE_MS = 30_000;
const MAX_MS = 60 * 60_000;
const ADDRESS_FAILURES = 30;
const ADDRESS_WINDOW_MS = 10 * 60_000;
const ADDRESSES = 100_000;

const retryAfter = (ms: number): AccountsError => new AccountsError('throttled', undefined, { retryAfter: Math.max(1, Math.ceil(ms / 1000)) });

export class SignInThrottle {
  private readonly addresses = new Map<string, number[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Throws `throttled` (with retryAfter seconds) while sign-ins from the address or to the account wait. */
  check(address: string, account?: AccountDoc): void {
    const now = this.now();
    const recent = this.recent(address, now);
    if (recent.length >= ADDRESS_FAILURES) throw retryAfter((recent[0] as number) + ADDRESS_WINDOW_MS - now);
    if (account?.failures && account.failures.until > now) throw retryAfter(account.failures.until - now);
  }

  /** Records a wrong password sent from the address. */
  failedFrom(address: string): void {
    const now = this.now();
    const recent = this.recent(address, now);
    recent.push(now);
    this.addresses.delete(address);
    this.addresses.set(address, recent);
    if (this.addresses.size > ADDRESSES) this.addresses.delete(this.addresses.keys().next().value as string);
  }

  /** Records a wrong password on the account (the caller stores the document). */
  failedOn(account: AccountDoc): void {
    const count = (account.failures?.count ?? 0) + 1;
    const wait = count < FREE ? 0 : Math.min(MAX_MS, BASE_MS * 2 ** (count - FREE));
    account.failures = { count, until: this.now() + wait };
  }

  private recent(address: string, now: number): number[] {
    return (this.addresses.get(address) ?? []).filter((t) => t > now - ADDRESS_WINDOW_MS);
  }
}
