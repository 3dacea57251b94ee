// The OAuth half of the accounts server, as Firefox uses Mozilla's: the page turns a signed-in
// session into an authorization code that carries the keys_jwe it encrypted to Firefox's key;
// Firefox redeems the code with its PKCE verifier, then asks for access tokens with its
// session ("fxa-credentials") whenever the cached one runs out. Access tokens are JWTs of
// syncgate's own issuer, which the token endpoint verifies like any other.
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type Koa from 'koa';
import { AccountsError } from '../../common/errors.js';
import type { AccountStore, CodeDoc } from '../accounts/account-store.js';
import { jsonBody, optionalStr, str } from '../accounts/request.js';
import type { Config } from '../config.js';
import { OLDSYNC_SCOPE, type LocalAccounts } from '../tokenserver/local-accounts.js';
import { accountsRoute, sessionOf } from './accounts.js';

/** The public OAuth clients that sign in over the WebChannel (Firefox's FxAccountsCommon). */
export const FIREFOX_CLIENTS: Record<string, string> = {
  '5882386c6d801776': 'Firefox Desktop',
  '8269bacd7bbc7f80': 'Thunderbird',
};

export const PROFILE_SCOPE = 'profile';
const SCOPES = new Set([OLDSYNC_SCOPE, PROFILE_SCOPE, 'profile:write']);
export const WEBCHANNEL_REDIRECT = 'urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel';
const CODE_MS = 10 * 60_000;
/** Firefox asks for six hours for Sync; nothing lives longer than a day. */
const DEFAULT_TTL_SEC = 6 * 3600;
const MAX_TTL_SEC = 24 * 3600;

export interface OAuthDeps {
  config: Config;
  accounts: AccountStore;
  issuer: LocalAccounts;
}

function clientOf(fields: Record<string, unknown>): string {
  const clientId = str(fields, 'client_id', /^[0-9a-f]{16}$/);
  if (!FIREFOX_CLIENTS[clientId]) throw new AccountsError('unknown-client', undefined, { clientId });
  return clientId;
}

/** The scopes asked for that this server grants, space-separated; none is an error. */
function grantedScope(asked: string): string {
  const scopes = [...new Set(asked.split(/\s+/).filter((s) => SCOPES.has(s)))].sort();
  if (scopes.length === 0) throw new AccountsError('invalid-scopes', undefined, { invalidScopes: asked });
  return scopes.join(' ');
}

function ttlOf(fields: Record<string, unknown>): number {
  const ttl = fields.ttl;
  if (ttl === undefined) return DEFAULT_TTL_SEC;
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1) throw new AccountsError('invalid-parameter', 'bad ttl', { param: 'ttl' });
  return Math.min(ttl, MAX_TTL_SEC);
}

const s256 = (verifier: string): string => createHash('sha256').update(verifier, 'ascii').digest('base64url');

