// Hawk on the accounts server's tokens (session, key-fetch), as Firefox signs its calls: the
// MAC over the public host and port, and, when the header names one, the payload hash over
// the body as sent. Like Mozilla's server, no timestamp window and no nonce cache: Firefox
// learns the server's clock from the Date header, and a replayed call is one the client could
// make again anyway.
import { createHash, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import { AccountsError } from '../../common/errors.js';
import { publicRequest } from '../auth/authenticate.js';
import { macMatches, parseHawkHeader } from '../auth/hawk.js';
import type { Config } from '../config.js';

export function payloadHash(contentType: string, body: string): string {
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return createHash('sha256').update(`hawk.1.payload\n${type}\n${body}\n`, 'utf8').digest('base64');
}

/**
 * The Hawk id of a verified request, and what `lookup` found for it. `body` is the request's
 * raw body (undefined for a GET): a hash in the header is checked against it.
 */
export async function verifyHawk<T extends { authKey: string }>(
  ctx: Koa.Context,
  config: Config,
  lookup: (id: string) => Promise<T | undefined>,
  body?: string,
): Promise<{ id: string; found: T }> {
  const attrs = parseHawkHeader(ctx.get('Authorization'));
  if (!attrs) throw new AccountsError('invalid-token', 'no Hawk header');
  const found = await lookup(attrs.id);
  if (!found) throw new AccountsError('invalid-token', 'unknown token');
  if (!macMatches(Buffer.from(found.authKey, 'hex'), attrs, publicRequest(ctx, config))) throw new AccountsError('invalid-signature', 'bad MAC');
  if (attrs.hash !== undefined && body !== undefined) {
    const expected = Buffer.from(payloadHash(ctx.get('Content-Type'), body));
    const given = Buffer.from(attrs.hash);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new AccountsError('invalid-signature', 'payload hash');
  }
  return { id: attrs.id, found };
}
