// The public keys of syncgate's local-account issuer, where OAuth servers publish theirs
// (FxA: /v1/jwks), so another gateway or tool can verify local bearer tokens.
import Router from '@koa/router';
import type Koa from 'koa';
import type { LocalAccounts } from '../tokenserver/local-accounts.js';
import { sendJson } from '../respond.js';

export function jwksRouter(accounts: LocalAccounts): Router {
  const router = new Router();
  const serve = async (ctx: Koa.Context): Promise<void> => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    sendJson(ctx, await accounts.jwks());
  };
  router.get('/v1/jwks', serve);
  router.get('/.well-known/jwks.json', serve);
  return router;
}
