// The one place where failures become protocol responses (spec 6): status, the legacy Weave
// error number as the body, and headers. Nothing else of an error (message, stack, a Couch
// body) ever reaches a client.
import { STATUS_CODES } from 'node:http';
import type Koa from 'koa';
import { AccountsError, isSyncError, SyncError, TokenError, type AccountsErrorCode, type SyncErrorCode, type TokenErrorCode } from '../common/errors.js';
import { formatSeconds } from '../common/timestamps.js';
import { CouchError } from '../storage/couch/couch-client.js';

export interface CatalogEntry {
  status: number;
  /** Legacy Weave error code written as the JSON body; null for bodiless answers. */
  weave: number | null;
  headers?: Record<string, string>;
  /** What the code means, for operators reading the docs and logs. */
  doc: string;
}

export const WEAVE = {
  generic: 0,
  invalidBso: 8,
  overQuota: 14,
  sizeLimit: 17,
} as const;

export const CONFLICT_RETRY_AFTER = 10;

export const catalog: Record<SyncErrorCode, CatalogEntry> = {
  'not-found': { status: 404, weave: WEAVE.generic, doc: 'unknown path, or a record that does not exist or has expired' },
  'method-not-allowed': { status: 405, weave: WEAVE.generic, doc: 'the path exists but not for this method' },
  unauthorized: {
    status: 401,
    weave: WEAVE.generic,
    headers: { 'WWW-Authenticate': 'Hawk' },
    doc: 'missing or invalid Hawk header, bad token, expired token, or a uid that is not the token\'s',
  },
  'bad-request': { status: 400, weave: WEAVE.generic, doc: 'malformed query parameter, header, path or batch id' },
  'invalid-bso': { status: 400, weave: WEAVE.invalidBso, doc: 'malformed record or request body' },
  'size-limit': { status: 400, weave: WEAVE.sizeLimit, doc: 'declared or batch totals over the advertised limits' },
  'too-large': { status: 413, weave: WEAVE.sizeLimit, doc: 'request body over max_request_bytes' },
  'unsupported-media-type': { status: 415, weave: WEAVE.generic, doc: 'Content-Type is not JSON, text/plain or application/newlines' },
  'not-acceptable': { status: 406, weave: WEAVE.generic, doc: 'Accept names no type this server produces' },
  'not-modified': { status: 304, weave: null, doc: 'X-If-Modified-Since: nothing newer' },
  'precondition-failed': { status: 412, weave: null, doc: 'X-If-Unmodified-Since: the resource changed' },
  'batch-not-found': { status: 400, weave: WEAVE.generic, doc: 'unknown, foreign, expired or committed batch id' },
  'over-quota': { status: 403, weave: WEAVE.overQuota, doc: 'the user is over quota' },
  conflict: {
    status: 503,
    weave: WEAVE.generic,
    headers: { 'Retry-After': String(CONFLICT_RETRY_AFTER) },
    doc: 'another write to the same user won the race; retry later',
  },
  unavailable: {
    status: 503,
    weave: WEAVE.generic,
    headers: { 'Retry-After': String(CONFLICT_RETRY_AFTER) },
    doc: 'the storage cannot serve this user right now',
  },
  internal: { status: 500, weave: WEAVE.generic, doc: 'unexpected server error (details only in the server log)' },
};

