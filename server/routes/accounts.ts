// The accounts server's auth API (Mozilla's /v1 paths and answers), for the sign-in page and
// for Firefox: sign-up and sign-in with the onepw derived authPW, the key bundle, sessions,
// the devices Firefox registers, and the status calls it makes when a token stops working.
import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type Koa from 'koa';
import { AccountsError } from '../../common/errors.js';
import { AdminError } from '../../federation/node-admin.js';
import type { AccountDoc, AccountStore, Device, Session } from '../accounts/account-store.js';
import { verifyHawk } from '../accounts/account-hawk.js';
import { keyBundle, passwordRecord, unwrapKb } from '../accounts/onepw.js';
import { HEX32, jsonBody, optionalStr, str, type JsonBody } from '../accounts/request.js';
import type { SignInThrottle } from '../accounts/throttle.js';
import type { Config } from '../config.js';
import { writeAccountsError } from '../errors.js';
import { sendJson } from '../respond.js';
import { OLDSYNC_SCOPE } from '../tokenserver/local-accounts.js';

export interface AccountsDeps {
  config: Config;
  accounts: AccountStore;
  throttle: SignInThrottle;
  /** The storage of an account whose key is dead: its tokens refused at once (federation/registry.ts). */
  revokeStorage(sub: string, how: 'reset' | 'deleted'): Promise<void>;
  /** The account's storage to its own Couch, or back (federation/own-couch.ts); absent: not offered. */
  ownCouch?: OwnCouchService;
}

/** What the account page asks of the registry for a person's own Couch (`sub`: the account). */
export interface OwnCouchService {
  add(sub: string, url: string, replica: boolean): Promise<unknown>;
  remove(sub: string): Promise<unknown>;
}

export interface SessionAuth {
  id: string;
  account: AccountDoc;
  session: Session;
}

/** The session a request's Hawk header names; `body` for calls that carry one. */
export async function sessionOf(ctx: Koa.Context, deps: Pick<AccountsDeps, 'config' | 'accounts'>, body?: JsonBody): Promise<SessionAuth> {
  const { id, found } = await verifyHawk(ctx, deps.config, async (id) => {
    const s = await deps.accounts.session(id);
    return s && { authKey: s.session.authKey, ...s };
  }, body?.raw);
  return { id, account: found.account, session: found.session };
}

/** Every answer of the accounts server: JSON in Mozilla's shape, errors included. */
export function accountsRoute(handler: (ctx: Koa.Context) => Promise<unknown>): Koa.Middleware {
  return async (ctx) => {
    // The path template (no token or id in Mozilla's /v1 paths): which call, in the request log.
    ctx.state.route = `accounts ${(ctx as { _matchedRoute?: string })._matchedRoute ?? ctx.path}`;
    // Mozilla's server stamps every answer; Firefox takes its clock offset from Date.
    ctx.set('Timestamp', String(Math.floor(Date.now() / 1000)));
    ctx.set('Cache-Control', 'no-store');
    try {
      sendJson(ctx, await handler(ctx));
    } catch (err) {
      writeAccountsError(ctx, err);
    }
  };
}

const keysWanted = (ctx: Koa.Context): boolean => new URLSearchParams(ctx.querystring).get('keys') === 'true';
const seconds = (ms: number): number => Math.floor(ms / 1000);

function deviceView(id: string, s: Session, current: string): Record<string, unknown> {
  const d = s.device as Device;
  return {
    id: d.id,
    name: d.name,
    type: d.type,
    isCurrentDevice: id === current,
    lastAccessTime: s.createdAt,
    pushCallback: d.pushCallback ?? null,
    pushEndpointExpired: false,
    availableCommands: d.availableCommands,
    ...(d.pushPublicKey ? { pushPublicKey: d.pushPublicKey, pushAuthKey: d.pushAuthKey } : {}),
  };
}

