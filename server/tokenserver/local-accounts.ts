// syncgate's own identity provider, for self-hosting and tests: local accounts and an RS256
// signing key kept in the data folder, bearer tokens shaped like Firefox Accounts' access
// tokens, verified by the same OAuthVerifier through the JWKS the gateway serves.
//
// Accounts are files (one per account, named by a hash of the email) rather than registry
// documents: the `syncgate account` command must work while an embedded gateway holds the
// registry's LevelDB lock, and several gateways sharing one data folder see the same accounts.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';

export const LOCAL_ISSUER = 'urn:syncgate:local-accounts';
export const LOCAL_EMAIL_DOMAIN = 'accounts.syncgate.local';
export const OLDSYNC_SCOPE = 'https://identity.mozilla.com/apps/oldsync';

export interface LocalAccount {
  email: string;
  /** The account id, as FxA's is: 32 hex characters. */
  sub: string;
  createdAt: number;
  /** X-KeyID of the account's sync key: keys_changed_at (ms) and the client state (hex). */
  keysChangedAt: number;
  clientState: string;
}

export class AccountError extends Error {}

/**
 * Where gateways that share a registry keep one signing key (shared-issuer-key.ts), so that an
 * access token one gateway signed is verified by any other, whatever its data folder.
 */
export interface SharedIssuerKey {
  get(): Promise<JWK | undefined>;
  /** Stores `jwk` unless a key is there already; returns the key that is there afterwards. */
  offer(jwk: JWK): Promise<JWK>;
}

interface SigningKey {
  key: CryptoKey;
  kid: string;
  /** Every key whose tokens are accepted: the signing key and, if different, the folder's. */
  publicJwks: JWK[];
}

const publicOf = async (jwk: JWK): Promise<JWK> => {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return { ...pub, kid: await calculateJwkThumbprint(pub), alg: 'RS256', use: 'sig' };
};

/** What both kinds of account accept as an email address. */
export const EMAIL = /^[^\s@]{1,128}@[^\s@]{1,128}$/;

export class LocalAccounts {
  private readonly dir: string;
  private readonly keyFile: string;
  private signing?: Promise<SigningKey>;
  private subs?: { at: number; set: Set<string> };

  constructor(
    dataDir: string,
    /** The registry's key, when gateways share one; without it (the CLI) the folder's key signs. */
    private readonly shared?: SharedIssuerKey,
  ) {
    this.dir = join(dataDir, 'accounts');
    this.keyFile = join(dataDir, 'issuer-key.json');
  }

  /** The folder's key: generated once, kept (0600) in the data folder. */
  private async folderKey(): Promise<JWK> {
    await mkdir(join(this.keyFile, '..'), { recursive: true });
    try {
      const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
      // 'wx': of two processes starting at once, one key wins and both use it.
      await writeFile(this.keyFile, JSON.stringify(await exportJWK(privateKey)), { flag: 'wx', mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    return JSON.parse(await readFile(this.keyFile, 'utf8')) as JWK;
  }

  /**
   * The signing key: the registry's (the first gateway offers its folder's key, so the tokens
   * it signed stay good), else the folder's. The folder's key still verifies: the bearer
   * tokens `syncgate account create|token` sign with it on this machine.
   */
  private key(): Promise<SigningKey> {
    this.signing ??= (async () => {
      const folder = await this.folderKey();
      const signing = this.shared ? ((await this.shared.get()) ?? (await this.shared.offer(folder))) : folder;
      const signingPublic = await publicOf(signing);
      const folderPublic = await publicOf(folder);
      const publicJwks = folderPublic.kid === signingPublic.kid ? [signingPublic] : [signingPublic, folderPublic];
      return { key: (await importJWK(signing, 'RS256')) as CryptoKey, kid: signingPublic.kid as string, publicJwks };
    })();
    return this.signing;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    return { keys: (await this.key()).publicJwks };
  }

  private file(email: string): string {
    return join(this.dir, `${createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 40)}.json`);
  }

  async create(email: string, now = Date.now()): Promise<LocalAccount> {
    if (!EMAIL.test(email)) throw new AccountError(`not an email address: ${email}`);
    await mkdir(this.dir, { recursive: true });
    const account: LocalAccount = {
      email,
      sub: randomBytes(16).toString('hex'),
      createdAt: now,
      keysChangedAt: now,
      // First 16 bytes of SHA-256 of a sync key, as Firefox derives it (spec 9.1).
      clientState: createHash('sha256').update(randomBytes(32)).digest().subarray(0, 16).toString('hex'),
    };
    try {
      await writeFile(this.file(email), JSON.stringify(account), { flag: 'wx', mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new AccountError(`account ${email} already exists`);
      throw e;
    }
    this.subs = undefined;
    return account;
  }

  async get(email: string): Promise<LocalAccount | undefined> {
    try {
      return JSON.parse(await readFile(this.file(email), 'utf8')) as LocalAccount;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async list(): Promise<LocalAccount[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const accounts = await Promise.all(
      names.filter((n) => n.endsWith('.json')).map(async (n) => JSON.parse(await readFile(join(this.dir, n), 'utf8')) as LocalAccount),
    );
    return accounts.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Deleting an account revokes its bearer tokens at once (accountExists). */
  async delete(email: string): Promise<boolean> {
    const existed = (await this.get(email)) !== undefined;
    await rm(this.file(email), { force: true });
    this.subs = undefined;
    return existed;
  }

  /**
   * A verified token's account still exists. Unknown subs re-read the folder at once (a new
   * account from another process); known ones are re-checked after 2 s, so `account delete`
   * in another process takes effect within that.
   */
  async exists(sub: string): Promise<boolean> {
    const now = Date.now();
    if (!this.subs || now - this.subs.at > 2000 || !this.subs.set.has(sub)) {
      this.subs = { at: now, set: new Set((await this.list()).map((a) => a.sub)) };
    }
    return this.subs.set.has(sub);
  }

  /** A bearer token like FxA's access tokens: RS256, typ at+jwt, the oldsync scope. */
  bearer(account: LocalAccount, ttlSec: number, now = Date.now()): Promise<string> {
    return this.accessToken(account.sub, OLDSYNC_SCOPE, 'syncgate-local', ttlSec, now);
  }

  /** The claims of an access token this issuer signed (and that has not expired). */
  async verify(token: string): Promise<JWTPayload> {
    const { publicJwks } = await this.key();
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: publicJwks }), { issuer: LOCAL_ISSUER, typ: 'at+jwt', algorithms: ['RS256'], requiredClaims: ['exp', 'sub'] });
    return payload;
  }

  /** An access token of this issuer, for the accounts server's OAuth answers too. */
  async accessToken(sub: string, scope: string, clientId: string, ttlSec: number, now = Date.now()): Promise<string> {
    const { key, kid } = await this.key();
    const iat = Math.floor(now / 1000);
    return new SignJWT({ scope, client_id: clientId })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
      .setIssuer(LOCAL_ISSUER)
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttlSec)
      .setJti(randomBytes(12).toString('hex'))
      .sign(key);
  }
}

/** The X-KeyID header value Firefox sends for this account's keys (spec 9.1). */
export function keyIdOf(account: Pick<LocalAccount, 'keysChangedAt' | 'clientState'>): string {
  return `${account.keysChangedAt}-${Buffer.from(account.clientState, 'hex').toString('base64url')}`;
}
