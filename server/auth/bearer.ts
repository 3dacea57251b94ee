// The operators' credentials (the admin token, the metrics token): a bearer compared in
// constant time. Tokens are kept and compared as SHA-256 digests, of equal length whatever was
// sent, so the comparison's time says nothing about the token.
import { createHash, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';

/** The form in which a token is kept and compared. */
export const tokenDigest = (token: string): Buffer => createHash('sha256').update(token).digest();

/** Whether `given` is the token of digest `expected`. */
export function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(tokenDigest(given), expected);
}

/** The token of an `Authorization: Bearer <token>` header ('' without one). */
export function bearerOf(ctx: Koa.Context): string {
  return /^Bearer (.+)$/i.exec(ctx.get('Authorization'))?.[1] ?? '';
}

/** Whether the request carries `Bearer <token>`, the token of digest `expected`. */
export function bearerMatches(ctx: Koa.Context, expected: Buffer): boolean {
  return tokenMatches(bearerOf(ctx), expected);
}
