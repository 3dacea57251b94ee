// syncgate's accounts, as documents of the registry (embedded, or the Couch of COUCH_URL), so
// that every gateway behind a load balancer can sign anyone in:
//
//   account:<uid>      the account: email, password record, key material, sessions (with the
//                      device each one registered), refresh tokens, failed sign-ins
//   email:<email>      which uid has the address (claimed first, so two sign-ups cannot share it)
//   session:<id>       which account a session token belongs to (Hawk names only the token id)
//   keyfetch:<id>      kA and wrapKb for one GET /v1/account/keys, then deleted (5 minutes at most)
//   oauthcode:<hash>   an authorization code until it is redeemed (once) or expires
//   refresh:<hash>     which account a refresh token belongs to
//   invite:<hash>      a one-time sign-up link the operator made (sign-up may be off)
//   reset:<hash>       a one-time link that sets a new password without the old one
//
// Tokens are stored by their Hawk id or a SHA-256, never as given: a copy of the registry
// signs nobody in. Every change of an account is a compare-and-swap on its document.
import { createHash, randomBytes } from 'node:crypto';
import { AccountsError } from '../../common/errors.js';
import type { Doc, DocDb } from '../../storage/doc-db.js';
import { EMAIL } from '../tokenserver/local-accounts.js';
import { tokenKeys, type PasswordRecord } from './onepw.js';

export interface Device {
  id: string;
  name: string;
  type: string;
  createdAt: number;
  availableCommands: Record<string, string>;
  pushCallback?: string;
  pushPublicKey?: string;
  pushAuthKey?: string;
}

export interface Session {
  /** Hawk MAC key (hex), derived from the token; the token itself is not kept. */
  authKey: string;
  createdAt: number;
  device?: Device;
}

export interface RefreshToken {
  clientId: string;
  scope: string;
  createdAt: number;
}

export interface AccountDoc extends Doc {
  type: 'account';
  /** The account id, as Mozilla's: 32 hex characters; also the `sub` of its access tokens. */
  uid: string;
  email: string;
  createdAt: number;
  /** When kB last changed (ms): the timestamp of the kid; a reset moves it forward. */
  keysChangedAt: number;
  /** Absent for accounts made for scripts (bearer tokens only): nobody can sign in to those. */
  password?: PasswordRecord;
  kA: string;
  sessions: Record<string, Session>;
  refreshTokens: Record<string, RefreshToken>;
  /** Failed sign-ins in a row, and until when the next one is refused (ms). */
  failures?: { count: number; until: number };
}

interface IndexDoc extends Doc {
  uid: string;
}

export interface KeyFetchDoc extends Doc {
  uid: string;
  authKey: string;
  /** The third 32 bytes derived from the token: the key of the bundle's encryption. */
  bundleKey: string;
  kA: string;
  wrapKb: string;
  expiresAt: number;
}

export interface CodeDoc extends Doc {
  uid: string;
  clientId: string;
  scope: string;
  keysJwe?: string;
  codeChallenge: string;
  offline: boolean;
  authAt: number;
  expiresAt: number;
}

/** A one-time link from the operator (`syncgate account create --firefox`, `account reset`). */
export interface LinkDoc extends Doc {
  kind: LinkKind;
  email: string;
  expiresAt: number;
}

export type LinkKind = 'invite' | 'reset';

const KEY_FETCH_MS = 5 * 60_000;
const CAS_ATTEMPTS = 20;

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();
const sha256 = (token: string): string => createHash('sha256').update(token).digest('hex');