export function accountsRouter(deps: AccountsDeps): Router {
  const { config, accounts, throttle } = deps;
  const router = new Router();

  /**
   * The account and its wrapKb if authPW is its password's; counts a failure against the
   * address and the account otherwise, and clears the account's count on success.
   */
  const checkPassword = async (ctx: Koa.Context, email: string, authPW: Buffer): Promise<{ account: AccountDoc; wrapKb: Buffer }> => {
    const account = await accounts.byEmail(email);
    throttle.check(ctx.ip, account);
    const wrapKb = account?.password ? await unwrapKb(authPW, account.password) : undefined;
    if (wrapKb && account) {
      if (account.failures) await accounts.update(account.uid, (a) => void delete a.failures);
      return { account, wrapKb };
    }
    throttle.failedFrom(ctx.ip);
    if (!account) throw new AccountsError('unknown-account', undefined, { email });
    await accounts.update(account.uid, (a) => throttle.failedOn(a));
    throw new AccountsError('incorrect-password', undefined, { email: account.email });
  };

  /** A session, and a key-fetch token when the page asked for keys. */
  const signedIn = async (ctx: Koa.Context, account: AccountDoc, wrapKb: Buffer) => {
    const session = await accounts.newSession(account.uid);
    const answer: Record<string, unknown> = { uid: account.uid, sessionToken: session.token, verified: true, authAt: seconds(Date.now()), metricsEnabled: false };
    if (keysWanted(ctx)) answer.keyFetchToken = await accounts.newKeyFetch(account.uid, Buffer.from(account.kA, 'hex'), wrapKb);
    return answer;
  };

  router.post(
    '/v1/account/create',
    accountsRoute(async (ctx) => {
      const { fields } = await jsonBody(ctx);
      const email = str(fields, 'email', undefined, 255);
      const authPW = Buffer.from(str(fields, 'authPW', HEX32), 'hex');
      // The operator's link opens sign-up for its address only, whether sign-up is on or off.
      const inviteToken = optionalStr(fields, 'invite');
      const invite = inviteToken === undefined ? undefined : await accounts.link('invite', inviteToken, email);
      if (inviteToken !== undefined && !invite) throw new AccountsError('invalid-token', 'this sign-up link is used, expired, or for another address');
      if (!invite && !config.tokenServer.signup) throw new AccountsError('signup-disabled', 'sign-up is turned off on this server');
      // A new account's kB is random: wrapKb here, unwrapBKey in the page, never together.
      const wrapKb = randomBytes(32);
      const account = await accounts.create(email, await passwordRecord(authPW, wrapKb));
      if (invite) await accounts.consume(invite);
      return signedIn(ctx, account, wrapKb);
    }),
  );

  router.post(
    '/v1/account/login',
    accountsRoute(async (ctx) => {
      const { fields } = await jsonBody(ctx);
      const { account, wrapKb } = await checkPassword(ctx, str(fields, 'email', undefined, 255), Buffer.from(str(fields, 'authPW', HEX32), 'hex'));
      return signedIn(ctx, account, wrapKb);
    }),
  );

  router.get(
    '/v1/account/keys',
    accountsRoute(async (ctx) => {
      const { found } = await verifyHawk(ctx, config, (id) => accounts.keyFetch(id));
      // One use: of two fetches with the same token, one gets the keys.
      if (!(await accounts.consume(found))) throw new AccountsError('invalid-token', 'key-fetch token used');
      return { bundle: keyBundle(Buffer.from(found.bundleKey, 'hex'), Buffer.from(found.kA, 'hex'), Buffer.from(found.wrapKb, 'hex')) };
    }),
  );

  router.post(
    '/v1/account/scoped-key-data',
    accountsRoute(async (ctx) => {
      const body = await jsonBody(ctx);
      const { account } = await sessionOf(ctx, deps, body);
      str(body.fields, 'client_id', /^[0-9a-f]{16}$/);
      const scopes = str(body.fields, 'scope').split(/\s+/);
      if (!scopes.includes(OLDSYNC_SCOPE)) return {};
      return { [OLDSYNC_SCOPE]: { identifier: OLDSYNC_SCOPE, keyRotationSecret: '0'.repeat(64), keyRotationTimestamp: account.keysChangedAt } };
    }),
  );

  const status = accountsRoute(async (ctx) => {
    if (ctx.method === 'GET') {
      const uid = new URLSearchParams(ctx.querystring).get('uid');
      if (!uid) throw new AccountsError('missing-parameter', 'missing uid', { param: 'uid' });
      return { exists: (await accounts.byUid(uid)) !== undefined };
    }
    const { fields } = await jsonBody(ctx);
    return { exists: (await accounts.byEmail(str(fields, 'email', undefined, 255))) !== undefined };
  });
  router.get('/v1/account/status', status);
  router.post('/v1/account/status', status);

  router.get(
    '/v1/session/status',
    accountsRoute(async (ctx) => {
      const { account } = await sessionOf(ctx, deps);
      return { state: 'verified', uid: account.uid };
    }),
  );

  router.post(
    '/v1/session/destroy',
    accountsRoute(async (ctx) => {
      const body = await jsonBody(ctx);
      const { id, account } = await sessionOf(ctx, deps, body);
      await accounts.destroySession(account.uid, id);
      return {};
    }),
  );

  router.get(
    '/v1/recovery_email/status',
    accountsRoute(async (ctx) => {
      const { account } = await sessionOf(ctx, deps);
      return { email: account.email, verified: true, sessionVerified: true, emailVerified: true };
    }),
  );

  router.post(
    '/v1/account/device',
    accountsRoute(async (ctx) => {
      const body = await jsonBody(ctx);
      const { id, account } = await sessionOf(ctx, deps, body);
      const f = body.fields;
      const given = optionalStr(f, 'id', /^[0-9a-f]{32}$/);
      const current = account.sessions[id]?.device;
      if (given && current?.id !== given) throw new AccountsError('unknown-device');
      const commands = f.availableCommands === undefined ? current?.availableCommands ?? {} : f.availableCommands;
      if (typeof commands !== 'object' || commands === null || Array.isArray(commands) || !Object.values(commands).every((v) => typeof v === 'string')) {
        throw new AccountsError('invalid-parameter', 'bad availableCommands', { param: 'availableCommands' });
      }
      const device: Device = {
        id: current?.id ?? randomBytes(16).toString('hex'),
        name: optionalStr(f, 'name', undefined, 255) ?? current?.name ?? 'Firefox',
        type: optionalStr(f, 'type', /^[a-z]{1,16}$/) ?? current?.type ?? 'desktop',
        createdAt: current?.createdAt ?? Date.now(),
        availableCommands: commands as Record<string, string>,
      };
      const pushCallback = optionalStr(f, 'pushCallback', /^https?:\/\//) ?? current?.pushCallback;
      const pushPublicKey = optionalStr(f, 'pushPublicKey', /^[A-Za-z0-9_-]{1,128}$/) ?? current?.pushPublicKey;
      const pushAuthKey = optionalStr(f, 'pushAuthKey', /^[A-Za-z0-9_-]{1,64}$/) ?? current?.pushAuthKey;
      if (pushCallback) device.pushCallback = pushCallback;
      if (pushPublicKey && pushAuthKey) Object.assign(device, { pushPublicKey, pushAuthKey });
      await accounts.update(account.uid, (a) => {
        const s = a.sessions[id];
        if (!s) throw new AccountsError('invalid-token', 'session ended');
        s.device = device;
      });
      return { ...device, pushEndpointExpired: false };
    }),
  );

  router.get(
    '/v1/account/devices',
    accountsRoute(async (ctx) => {
      const { id, account } = await sessionOf(ctx, deps);
      return Object.entries(account.sessions)
        .filter(([, s]) => s.device)
        .map(([sid, s]) => deviceView(sid, s, id));
    }),
  );

  router.post(
    '/v1/account/device/destroy',
    accountsRoute(async (ctx) => {
      const body = await jsonBody(ctx);
      const { account } = await sessionOf(ctx, deps, body);
      const deviceId = str(body.fields, 'id', /^[0-9a-f]{32}$/);
      const entry = Object.entries(account.sessions).find(([, s]) => s.device?.id === deviceId);
      if (!entry) throw new AccountsError('unknown-device');
      // As Mozilla's: a device goes with its session.
      await accounts.destroySession(account.uid, entry[0]);
      return {};
    }),
  );

  // Push and Send Tab need a push service; syncgate has none, so these answer as a server
  // with nothing queued does (Firefox reads `messages` without a guard).
  router.get(
    '/v1/account/attached_clients',
    accountsRoute(async (ctx) => {
      await sessionOf(ctx, deps);
      return [];
    }),
  );
  router.post(
    '/v1/account/devices/notify',
    accountsRoute(async (ctx) => {
      await sessionOf(ctx, deps, await jsonBody(ctx));
      return {};
    }),
  );
  router.get(
    '/v1/account/device/commands',
    accountsRoute(async (ctx) => {
      await sessionOf(ctx, deps);
      const index = Number(new URLSearchParams(ctx.querystring).get('index') ?? 0);
      return { index: Number.isSafeInteger(index) && index > 0 ? index - 1 : 0, last: true, messages: [] };
    }),
  );
  router.post(
    '/v1/account/devices/invoke_command',
    accountsRoute(async (ctx) => {
      await sessionOf(ctx, deps, await jsonBody(ctx));
      return { enqueued: false, notified: false };
    }),
  );

  // The page's password change: proof of the old password, and the new password's wrapKb,
  // which the page computed from the kB it already holds, so the key stays the same.
  router.post(
    '/v1/password/change',
    accountsRoute(async (ctx) => {
      const { fields } = await jsonBody(ctx);
      const email = str(fields, 'email', undefined, 255);
      const oldAuthPW = Buffer.from(str(fields, 'oldAuthPW', HEX32), 'hex');
      const authPW = Buffer.from(str(fields, 'authPW', HEX32), 'hex');
      const wrapKb = Buffer.from(str(fields, 'wrapKb', HEX32), 'hex');
      const { account } = await checkPassword(ctx, email, oldAuthPW);
      const record = await passwordRecord(authPW, wrapKb);
      await accounts.update(account.uid, (a) => {
        a.password = record;
      });
      return {};
    }),
  );

  // The account page's own Couch: proof of the password, and the Couch to keep the storage on
  // (checked as any node; refused with the reason), or `remove` to move it back.
  router.post(
    '/v1/syncgate/own-couch',
    accountsRoute(async (ctx) => {
      const { fields } = await jsonBody(ctx);
      if (!deps.ownCouch) throw new AccountsError('not-found', 'this server keeps storage on its own nodes only');
      const { account } = await checkPassword(ctx, str(fields, 'email', undefined, 255), Buffer.from(str(fields, 'authPW', HEX32), 'hex'));
      try {
        if (fields.remove === true) return { moving: 'back', status: await deps.ownCouch.remove(account.uid) };
        return { moving: 'there', status: await deps.ownCouch.add(account.uid, str(fields, 'url', undefined, 2048), fields.replica === true) };
      } catch (e) {
        // The node check's reason (unreachable, not an admin…) is for the person to read.
        if (e instanceof AdminError) throw new AccountsError('invalid-parameter', e.message, { message: e.message });
        throw e;
      }
    }),
  );

  // The page of the operator's reset link: a new password without the old one. The key it
  // wrapped is lost with the old password, so the account gets a new one (AccountStore.reset).
  router.post(
    '/v1/account/reset',
    accountsRoute(async (ctx) => {
      const { fields } = await jsonBody(ctx);
      const email = str(fields, 'email', undefined, 255);
      const authPW = Buffer.from(str(fields, 'authPW', HEX32), 'hex');
      const link = await accounts.link('reset', str(fields, 'token'), email);
      const account = link && (await accounts.byEmail(email));
      if (!link || !account) throw new AccountsError('invalid-token', 'this reset link is used, expired, or for another address');
      // Spent before the password is set: of two uses of one link, one sets it.
      if (!(await accounts.consume(link))) throw new AccountsError('invalid-token', 'this reset link is used');
      await accounts.reset(account.uid, await passwordRecord(authPW, randomBytes(32)));
      // Every device still holds the old key: its next sync is refused and it signs in again.
      await deps.revokeStorage(account.uid, 'reset');
      return {};
    }),
  );

  return router;
}
