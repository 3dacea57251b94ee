// The identity providers the token endpoint trusts, from the configuration: Firefox Accounts
// (its published keys) and syncgate's local accounts (the key in the data folder).
import { createLocalJWKSet } from 'jose';
import type { Config } from '../config.js';
import type { AccountStore } from '../accounts/account-store.js';
import { LOCAL_EMAIL_DOMAIN, LOCAL_ISSUER, type LocalAccounts } from './local-accounts.js';
import { OAuthVerifier, remoteKeys, type TrustedIssuer } from './oauth-verifier.js';

export async function createVerifier(config: Config, local: LocalAccounts | undefined, accounts?: AccountStore): Promise<OAuthVerifier> {
  const ts = config.tokenServer;
  const issuers: TrustedIssuer[] = [];
  if (local) {
    issuers.push({
      name: 'local',
      iss: LOCAL_ISSUER,
      keys: createLocalJWKSet(await local.jwks()),
      emailDomain: LOCAL_EMAIL_DOMAIN,
      // Script accounts (files) or accounts that sign in (the registry): a deleted one's tokens stop at once.
      accountExists: async (sub) => (await local.exists(sub)) || (accounts !== undefined && (await accounts.byUid(sub)) !== undefined),
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