export class AccountStore {
  constructor(
    private readonly db: DocDb,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A new account. With a password record it can sign in; without, it is a script account
   * whose bearer tokens come from `syncgate account token`.
   */
  async create(email: string, password?: PasswordRecord): Promise<AccountDoc> {
    const address = normalizeEmail(email);
    if (!EMAIL.test(address)) throw new AccountsError('invalid-parameter', `not an email address: ${email}`, { param: 'email' });
    const uid = randomBytes(16).toString('hex');
    // Claim the address first: of two sign-ups at once, one gets it.
    const claim = await this.db.get<IndexDoc>(`email:${address}`);
    if (claim && (await this.byUid(claim.uid))) throw new AccountsError('account-exists', undefined, { email: address });
    const rev = await this.db.put({ _id: `email:${address}`, ...(claim?._rev ? { _rev: claim._rev } : {}), uid } as IndexDoc);
    if (rev === 'conflict') throw new AccountsError('account-exists', undefined, { email: address });
    const now = this.now();
    const account: AccountDoc = {
      _id: `account:${uid}`,
      type: 'account',
      uid,
      email: address,
      createdAt: now,
      keysChangedAt: now,
      kA: randomBytes(32).toString('hex'),
      sessions: {},
      refreshTokens: {},
    };
    if (password) account.password = password;
    const put = await this.db.put(account);
    if (put === 'conflict') throw new AccountsError('internal', 'fresh account id taken');
    account._rev = put;
    return account;
  }

  async byUid(uid: string): Promise<AccountDoc | undefined> {
    if (!/^[0-9a-f]{32}$/.test(uid)) return undefined;
    return this.db.get<AccountDoc>(`account:${uid}`);
  }

  async byEmail(email: string): Promise<AccountDoc | undefined> {
    const claim = await this.db.get<IndexDoc>(`email:${normalizeEmail(email)}`);
    const account = claim ? await this.byUid(claim.uid) : undefined;
    return account && account.email === normalizeEmail(email) ? account : undefined;
  }

  async list(): Promise<AccountDoc[]> {
    return (await this.db.range<AccountDoc>('account:', 'account:\ufff0')).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Changes the account by compare-and-swap; `change` returns false to leave it as it is. */
  async update(uid: string, change: (a: AccountDoc) => boolean | void): Promise<AccountDoc> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const account = await this.byUid(uid);
      if (!account) throw new AccountsError('invalid-token', 'the account is gone');
      if (change(account) === false) return account;
      const rev = await this.db.put(account);
      if (rev !== 'conflict') {
        account._rev = rev;
        return account;
      }
    }
    throw new AccountsError('unavailable', 'the account kept changing');
  }

  /** A new session token (hex) for the account. */
  async newSession(uid: string, device?: Device): Promise<{ token: string; id: string }> {
    const token = randomBytes(32);
    const { id, authKey } = tokenKeys(token, 'sessionToken');
    // The index first: a session the account lists is always found by its id.
    await this.db.put({ _id: `session:${id}`, uid } as IndexDoc);
    await this.update(uid, (a) => {
      a.sessions[id] = { authKey: authKey.toString('hex'), createdAt: this.now(), ...(device ? { device } : {}) };
    });
    return { token: token.toString('hex'), id };
  }

  /** The session a Hawk id names, and its account; undefined when unknown or revoked. */
  async session(id: string): Promise<{ account: AccountDoc; session: Session } | undefined> {
    if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
    const index = await this.db.get<IndexDoc>(`session:${id}`);
    const account = index ? await this.byUid(index.uid) : undefined;
    const session = account?.sessions[id];
    return account && session ? { account, session } : undefined;
  }

  async destroySession(uid: string, id: string): Promise<void> {
    await this.update(uid, (a) => {
      if (!a.sessions[id]) return false;
      delete a.sessions[id];
    });
    await this.remove(`session:${id}`);
  }

  /** A key-fetch token for one GET /v1/account/keys: what the bundle carries is kept until then. */
  async newKeyFetch(uid: string, kA: Buffer, wrapKb: Buffer): Promise<string> {
    const token = randomBytes(32);
    const { id, authKey, extra } = tokenKeys(token, 'keyFetchToken');
    const doc: KeyFetchDoc = { _id: `keyfetch:${id}`, uid, authKey: authKey.toString('hex'), bundleKey: extra.toString('hex'), kA: kA.toString('hex'), wrapKb: wrapKb.toString('hex'), expiresAt: this.now() + KEY_FETCH_MS };
    await this.db.put(doc);
    return token.toString('hex');
  }

  async keyFetch(id: string): Promise<KeyFetchDoc | undefined> {
    if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
    const doc = await this.db.get<KeyFetchDoc>(`keyfetch:${id}`);
    return doc && doc.expiresAt > this.now() ? doc : undefined;
  }

  /** Used once: deleted by compare-and-swap, so of two fetches only one gets the keys. */
  async consume(doc: Doc): Promise<boolean> {
    return (await this.db.put({ ...doc, _deleted: true })) !== 'conflict';
  }

  async newCode(code: Omit<CodeDoc, '_id' | '_rev'>): Promise<string> {
    const value = randomBytes(32).toString('hex');
    await this.db.put({ _id: `oauthcode:${sha256(value)}`, ...code } as CodeDoc);
    return value;
  }

  async code(value: string): Promise<CodeDoc | undefined> {
    if (!/^[0-9a-f]{64}$/.test(value)) return undefined;
    return this.db.get<CodeDoc>(`oauthcode:${sha256(value)}`);
  }

