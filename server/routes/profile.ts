// The profile server Firefox asks for the signed-in user's name and picture (with a `profile`
// access token), and the autoconfig document that names syncgate as every server Firefox needs.
import Router from '@koa/router';
import type Koa from 'koa';
import { publicBaseUrl } from '../auth/authenticate.js';
import type { Config } from '../config.js';
import { sendJson } from '../respond.js';
import { accountsRoute } from './accounts.js';
import { bearerAccount, PROFILE_SCOPE, type OAuthDeps } from './oauth.js';

const AVATAR =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><circle cx="32" cy="32" r="32" fill="#5b5b66"/>' +
  '<circle cx="32" cy="25" r="11" fill="#fbfbfe"/><path d="M12 54c3-11 11-16 20-16s17 5 20 16" fill="#fbfbfe"/></svg>';

export function profileRouter(deps: OAuthDeps): Router {
  const router = new Router();
  router.get(
    '/v1/profile',
    accountsRoute(async (ctx) => {
      const account = await bearerAccount(ctx, deps, PROFILE_SCOPE);
      const base = publicBaseUrl(ctx, deps.config);
      // Firefox throws unless uid is the signed-in account's.
      return { uid: account.uid, email: account.email, displayName: null, avatar: `${base}/v1/avatar/default.svg`, avatarDefault: true, locale: 'en-US', amrValues: ['pwd'], twoFactorAuthentication: false };
    }),
  );
  router.get('/v1/avatar/default.svg', (ctx) => {
    ctx.type = 'image/svg+xml';
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = AVATAR;
  });
  return router;
}

/** What Firefox reads with identity.fxaccounts.autoconfig.uri set to this server. */
export function clientConfiguration(ctx: Koa.Context, config: Config): Record<string, string> {
  const base = publicBaseUrl(ctx, config);
  return {
    auth_server_base_url: base,
    oauth_server_base_url: base,
    profile_server_base_url: base,
    sync_tokenserver_base_url: base,
    // Pairing a phone by QR code needs Mozilla's channel server; syncgate has none.
    pairing_server_base_uri: base.replace(/^http/, 'ws'),
  };
}

export function wellKnownRouter(config: Config): Router {
  const router = new Router();
  router.get('/.well-known/fxa-client-configuration', (ctx) => {
    ctx.state.route = 'accounts /.well-known/fxa-client-configuration';
    ctx.set('Cache-Control', 'no-cache');
    sendJson(ctx, clientConfiguration(ctx, config));
  });
  return router;
}