export function oauthRouter(deps: OAuthDeps): Router {
  const { accounts, issuer } = deps;
  const router = new Router();

  router.post(
    '/v1/oauth/authorization',
    accountsRoute(async (ctx) => {
      const body = await jsonBody(ctx);
      const { account } = await sessionOf(ctx, deps, body);
      const f = body.fields;
      const clientId = clientOf(f);
      const state = str(f, 'state', undefined, 512);
      const method = optionalStr(f, 'code_challenge_method');
      const challenge = optionalStr(f, 'code_challenge', /^[A-Za-z0-9_-]{43}$/);
      // Firefox is a public client: without PKCE anyone who saw the code could redeem it.
      if (method !== 'S256' || !challenge) throw new AccountsError('missing-pkce');
      const responseType = optionalStr(f, 'response_type');
      if (responseType !== undefined && responseType !== 'code') throw new AccountsError('invalid-parameter', 'bad response_type', { param: 'response_type' });
      const accessType = optionalStr(f, 'access_type', /^(online|offline)$/) ?? 'online';
      const scope = grantedScope(optionalStr(f, 'scope') ?? PROFILE_SCOPE);
      const keysJwe = optionalStr(f, 'keys_jwe', /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 8192);
      const code: Omit<CodeDoc, '_id' | '_rev'> = {
        uid: account.uid,
        clientId,
        scope,
        codeChallenge: challenge,
        offline: accessType === 'offline',
        authAt: Math.floor(Date.now() / 1000),
        expiresAt: Date.now() + CODE_MS,
      };
      if (keysJwe) code.keysJwe = keysJwe;
      const value = await accounts.newCode(code);
      return { code: value, state, redirect: `${WEBCHANNEL_REDIRECT}?code=${value}&state=${encodeURIComponent(state)}` };
    }),
  );

  router.post(
    '/v1/oauth/token',
    accountsRoute(async (ctx) => {
      const body = await jsonBody(ctx);
      const f = body.fields;
      const grant = optionalStr(f, 'grant_type') ?? (f.code !== undefined ? 'authorization_code' : 'fxa-credentials');
      const clientId = clientOf(f);

      if (grant === 'authorization_code') {
        const value = str(f, 'code');
        const code = await accounts.code(value);
        if (!code) throw new AccountsError('unknown-code');
        if (code.clientId !== clientId) throw new AccountsError('code-mismatch');
        if (code.expiresAt <= Date.now()) throw new AccountsError('expired-code');
        const verifier = optionalStr(f, 'code_verifier', /^[A-Za-z0-9._~-]{43,128}$/);
        if (!verifier) throw new AccountsError('missing-pkce');
        const given = Buffer.from(s256(verifier));
        const expected = Buffer.from(code.codeChallenge);
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AccountsError('pkce-mismatch');
        // Redeemed once: a replayed code finds nothing.
        if (!(await accounts.consume(code))) throw new AccountsError('unknown-code');
        if (!(await accounts.byUid(code.uid))) throw new AccountsError('invalid-token', 'the account is gone');
        const ttl = ttlOf(f);
        const answer: Record<string, unknown> = {
          access_token: await issuer.accessToken(code.uid, code.scope, clientId, ttl),
          token_type: 'bearer',
          scope: code.scope,
          expires_in: ttl,
          auth_at: code.authAt,
        };
        if (code.offline) answer.refresh_token = await accounts.newRefreshToken(code.uid, clientId, code.scope);
        if (code.keysJwe) answer.keys_jwe = code.keysJwe;
        return answer;
      }

      if (grant === 'refresh_token') {
        const found = await accounts.refreshToken(str(f, 'refresh_token'));
        if (!found || found.token.clientId !== clientId) throw new AccountsError('invalid-token', 'unknown refresh token');
        const asked = optionalStr(f, 'scope');
        const scope = asked === undefined ? found.token.scope : grantedScope(asked);
        if (!scope.split(' ').every((s) => found.token.scope.split(' ').includes(s))) throw new AccountsError('invalid-scopes', undefined, { invalidScopes: scope });
        const ttl = ttlOf(f);
        return { access_token: await issuer.accessToken(found.account.uid, scope, clientId, ttl), token_type: 'bearer', scope, expires_in: ttl };
      }

      if (grant === 'fxa-credentials') {
        const { account } = await sessionOf(ctx, deps, body);
        const scope = grantedScope(str(f, 'scope'));
        const ttl = ttlOf(f);
        const answer: Record<string, unknown> = {
          access_token: await issuer.accessToken(account.uid, scope, clientId, ttl),
          token_type: 'bearer',
          scope,
          expires_in: ttl,
          auth_at: Math.floor(Date.now() / 1000),
        };
        if (optionalStr(f, 'access_type') === 'offline') answer.refresh_token = await accounts.newRefreshToken(account.uid, clientId, scope);
        return answer;
      }
      throw new AccountsError('invalid-parameter', 'bad grant_type', { param: 'grant_type' });
    }),
  );

  // RFC 7009: an unknown token is no error. Access tokens are JWTs that end with their time.
  router.post(
    '/v1/oauth/destroy',
    accountsRoute(async (ctx) => {
      const { fields } = await jsonBody(ctx);
      const token = str(fields, 'token', undefined, 4096);
      await accounts.revokeRefreshToken(token);
      return {};
    }),
  );

  return router;
}

/** Throws invalid-token unless the JWT is this issuer's and grants `scope`; its account. */
export async function bearerAccount(ctx: Koa.Context, deps: Pick<OAuthDeps, 'accounts' | 'issuer'>, scope: string) {
  const header = ctx.get('Authorization');
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) throw new AccountsError('invalid-token', 'no bearer token');
  const claims = await deps.issuer.verify(m[1] as string).catch(() => undefined);
  const scopes = typeof claims?.scope === 'string' ? claims.scope.split(/\s+/) : [];
  if (!claims?.sub || !scopes.includes(scope)) throw new AccountsError('invalid-token', 'bad bearer token');
  const account = await deps.accounts.byUid(claims.sub);
  if (!account) throw new AccountsError('invalid-token', 'the account is gone');
  return account;
}
