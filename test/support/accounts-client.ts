// The two clients of syncgate's accounts server, as tests play them: the sign-in page (derives
// authPW and unwrapBKey from the password, fetches the key bundle, encrypts the scoped key to
// Firefox's public key with jose) and Firefox (holds that key pair and the PKCE verifier,
// redeems the code, decrypts keys_jwe). Hawk headers are made by the independent `hawk` library.
import { createHash, randomBytes, webcrypto } from 'node:crypto';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';
import { CompactEncrypt, compactDecrypt, type JWK } from 'jose';
import { credentials, openKeyBundle, syncKey, tokenKeys, xor, type TokenType } from '../../server/accounts/onepw.js';
import { rawRequest, type SyncResponse } from './client.js';

export const FIREFOX_CLIENT = '5882386c6d801776';
export const OLDSYNC = 'https://identity.mozilla.com/apps/oldsync';

export interface SignedIn {
  uid: string;
  sessionToken: string;
  keyFetchToken?: string;
  unwrapBKey: Buffer;
}

/** A Hawk-signed accounts request with a token's derived credentials (payload hashed, as Firefox does). */
export function hawkRequest(base: string, method: string, path: string, token: string, type: TokenType, body?: unknown): Promise<SyncResponse> {
  const { id, authKey } = tokenKeys(Buffer.from(token, 'hex'), type);
  const url = base + path;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const opts: Record<string, unknown> = { credentials: { id, key: authKey, algorithm: 'sha256' } };
  if (payload !== undefined) Object.assign(opts, { payload, contentType: 'application/json' });
  const { header } = Hawk.client.header(url, method, opts);
  return rawRequest(method, url, { headers: { Authorization: header }, ...(payload === undefined ? {} : { body: payload }) });
}

export const post = (base: string, path: string, body: unknown): Promise<SyncResponse> => rawRequest('POST', base + path, { body });

/** Firefox's side of one OAuth flow: an ECDH P-256 key pair, a PKCE verifier and a state. */
export class FirefoxFlow {
  readonly verifier = randomBytes(32).toString('base64url');
  readonly challenge = createHash('sha256').update(this.verifier).digest('base64url');
  readonly state = randomBytes(16).toString('base64url');
  private constructor(
    private readonly privateKey: webcrypto.CryptoKey,
    readonly publicJwk: JWK,
  ) {}

  static async start(): Promise<FirefoxFlow> {
    // As FxAccountsOAuth makes it: the public JWK has no alg and no kid.
    const pair = await webcrypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveKey', 'deriveBits']);
    return new FirefoxFlow(pair.privateKey, (await webcrypto.subtle.exportKey('jwk', pair.publicKey)) as JWK);
  }

  get keysJwk(): string {
    return Buffer.from(JSON.stringify(this.publicJwk)).toString('base64url');
  }

  async decrypt(jwe: string): Promise<Record<string, { kty: string; scope: string; k: string; kid: string }>> {
    const header = JSON.parse(Buffer.from(jwe.split('.')[0] as string, 'base64url').toString()) as Record<string, unknown>;
    // Firefox's jwcrypto refuses these.
    if ('apu' in header || 'apv' in header || header.alg !== 'ECDH-ES' || header.enc !== 'A256GCM') throw new Error(`keys_jwe header Firefox refuses: ${JSON.stringify(header)}`);
    const { plaintext } = await compactDecrypt(jwe, this.privateKey as unknown as CryptoKey);
    return JSON.parse(Buffer.from(plaintext).toString());
  }
}

/** The sign-in page's work, in Node. */
export class Page {
  constructor(readonly base: string) {}

  signUp(email: string, password: string): Promise<SyncResponse> {
    return post(this.base, '/v1/account/create?keys=true', { email, authPW: credentials(email, password).authPW.toString('hex') });
  }

  signIn(email: string, password: string): Promise<SyncResponse> {
    return post(this.base, '/v1/account/login?keys=true', { email, authPW: credentials(email, password).authPW.toString('hex') });
  }