  async newRefreshToken(uid: string, clientId: string, scope: string): Promise<string> {
    const value = randomBytes(32).toString('hex');
    const hash = sha256(value);
    await this.db.put({ _id: `refresh:${hash}`, uid } as IndexDoc);
    await this.update(uid, (a) => {
      a.refreshTokens[hash] = { clientId, scope, createdAt: this.now() };
    });
    return value;
  }

  async refreshToken(value: string): Promise<{ account: AccountDoc; token: RefreshToken } | undefined> {
    if (!/^[0-9a-f]{64}$/.test(value)) return undefined;
    const hash = sha256(value);
    const index = await this.db.get<IndexDoc>(`refresh:${hash}`);
    const account = index ? await this.byUid(index.uid) : undefined;
    const token = account?.refreshTokens[hash];
    return account && token ? { account, token } : undefined;
  }

  /** Revokes a refresh token; true if there was one. */
  async revokeRefreshToken(value: string): Promise<boolean> {
    const found = await this.refreshToken(value);
    if (!found) return false;
    const hash = sha256(value);
    await this.update(found.account.uid, (a) => {
      if (!a.refreshTokens[hash]) return false;
      delete a.refreshTokens[hash];
    });
    await this.remove(`refresh:${hash}`);
    return true;
  }

  /** Ends every session and refresh token of the account, in the same swap as `also`. */
  async revokeAll(uid: string, also?: (a: AccountDoc) => void): Promise<AccountDoc> {
    let sessions: string[] = [];
    let refresh: string[] = [];
    const account = await this.update(uid, (a) => {
      sessions = Object.keys(a.sessions);
      refresh = Object.keys(a.refreshTokens);
      a.sessions = {};
      a.refreshTokens = {};
      also?.(a);
    });
    for (const id of sessions) await this.remove(`session:${id}`);
    for (const hash of refresh) await this.remove(`refresh:${hash}`);
    return account;
  }

  /** A one-time link's token (hex) for the address; only its hash is stored. */
  async newLink(kind: LinkKind, email: string, ttlMs: number): Promise<{ token: string; expiresAt: number }> {
    const token = randomBytes(32).toString('hex');
    const expiresAt = this.now() + ttlMs;
    await this.db.put({ _id: `${kind}:${sha256(token)}`, kind, email: normalizeEmail(email), expiresAt } as LinkDoc);
    return { token, expiresAt };
  }

  /** The link a token names, while it is unused and unexpired and for this address. */
  async link(kind: LinkKind, token: string, email: string): Promise<LinkDoc | undefined> {
    if (!/^[0-9a-f]{64}$/.test(token)) return undefined;
    const doc = await this.db.get<LinkDoc>(`${kind}:${sha256(token)}`);
    return doc && doc.expiresAt > this.now() && doc.email === normalizeEmail(email) ? doc : undefined;
  }

  /**
   * A password set without the old one: kB cannot be kept (only the old password unwraps it),
   * so the account gets new key material, keysChangedAt moves forward, and every session and
   * refresh token ends. Firefox then signs in again and gets a new key; the token server sees
   * the new kid and gives the account a new uid with empty storage.
   */
  async reset(uid: string, password: PasswordRecord): Promise<AccountDoc> {
    return this.revokeAll(uid, (a) => {
      a.password = password;
      a.kA = randomBytes(32).toString('hex');
      a.keysChangedAt = Math.max(this.now(), a.keysChangedAt + 1);
      delete a.failures;
    });
  }

  /** Deletes the account: its sessions and tokens stop working at once. */
  async delete(uid: string): Promise<boolean> {
    const account = await this.byUid(uid);
    if (!account) return false;
    await this.remove(account._id);
    await this.remove(`email:${account.email}`);
    for (const id of Object.keys(account.sessions)) await this.remove(`session:${id}`);
    for (const hash of Object.keys(account.refreshTokens)) await this.remove(`refresh:${hash}`);
    return true;
  }

  /** Deletes key-fetch tokens, codes and links that ran out unused; returns how many. */
  async sweep(): Promise<number> {
    const now = this.now();
    let removed = 0;
    for (const prefix of ['keyfetch:', 'oauthcode:', 'invite:', 'reset:']) {
      for (const doc of await this.db.range<Doc & { expiresAt: number }>(prefix, `${prefix}\ufff0`)) {
        if (doc.expiresAt <= now && (await this.consume(doc))) removed++;
      }
    }
    return removed;
  }

  private async remove(id: string): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const doc = await this.db.get<Doc>(id);
      if (!doc) return;
      if ((await this.db.put({ _id: id, _rev: doc._rev as string, _deleted: true })) !== 'conflict') return;
    }
  }
}
