// Token endpoint helpers for tests: requests as Firefox makes them, and a stand-in for Firefox
// Accounts' OAuth server (its /v1/jwks and /v1/verify) with keys of its own, so tokens can be
// signed the way FxA signs them and the gateway fetches the keys over HTTP as in production.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { rawRequest, type Credentials, type SyncResponse } from './client.js';

export const OLDSYNC = 'https://identity.mozilla.com/apps/oldsync';

export interface TokenRequest {
  bearer?: string;
  keyId?: string;
  clientState?: string;
  path?: string;
  query?: string;
  method?: string;
  authorization?: string;
}

export function requestToken(base: string, req: TokenRequest): Promise<SyncResponse> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (req.authorization !== undefined) headers.Authorization = req.authorization;
  else if (req.bearer !== undefined) headers.Authorization = `Bearer ${req.bearer}`;
  // Firefox spells it X-KeyId; header names are case-insensitive.
  if (req.keyId !== undefined) headers['X-KeyId'] = req.keyId;
  if (req.clientState !== undefined) headers['X-Client-State'] = req.clientState;
  const url = `${base}${req.path ?? '/1.0/sync/1.5'}${req.query ? `?${req.query}` : ''}`;
  return rawRequest(req.method ?? 'GET', url, { headers });
}

export function credentialsOf(res: SyncResponse): Credentials {
  const body = res.json<{ id: string; key: string; uid: number; api_endpoint: string }>();
  return { id: body.id, key: body.key, uid: body.uid, api_endpoint: body.api_endpoint };
}

/** X-KeyID for keys_changed_at and a client state given in hex. */
export const keyId = (keysChangedAt: number, clientStateHex: string): string =>
  `${keysChangedAt}-${Buffer.from(clientStateHex, 'hex').toString('base64url')}`;

export interface FakeFxa {
  url: string;
  /** Signs like FxA: RS256, typ at+jwt, the oldsync scope unless overridden. */
  sign(claims: JWTPayload, opts?: { expiresIn?: number; typ?: string; key?: CryptoKey; kid?: string }): Promise<string>;
  /** A key FxA does not publish, for forged tokens. */
  foreignKey: CryptoKey;
  /** Opaque tokens /v1/verify knows, with what it answers for them. */
  opaque: Map<string, { status: number; body: unknown }>;
  jwksFetches: number;
  close(): Promise<void>;
}

export async function startFakeFxa(): Promise<FakeFxa> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256');
  const kid = 'fxa-test-key';
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const opaque = new Map<string, { status: number; body: unknown }>();
  const fake = { jwksFetches: 0 } as FakeFxa;
  const server: Server = createServer((req, res) => {
    if (req.url === '/v1/jwks') {
      fake.jwksFetches++;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    if (req.url === '/v1/verify' && req.method === 'POST') {
      let body = '';
      req.on('data', (d) => (body += String(d)));
      req.on('end', () => {
        const token = (JSON.parse(body) as { token: string }).token;
        const answer = opaque.get(token) ?? { status: 400, body: { code: 400, errno: 108, message: 'Invalid token' } };
        res.statusCode = answer.status;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(answer.body));
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    foreignKey: foreign.privateKey,
    opaque,
    async sign(claims: JWTPayload, opts: { expiresIn?: number; typ?: string; key?: CryptoKey; kid?: string } = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ scope: OLDSYNC, client_id: '5882386c6d801776', ...claims })
        .setProtectedHeader({ alg: 'RS256', typ: opts.typ ?? 'at+jwt', kid: opts.kid ?? kid })
        .setIssuer((claims.iss as string | undefined) ?? 'https://accounts.firefox.com')
        .setIssuedAt(now)
        .setExpirationTime(now + (opts.expiresIn ?? 3600))
        .sign(opts.key ?? privateKey);
    },
    async close() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  });
  return fake;
}