  /** Signs up or in, and reads kB with the key-fetch token. */
  async session(email: string, password: string, how: 'signUp' | 'signIn'): Promise<SignedIn & { kB: Buffer }> {
    const res = await this[how](email, password);
    if (res.status !== 200) throw new Error(`${how}: ${res.status} ${res.text}`);
    const body = res.json<{ uid: string; sessionToken: string; keyFetchToken: string }>();
    const { unwrapBKey } = credentials(email, password);
    return { ...body, unwrapBKey, kB: await this.kB(body.keyFetchToken, unwrapBKey) };
  }

  async kB(keyFetchToken: string, unwrapBKey: Buffer): Promise<Buffer> {
    const res = await hawkRequest(this.base, 'GET', '/v1/account/keys', keyFetchToken, 'keyFetchToken');
    if (res.status !== 200) throw new Error(`account/keys: ${res.status} ${res.text}`);
    const { wrapKb } = openKeyBundle(tokenKeys(Buffer.from(keyFetchToken, 'hex'), 'keyFetchToken').extra, res.json<{ bundle: string }>().bundle);
    return xor(wrapKb, unwrapBKey);
  }

  /** keys_jwe for the flow, then the authorization code. */
  async authorize(sessionToken: string, kB: Buffer, flow: FirefoxFlow, overrides: Record<string, unknown> = {}): Promise<SyncResponse> {
    const data = await hawkRequest(this.base, 'POST', '/v1/account/scoped-key-data', sessionToken, 'sessionToken', { client_id: FIREFOX_CLIENT, scope: `${OLDSYNC} profile` });
    if (data.status !== 200) throw new Error(`scoped-key-data: ${data.status} ${data.text}`);
    const ts = data.json<Record<string, { keyRotationTimestamp: number }>>()[OLDSYNC]?.keyRotationTimestamp as number;
    const { k, kid } = syncKey(kB, ts);
    const bundle = { [OLDSYNC]: { kty: 'oct', scope: OLDSYNC, k, kid } };
    const keysJwe = await new CompactEncrypt(Buffer.from(JSON.stringify(bundle))).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' }).encrypt(flow.publicJwk);
    return hawkRequest(this.base, 'POST', '/v1/oauth/authorization', sessionToken, 'sessionToken', {
      client_id: FIREFOX_CLIENT,
      state: flow.state,
      scope: `${OLDSYNC} profile`,
      access_type: 'offline',
      code_challenge: flow.challenge,
      code_challenge_method: 'S256',
      keys_jwe: keysJwe,
      ...overrides,
    });
  }
}

/** Firefox redeeming a code, as FxAccountsOAuth does (Hawk with the session it was given). */
export function redeem(base: string, sessionToken: string, code: string, verifier: string): Promise<SyncResponse> {
  return hawkRequest(base, 'POST', '/v1/oauth/token', sessionToken, 'sessionToken', { grant_type: 'authorization_code', code, client_id: FIREFOX_CLIENT, code_verifier: verifier });
}

/** A whole sign-in: the keys Firefox ends up with, and its session. */
export async function signInFirefox(base: string, email: string, password: string, how: 'signUp' | 'signIn'): Promise<{ uid: string; sessionToken: string; k: string; kid: string; refreshToken: string; accessToken: string }> {
  const page = new Page(base);
  const s = await page.session(email, password, how);
  const flow = await FirefoxFlow.start();
  const auth = await page.authorize(s.sessionToken, s.kB, flow);
  if (auth.status !== 200) throw new Error(`authorization: ${auth.status} ${auth.text}`);
  const token = await redeem(base, s.sessionToken, auth.json<{ code: string }>().code, flow.verifier);
  if (token.status !== 200) throw new Error(`token: ${token.status} ${token.text}`);
  const body = token.json<{ keys_jwe: string; refresh_token: string; access_token: string }>();
  const key = (await flow.decrypt(body.keys_jwe))[OLDSYNC] as { k: string; kid: string };
  return { uid: s.uid, sessionToken: s.sessionToken, k: key.k, kid: key.kid, refreshToken: body.refresh_token, accessToken: body.access_token };
}
