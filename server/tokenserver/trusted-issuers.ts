// The identity providers the token endpoint trusts, from the configuration: Firefox Accounts
// (its published keys) and syncgate's local accounts (the key in the data folder).
import { createLocalJWKSet } from 'jose';
import type { Config } from '../config.js';
import { LOCAL_EMAIL_DOMAIN, LOCAL_ISSUER, type LocalAccounts } from './local-accounts.js';
import { OAuthVerifier, remoteKeys, type TrustedIssuer } from './oauth-verifier.js';

export async function createVerifier(config: Config, local: LocalAccounts | undefined): Promise<OAuthVerifier> {
  const ts = config.tokenServer;
  const issuers: TrustedIssuer[] = [];
  if (local) {
    issuers.push({
      name: 'local',
      iss: LOCAL_ISSUER,
      keys: createLocalJWKSet(await local.jwks()),
      emailDomain: LOCAL_EMAIL_DOMAIN,
      accountExists: (sub) => local.exists(sub),
    });
  }
  if (ts.fxa) {
    const fxa: TrustedIssuer = {
      name: 'fxa',
      keys: remoteKeys(ts.fxaJwksUrl),
      emailDomain: ts.fxaEmailDomain,
      remoteVerifyUrl: `${ts.fxaOAuthUrl}/v1/verify`,
    };
    if (ts.fxaIssuer !== undefined) fxa.iss = ts.fxaIssuer;
    if (ts.fxaAudience !== undefined) fxa.audience = ts.fxaAudience;
    issuers.push(fxa);
  }
  return new OAuthVerifier(issuers, { scope: ts.scope, clockToleranceSec: ts.clockSkewSec });
}
