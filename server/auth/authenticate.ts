// Hawk authentication of storage requests (spec 7.5): token signature, expiry (with the
// info/collections grace), MAC over the public request, and the token's uid equal to the
// path's. The uid the handlers use comes from the verified token, never from the path.
import type Koa from 'koa';
import { SyncError } from '../../common/errors.js';
import type { Config } from '../config.js';
import { macMatches, parseHawkHeader, type HawkRequest } from './hawk.js';
import { deriveKey, parseToken, signingKey, type TokenClaims } from './tokenlib.js';

export interface AuthState {
  uid: string;
}

function firstForwarded(value: string, key: 'host' | 'proto'): string | undefined {
  const first = value.split(',')[0] ?? '';
  for (const pair of first.split(';')) {
    const [k, v] = pair.split('=').map((s) => s.trim());
    if (k?.toLowerCase() === key && v) return v.replace(/^"|"$/g, '');
  }
  return undefined;
}

/** Host (with port) and scheme the client used: Host, or forwarding headers from a trusted proxy. */
function publicOrigin(ctx: Koa.Context, config: Config): { host: string; proto: string } {
  let host = ctx.get('Host');
  let proto = ctx.protocol;
  if (config.trustProxy) {
    const fwd = ctx.get('Forwarded');
    host = (fwd && firstForwarded(fwd, 'host')) || ctx.get('X-Forwarded-Host').split(',')[0]?.trim() || host;
    proto = (fwd && firstForwarded(fwd, 'proto')) || ctx.get('X-Forwarded-Proto').split(',')[0]?.trim() || proto;
  }
  return { host, proto };
}

/** The base URL clients reach this gateway at: SYNCGATE_PUBLIC_URL, or what the request says. */
export function publicBaseUrl(ctx: Koa.Context, config: Config): string {
  if (config.publicUrl) return config.publicUrl;
  const { host, proto } = publicOrigin(ctx, config);
  return `${proto}://${host}`;
}

let lastPublicUrl: { url: string; prefix: string; host: string; port: number } | undefined;

/** SYNCGATE_PUBLIC_URL taken apart once, not on every request. */
function parsedPublicUrl(url: string): { prefix: string; host: string; port: number } {
  if (lastPublicUrl?.url !== url) {
    const u = new URL(url);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    lastPublicUrl = { url, prefix: u.pathname.replace(/\/$/, ''), host: u.hostname, port };
  }
  return lastPublicUrl;
}

/** The host, port and path the client signed: what it saw, not what the proxy forwarded. */
export function publicRequest(ctx: Koa.Context, config: Config): HawkRequest {
  const raw = ctx.req.url ?? '/';
  if (config.publicUrl) {
    const { prefix, host, port } = parsedPublicUrl(config.publicUrl);
    return { method: ctx.method, resource: prefix + raw, host, port };
  }
  const { host, proto } = publicOrigin(ctx, config);
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  const hostname = m?.[1] ?? host;
  const port = m?.[2] ? Number(m[2]) : proto === 'https' ? 443 : 80;
  return { method: ctx.method, resource: raw, host: hostname, port };
}

interface Verified {
  claims: TokenClaims;
  key: string;
}

const TOKEN_CACHE = 10_000;

export function authenticate(config: Config, masterSecret: string): Koa.Middleware {
  const signing = signingKey(masterSecret);
  // A token is used for every request of its hour: its signature check and key derivation are
  // done once. Keyed by the whole id (payload and signature), so nothing unverified gets in.
  const verified = new Map<string, Verified>();
  const verify = (id: string): Verified | undefined => {
    const hit = verified.get(id);
    if (hit) return hit;
    const claims = parseToken(masterSecret, id, signing);
    if (!claims) return undefined;
    // The oldest goes, not all: with more users than this, clearing made every user pay again.
    if (verified.size >= TOKEN_CACHE) verified.delete(verified.keys().next().value as string);
    const entry = { claims, key: deriveKey(masterSecret, id, claims.salt) };
    verified.set(id, entry);
    return entry;
  };
  return async (ctx, next) => {
    const attrs = parseHawkHeader(ctx.get('Authorization'));
    if (!attrs) throw new SyncError('unauthorized', 'no Hawk header');
    const token = verify(attrs.id);
    if (!token) throw new SyncError('unauthorized', 'bad token');
    const { claims, key } = token;
    const now = Date.now() / 1000;
    if (Math.round(claims.expires) <= now) {
      // An expired token may still poll info/collections for a while (spec 3.1).
      const grace = ctx.state.route === 'info/collections' && now - claims.expires < config.expiredTokenGraceSec;
      if (!grace) throw new SyncError('unauthorized', 'token expired');
    }
    if (!macMatches(key, attrs, publicRequest(ctx, config))) throw new SyncError('unauthorized', 'bad MAC');
    if (String(claims.uid) !== ctx.params.uid) throw new SyncError('unauthorized', 'uid is not the token\'s');
    (ctx.state as AuthState).uid = String(claims.uid);
    await next();
  };
}