/** Writes the catalog answer for any error; unknown errors are logged and become 500. */
export function writeError(ctx: Koa.Context, err: unknown): void {
  let code: SyncErrorCode = 'internal';
  if (isSyncError(err)) {
    code = err.code;
    if (err.lastModified !== undefined && (code === 'not-modified' || code === 'precondition-failed')) {
      ctx.set('X-Last-Modified', formatSeconds(err.lastModified));
    }
    if (err.retryAfter !== undefined) ctx.set('Retry-After', String(err.retryAfter));
    // Why a client was asked to retry goes into the request's log line (failover, contention).
    if (code === 'unavailable' || code === 'conflict') ctx.state.reason = err.message;
  } else {
    // A Couch (a node, the registry) that did not answer, or answered what the gateway cannot
    // use (a refused design document, an unexpected error), is a retry for the client, not a 500.
    if (err instanceof CouchError) code = 'unavailable';
    ctx.state.error = err;
  }
  ctx.state.errorKind = code;
  const entry = catalog[code];
  for (const [k, v] of Object.entries(entry.headers ?? {})) if (!ctx.response.get(k)) ctx.set(k, v);
  if (entry.weave === null) {
    // Body first: Koa turns a null body set after a non-empty status into 204.
    ctx.body = null;
    ctx.status = entry.status;
    ctx.remove('Content-Type');
  } else {
    ctx.status = entry.status;
    ctx.type = 'application/json';
    ctx.body = String(entry.weave);
  }
}

/** Catches everything below it; also turns an unmatched route into the protocol's 404. */
export const errorMiddleware: Koa.Middleware = async (ctx, next) => {
  try {
    await next();
    // The token endpoint, the accounts server and the admin API answer in their own formats.
    if (ctx.state.route === 'token' || ctx.state.route === 'admin' || ctx.state.route === 'accounts') return;
    if (ctx.status === 404 && ctx.body === undefined) writeError(ctx, new SyncError('not-found'));
    else if (ctx.status === 405) writeError(ctx, new SyncError('method-not-allowed'));
  } catch (err) {
    writeError(ctx, err);
  }
};

/** Token endpoint answers (spec 9.2): Cornice-style JSON bodies, even for errors. */
export interface TokenCatalogEntry {
  status: number;
  body: { status: string; errors: Array<{ location: string; name: string; description: string }> };
  headers?: Record<string, string>;
}

type TokenRow = [status: number, statusString: string, location: string, name: string, description: string];

/** Spec 9.2, row by row. `{detail}` is the error's detail (a reason, the version asked for). */
const TOKEN_ERRORS: Record<TokenErrorCode, TokenRow> = {
  unauthorized: [401, 'error', 'body', '', 'Unauthorized'],
  unsupported: [401, 'error', 'body', '', 'Unsupported'],
  'invalid-credentials': [401, 'invalid-credentials', 'body', '', 'Unauthorized'],
  'invalid-key-id': [401, 'invalid-key-id', 'header', 'X-KeyID', 'Missing X-KeyID header'],
  'invalid-generation': [401, 'invalid-generation', 'body', '', 'Unauthorized'],
  'invalid-keysChangedAt': [401, 'invalid-keysChangedAt', 'body', '', 'Unauthorized'],
  'invalid-client-state': [401, 'invalid-client-state', 'header', 'X-Client-State', 'Unacceptable client-state value {detail}'],
  'client-state-mismatch': [401, 'invalid-client-state', 'body', '', 'Unauthorized'],
  'bad-client-state': [400, 'error', 'header', 'X-Client-State', 'Invalid client state value'],
  'new-users-disabled': [403, 'new-users-disabled', 'body', '', 'Unauthorized'],
  'unsupported-application': [404, 'error', 'url', 'application', 'Unsupported application'],
  'unsupported-version': [404, 'error', 'url', '{detail}', 'Unsupported application version'],
  'method-not-allowed': [405, 'error', 'url', '', 'Method not allowed'],
  unavailable: [503, 'internal-error', 'internal', '', 'Server error'],
  internal: [500, 'internal-error', 'internal', '', 'Server error'],
};

export const TOKEN_RETRY_AFTER = 30;

export function tokenCatalog(code: TokenErrorCode, detail = ''): TokenCatalogEntry {
  const [status, statusString, location, name, description] = TOKEN_ERRORS[code];
  const fill = (v: string) => v.replace('{detail}', detail);
  const entry: TokenCatalogEntry = { status, body: { status: statusString, errors: [{ location, name: fill(name), description: fill(description) }] } };
  if (code === 'unavailable') entry.headers = { 'Retry-After': String(TOKEN_RETRY_AFTER) };
  if (code === 'method-not-allowed') entry.headers = { Allow: 'GET' };
  return entry;
}

