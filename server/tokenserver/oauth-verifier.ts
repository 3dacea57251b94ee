// Verifies the OAuth access token of a token request (spec 9.3) with jose: a JWT signed RS256
// by a trusted issuer, typ at+jwt, not expired (bounded clock skew), holding the oldsync
// scope. Firefox Accounts is one trusted issuer (its JWKS fetched, cached and refreshed by
// jose); syncgate's own local-account issuer is another, checked by exactly the same code.
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { TokenError } from '../../common/errors.js';

export interface TrustedIssuer {
  /** For logs and the registry: 'fxa' or 'local'. */
  name: string;
  /** Expected `iss`; undefined accepts any (Mozilla's own tokenserver does not check it). */
  iss?: string;
  audience?: string;
  keys: JWTVerifyGetKey;
  /** The registry names the account `<sub>@<emailDomain>`, as Mozilla's tokenserver does. */
  emailDomain: string;
  /** Tokens of a deleted account stop working before they expire. */
  accountExists?: (sub: string) => Promise<boolean>;
  /** FxA's /v1/verify, for access tokens that are not JWTs (spec 9.3 step 3). */
  remoteVerifyUrl?: string;
}

export interface VerifiedAccount {
  issuer: string;
  /** The account id at its issuer (FxA uid, hex). */
  sub: string;
  email: string;
  /** fxa-generation; undefined when absent or 0. */
  generation?: number;
}

export interface VerifierOptions {
  scope: string;
  clockToleranceSec: number;
  remoteTimeoutMs?: number;
}

const SUB = /^[A-Za-z0-9_-]{1,64}$/;

export class OAuthVerifier {
  constructor(
    /** The first issuer without `iss` takes tokens whose `iss` matches no other. */
    private readonly issuers: TrustedIssuer[],
    private readonly opts: VerifierOptions,
  ) {}

  async verify(token: string): Promise<VerifiedAccount> {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      // Not a JWT at all: an opaque FxA token that only FxA itself can check.
      const fxa = this.issuers.find((i) => i.remoteVerifyUrl);
      if (!fxa?.remoteVerifyUrl) throw new TokenError('invalid-credentials', 'not a JWT');
      return this.remoteVerify(fxa, token);
    }
    const issuer = this.issuers.find((i) => i.iss !== undefined && i.iss === unverified.iss) ?? this.issuers.find((i) => i.iss === undefined);
    if (!issuer) throw new TokenError('invalid-credentials', 'untrusted issuer');

    const options: JWTVerifyOptions = {
      algorithms: ['RS256'],
      // jose compares typ case-insensitively and with or without "application/".
      typ: 'at+jwt',
      clockTolerance: this.opts.clockToleranceSec,
      requiredClaims: ['exp', 'sub'],
    };
    if (issuer.iss !== undefined) options.issuer = issuer.iss;
    if (issuer.audience !== undefined) options.audience = issuer.audience;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.keys, options));
    } catch (e) {
      throw keyFailure(e) ? new TokenError('unavailable', 'identity provider keys unreachable', { cause: e }) : new TokenError('invalid-credentials', (e as Error).message);
    }
    return this.account(issuer, payload.sub, payload.scope, payload['fxa-generation']);
  }

  private async account(issuer: TrustedIssuer, sub: unknown, scope: unknown, generation: unknown): Promise<VerifiedAccount> {
    if (typeof sub !== 'string' || !SUB.test(sub)) throw new TokenError('invalid-credentials', 'bad sub');
    // FxA's JWTs use a space- (or comma-) separated string; /v1/verify answers an array.
    const scopes = Array.isArray(scope) ? scope.map(String) : typeof scope === 'string' ? scope.split(/[\s,]+/) : [];
    if (!scopes.includes(this.opts.scope)) throw new TokenError('invalid-credentials', 'scope');
    if (generation !== undefined && generation !== null && !(Number.isSafeInteger(generation) && (generation as number) >= 0)) {
      throw new TokenError('invalid-credentials', 'bad fxa-generation');
    }
    if (issuer.accountExists && !(await issuer.accountExists(sub))) throw new TokenError('invalid-credentials', 'no such account');
    const verified: VerifiedAccount = { issuer: issuer.name, sub, email: `${sub}@${issuer.emailDomain}` };
    if (typeof generation === 'number' && generation > 0) verified.generation = generation;
    return verified;
  }

  private async remoteVerify(issuer: TrustedIssuer, token: string): Promise<VerifiedAccount> {
    let res: Response;
    try {
      res = await fetch(issuer.remoteVerifyUrl as string, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ token }),
        signal: AbortSignal.timeout(this.opts.remoteTimeoutMs ?? 5000),
      });
    } catch (e) {
      throw new TokenError('unavailable', 'identity provider unreachable', { cause: e });
    }
    if (res.status >= 500) throw new TokenError('unavailable', `identity provider answered ${res.status}`);
    if (!res.ok) throw new TokenError('invalid-credentials', `verify answered ${res.status}`);
    let body: { user?: unknown; scope?: unknown; generation?: unknown };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new TokenError('unavailable', 'identity provider answered no JSON');
    }
    return this.account(issuer, body.user, body.scope, body.generation);
  }
}

/** True when the keys could not be had (network, timeout, a bad JWKS answer), not a bad token. */
function keyFailure(e: unknown): boolean {
  if (!(e instanceof errors.JOSEError)) return true;
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) return true;
  // jose's generic error is what a non-200 JWKS answer raises.
  return e.code === 'ERR_JOSE_GENERIC';
}

/** FxA's (or any OAuth server's) published keys, cached and refreshed by jose. */
export function remoteKeys(url: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
}
