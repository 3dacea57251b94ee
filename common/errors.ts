// Every failure the program can report to a Sync client has a code here. Storage and request
// parsing throw SyncError with one of these codes; server/errors.ts is the one place that
// turns a code into a status, a legacy Weave body and headers.

export type SyncErrorCode =
  | 'not-found' // unknown route or missing record
  | 'method-not-allowed'
  | 'unauthorized'
  | 'bad-request' // malformed query, header or path
  | 'invalid-bso' // malformed record or body (Weave 8)
  | 'size-limit' // declared sizes over the limits (Weave 17, 400)
  | 'too-large' // request body over max_request_bytes (413)
  | 'unsupported-media-type'
  | 'not-acceptable'
  | 'not-modified'
  | 'precondition-failed'
  | 'batch-not-found'
  | 'over-quota'
  | 'conflict' // another writer moved the timestamp first; the client retries
  | 'unavailable' // a store or node cannot serve now
  | 'internal';

export class SyncError extends Error {
  readonly code: SyncErrorCode;
  /** Timestamp (ms) of the resource, for 304/412 answers that carry X-Last-Modified. */
  readonly lastModified?: number;
  /** Seconds the client should wait, for 503 answers. */
  readonly retryAfter?: number;

  constructor(
    code: SyncErrorCode,
    detail?: string,
    extra: { lastModified?: number; retryAfter?: number; cause?: unknown } = {},
  ) {
    // A SyncError is an answer (304, 404, 412…), not a fault: server/errors.ts never logs it,
    // so its stack is not captured. Capturing it (async frames included) was about 2% of the
    // gateway's CPU on every 304 of info/collections.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(detail ?? code, extra.cause === undefined ? undefined : { cause: extra.cause });
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'SyncError';
    this.code = code;
    if (extra.lastModified !== undefined) this.lastModified = extra.lastModified;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
  }
}

export const isSyncError = (e: unknown): e is SyncError => e instanceof SyncError;

/**
 * Failures of the token endpoint (spec 9.2). They have their own body format (Cornice style)
 * and status strings that Firefox reads, so they are a separate set of codes.
 */
export type TokenErrorCode =
  | 'unauthorized' // no Authorization header, or one without a space
  | 'unsupported' // a scheme other than Bearer
  | 'invalid-credentials'
  | 'invalid-key-id' // no X-KeyID
  | 'invalid-generation'
  | 'invalid-keysChangedAt'
  | 'invalid-client-state' // refused by the user model; detail is the reason
  | 'client-state-mismatch' // X-Client-State differs from X-KeyID's
  | 'bad-client-state' // malformed X-Client-State (400)
  | 'new-users-disabled'
  | 'unsupported-application'
  | 'unsupported-version' // detail is the version asked for
  | 'method-not-allowed'
  | 'unavailable' // identity provider keys unreachable, registry down, no node with capacity
  | 'internal';

export class TokenError extends Error {
  constructor(
    readonly code: TokenErrorCode,
    /** Goes into the description where the spec puts a variable part there. */
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${code}: ${detail}` : code, options);
    this.name = 'TokenError';
  }
}

/**
 * Failures of the accounts server (the Firefox Accounts auth API that Firefox and the sign-in
 * page call). Firefox reads `errno` from a JSON body in Mozilla's format, and acts on some of
 * them (110: the session is gone; 114 with retryAfter: wait), so they are a set of their own.
 */
export type AccountsErrorCode =
  | 'account-exists'
  | 'unknown-account'
  | 'incorrect-password'
  | 'invalid-parameter'
  | 'missing-parameter'
  | 'invalid-signature' // a Hawk MAC or payload hash that does not match
  | 'invalid-token' // unknown, expired or revoked session, key-fetch or refresh token
  | 'too-large'
  | 'throttled' // too many failed attempts: retryAfter seconds
  | 'unknown-device'
  | 'unknown-client'
  | 'invalid-scopes'
  | 'missing-pkce'
  | 'unknown-code'
  | 'code-mismatch' // the code belongs to another client
  | 'expired-code'
  | 'pkce-mismatch'
  | 'signup-disabled'
  | 'not-found'
  | 'unavailable' // the registry cannot be read or written now
  | 'internal';

export class AccountsError extends Error {
  constructor(
    readonly code: AccountsErrorCode,
    detail?: string,
    /** Merged into the body, as Mozilla's server does (email, retryAfter, param…). */
    readonly extra: Record<string, string | number> = {},
    options?: { cause?: unknown },
  ) {
    super(detail ?? code, options);
    this.name = 'AccountsError';
  }
}
