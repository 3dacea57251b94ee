// The token endpoint, GET /1.0/sync/1.5 (spec 9): an OAuth access token and X-KeyID in,
// storage credentials (Mozilla tokenlib format) for the account's current uid out. Checks run
// in Mozilla's order: authentication before the application and version (spec 9.2).
import { createHmac, hkdfSync } from 'node:crypto';
import Router from '@koa/router';
import type Koa from 'koa';
import { TokenError } from '../../common/errors.js';
import { CouchError } from '../../storage/couch/couch-client.js';
import type { Registry } from '../../federation/registry.js';
import { publicBaseUrl } from '../auth/authenticate.js';
import { makeToken } from '../auth/tokenlib.js';
import type { Config } from '../config.js';
import { writeTokenError } from '../errors.js';
import { checkClientStateHeader, parseKeyId, type KeyId } from '../tokenserver/key-id.js';
import type { OAuthVerifier } from '../tokenserver/oauth-verifier.js';

export interface TokenDeps {
  config: Config;
  masterSecret: string;
  verifier: OAuthVerifier;
  registry: Registry;
}

function bearerOf(header: string): string {
  const space = header.indexOf(' ');
  if (header === '' || space < 0) throw new TokenError('unauthorized');
  if (header.slice(0, space).toLowerCase() !== 'bearer') throw new TokenError('unsupported');
  const token = header.slice(space + 1).trim();
  if (token === '') throw new TokenError('invalid-credentials', 'empty bearer');
  return token;
}

/** ?duration= may shorten the token's life, never lengthen it; anything else is ignored. */
function durationOf(ctx: Koa.Context, dflt: number): number {
  const d = new URLSearchParams(ctx.querystring).get('duration');
  if (d === null || !/^\d{1,10}$/.test(d)) return dflt;
  const n = Number(d);
  return n > 0 && n <= dflt ? n : dflt;
}

export function tokenRouter(deps: TokenDeps): Router {
  const { config, masterSecret, verifier, registry } = deps;
  const ts = config.tokenServer;
  const metricsKey = Buffer.from(hkdfSync('sha256', masterSecret, Buffer.alloc(0), 'syncgate/fxa-metrics-hash', 32));
  const hashFxaUid = (sub: string): string => createHmac('sha256', metricsKey).update(sub).digest('hex').slice(0, 32);

  const handler: Koa.Middleware = async (ctx) => {
    ctx.state.route = 'token';
    // Firefox and the Android client read these on every answer, errors included.
    ctx.set('X-Timestamp', String(Math.floor(Date.now() / 1000)));
    ctx.set('X-Content-Type-Options', 'nosniff');
    try {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new TokenError('method-not-allowed');
      const bearer = bearerOf(ctx.get('Authorization'));
      const stateHeader = ctx.headers['x-client-state'] === undefined ? undefined : ctx.get('X-Client-State');
      checkClientStateHeader(stateHeader, undefined);
      const account = await verifier.verify(bearer);
      const keyId: KeyId = parseKeyId(ctx.get('X-KeyID'));
      checkClientStateHeader(stateHeader, keyId);
      if (ctx.params.app !== 'sync') throw new TokenError('unsupported-application');
      if (ctx.params.version !== '1.5') throw new TokenError('unsupported-version', ctx.params.version);

      const login = { clientState: keyId.clientState } as { clientState: string; generation?: number; keysChangedAt?: number };
      if (account.generation !== undefined) login.generation = account.generation;
      if (keyId.keysChangedAt !== undefined) login.keysChangedAt = keyId.keysChangedAt;
      const row = await registry.login(account.email, login);

      const duration = durationOf(ctx, config.tokenDuration);
      const node = registry.node(row.node);
      const base = node?.url ?? publicBaseUrl(ctx, config);
      const hashed = hashFxaUid(account.sub);
      const kid = `${String(row.keysChangedAt || row.generation).padStart(13, '0')}-${Buffer.from(row.clientState, 'hex').toString('base64url')}`;
      const token = makeToken(masterSecret, {
        uid: row.uid,
        node: base,
        expires: Math.floor(Date.now() / 1000) + duration,
        fxa_uid: account.sub,
        fxa_kid: kid,
        hashed_fxa_uid: hashed,
      });
      ctx.state.uid = String(row.uid);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify({
        id: token.id,
        key: token.key,
        uid: row.uid,
        api_endpoint: `${base}/1.5/${row.uid}`,
        duration,
        hashed_fxa_uid: hashed,
        hashalg: 'sha256',
        node_type: ts.nodeType,
      });
    } catch (err) {
      // A registry that cannot be reached or answers what we cannot use: a 503 the client retries.
      writeTokenError(ctx, err instanceof TokenError || !(err instanceof CouchError) ? err : new TokenError('unavailable', 'registry unreachable', { cause: err }));
    }
  };

  const router = new Router();
  router.all('/1.0/:app/:version', handler);
  return router;
}