/** Writes the token endpoint's answer for any error; unknown errors are logged and become 500. */
export function writeTokenError(ctx: Koa.Context, err: unknown): void {
  let entry: TokenCatalogEntry;
  if (err instanceof TokenError) {
    entry = tokenCatalog(err.code, err.detail);
    if (err.code === 'internal' || err.code === 'unavailable') ctx.state.error = err;
  } else {
    entry = tokenCatalog('internal');
    ctx.state.error = err;
  }
  ctx.state.errorKind = err instanceof TokenError ? err.code : 'internal';
  for (const [k, v] of Object.entries(entry.headers ?? {})) ctx.set(k, v);
  ctx.status = entry.status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(entry.body);
}

/** Accounts server answers: Mozilla's {code, errno, error, message} (Firefox reads errno). */
export const ACCOUNTS_ERRORS: Record<AccountsErrorCode, [status: number, errno: number, message: string]> = {
  'account-exists': [400, 101, 'Account already exists'],
  'unknown-account': [400, 102, 'Unknown account'],
  'incorrect-password': [400, 103, 'Incorrect password'],
  'invalid-parameter': [400, 107, 'Invalid parameter in request body'],
  'missing-parameter': [400, 108, 'Missing parameter in request body'],
  'invalid-signature': [401, 109, 'Invalid request signature'],
  'invalid-token': [401, 110, 'Invalid authentication token in request signature'],
  'too-large': [413, 113, 'Request body too large'],
  throttled: [429, 114, 'Client has sent too many requests'],
  'unknown-device': [400, 123, 'Unknown device'],
  'unknown-client': [400, 162, 'Unknown client_id'],
  'invalid-scopes': [400, 163, 'Requested scopes are not allowed'],
  'missing-pkce': [400, 169, 'Public clients require PKCE OAuth parameters'],
  'unknown-code': [400, 172, 'Unknown authorization code'],
  'code-mismatch': [400, 173, 'Incorrect code'],
  'expired-code': [400, 174, 'Expired authorization code'],
  'pkce-mismatch': [400, 175, 'Incorrect code_challenge'],
  'signup-disabled': [403, 202, 'Feature not enabled'],
  'not-found': [404, 999, 'Not Found'],
  unavailable: [503, 201, 'Service unavailable'],
  internal: [500, 999, 'Unspecified error'],
};

export const ACCOUNTS_RETRY_AFTER = 30;

/** Writes the accounts server's answer for any error; unknown errors are logged and become 500. */
export function writeAccountsError(ctx: Koa.Context, err: unknown): void {
  let code: AccountsErrorCode = 'internal';
  let extra: Record<string, string | number> = {};
  if (err instanceof AccountsError) {
    code = err.code;
    extra = err.extra;
    if (code === 'internal' || code === 'unavailable') ctx.state.error = err;
  } else if (err instanceof CouchError) {
    code = 'unavailable';
    ctx.state.error = err;
  } else if (isSyncError(err) && err.code === 'too-large') {
    code = 'too-large';
  } else {
    ctx.state.error = err;
  }
  ctx.state.errorKind = code;
  const [status, errno, message] = ACCOUNTS_ERRORS[code];
  if (code === 'unavailable') extra = { retryAfter: ACCOUNTS_RETRY_AFTER, ...extra };
  // Firefox holds every request back for retryAfter seconds (FxAccountsClient); the header says the same.
  if (typeof extra.retryAfter === 'number') ctx.set('Retry-After', String(extra.retryAfter));
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify({ code: status, errno, error: STATUS_CODES[status] ?? 'Error', message, ...extra });
}
