// The operator's side of the accounts server, under the admin API: one-time links to sign up
// (when sign-up is off, the only way in) and to set a new password without the old one, and
// deleting an account. A link carries a token whose hash alone is stored; the person who
// follows it chooses the password in the page, so the operator never learns it either.
import type Router from '@koa/router';
import type Koa from 'koa';
import { AdminError } from '../../federation/node-admin.js';
import { normalizeEmail, type AccountStore, type LinkKind } from '../accounts/account-store.js';
import { publicBaseUrl } from '../auth/authenticate.js';
import type { Config } from '../config.js';
import { EMAIL } from '../tokenserver/local-accounts.js';

const INVITE_MS = 7 * 24 * 3600_000;
const RESET_MS = 24 * 3600_000;

type Json = (ctx: Koa.Context, status: number, body: unknown) => void;

export interface AccountsAdmin {
  store: AccountStore;
  config: Config;
  /** The storage of an account (its `sub`) whose key is dead: refused at once (federation/registry.ts). */
  revokeStorage(sub: string, how: 'reset' | 'deleted'): Promise<void>;
}

export function accountAdminRoutes(router: Router, admin: AccountsAdmin, json: Json, body: (ctx: Koa.Context) => Promise<Record<string, unknown>>): void {
  const { store: accounts, config, revokeStorage } = admin;
  const linkAnswer = async (ctx: Koa.Context, kind: LinkKind, email: string) => {
    const { token, expiresAt } = await accounts.newLink(kind, email, kind === 'invite' ? INVITE_MS : RESET_MS);
    const base = publicBaseUrl(ctx, config);
    return { email, link: `${base}/?${kind}=${token}&email=${encodeURIComponent(email)}`, expiresAt: new Date(expiresAt).toISOString() };
  };
  const existing = async (ctx: Koa.Context) => {
    const account = await accounts.byEmail(ctx.params.email ?? '');
    if (!account) throw new AdminError(404, 'no such account');
    return account;
  };

  router.get('/accounts', async (ctx) =>
    json(ctx, 200, (await accounts.list()).map((a) => ({
      email: a.email,
      created: new Date(a.createdAt).toISOString(),
      signsIn: a.password !== undefined,
      devices: Object.values(a.sessions).filter((s) => s.device).length,
    }))),
  );
  router.post('/accounts', async (ctx) => {
    const b = await body(ctx);
    const email = typeof b.email === 'string' ? normalizeEmail(b.email) : '';
    if (!EMAIL.test(email)) throw new AdminError(400, 'email (an address) is required');
    if (await accounts.byEmail(email)) throw new AdminError(409, `there is already an account ${email}`);
    json(ctx, 201, await linkAnswer(ctx, 'invite', email));
  });
  router.post('/accounts/:email/reset', async (ctx) => {
    const account = await existing(ctx);
    if (!account.password) throw new AdminError(409, 'a script account has no password to reset');
    json(ctx, 200, await linkAnswer(ctx, 'reset', account.email));
  });
  router.delete('/accounts/:email', async (ctx) => {
    const account = await existing(ctx);
    await accounts.delete(account.uid);
    await revokeStorage(account.uid, 'deleted');
    json(ctx, 200, { deleted: account.email });
  });
}
