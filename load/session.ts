// What a session of a mix runs on: a user's device, its credentials, and call(), which signs
// a request, times it under its kind and checks its status.
import { createHash } from 'node:crypto';
import { makeToken } from '../server/auth/tokenlib.js';
import type { Random } from './rng.js';
import { request, type Credentials, type Response } from './sync-client.js';

/** How the load tool gets storage credentials for its synthetic users. */
export type Auth =
  | { kind: 'secret'; secret: string }
  /** A token server: bearer and key id are sent for every user, "{user}" in them replaced by its number. */
  | { kind: 'token'; tokenUrl: string; bearer: string; keyId: string };

/** What a device of a user remembers between its syncs (the realistic mix's client state). */
export interface Device {
  id: string;
  /** X-Last-Modified of the last info/collections this device read: its next X-If-Modified-Since. */
  seen?: string;
  /** The newest modified time it holds of each collection, as the server wrote it. */
  collections: Record<string, string>;
  busy: boolean;
}

export interface LoadUser {
  /** 1..users; the uid, with secret auth. */
  n: number;
  credentials?: Credentials;
  devices: Device[];
}

/** A request's outcome as the statistics count it. */
export interface Outcome {
  kind: string;
  status: number;
  ms: number;
  /** The status was one the mix expects. */
  ok: boolean;
  /** 503 or 429: the server shed it. */
  shed: boolean;
  /** The response asked clients to back off (X-Weave-Backoff, Retry-After). */
  backoff: boolean;
  bytesOut: number;
  bytesIn: number;
  /** performance.now() when it was sent and when it was answered. */
  start: number;
  at: number;
}

/** The session stops here: an unexpected answer, or one that a Sync client gives up on. */
export class SessionAborted extends Error {}

export interface SessionDeps {
  base: URL;
  auth: Auth;
  record(o: Outcome): void;
  timeoutMs: number;
  /** The server's clock less ours, in seconds, as its X-Weave-Timestamp last said: one per server. */
  clock: { skewSeconds: number };
}

export class Session {
  constructor(
    readonly deps: SessionDeps,
    readonly user: LoadUser,
    readonly device: Device,
    readonly rng: Random,
  ) {}

  /** The server's clock, in seconds, as its X-Weave-Timestamp last said (ours until then). */
  now(): number {
    return Date.now() / 1000 + this.deps.clock.skewSeconds;
  }

  /** Storage credentials, fetched again when they are about to expire or were refused. */
  async credentials(force = false): Promise<Credentials> {
    const c = this.user.credentials;
    if (c && !force && c.expires - 60 > this.now()) return c;
    this.user.credentials = await this.exchange();
    return this.user.credentials;
  }

  /** A new token: minted with the secret, or exchanged at the token server (timed as a request). */
  async exchange(): Promise<Credentials> {
    const { auth, base } = this.deps;
    const uid = this.user.n;
    if (auth.kind === 'secret') {
      const hex = (s: string) => createHash('sha256').update(`${uid}:${s}`).digest('hex');
      // The same claims as Mozilla's load test mints (tokenlib, with mock FxA ids).
      const t = makeToken(auth.secret, {
        uid,
        node: base.origin,
        expires: Math.floor(this.now()) + 3600,
        fxa_uid: hex('fxa_uid'),
        fxa_kid: hex('fxa_kid').slice(0, 32),
        hashed_fxa_uid: hex('hashed_fxa_uid'),
      });
      return { id: t.id, key: t.key, api_endpoint: `${base.origin}${base.pathname.replace(/\/$/, '')}/1.5/${uid}`, expires: t.claims.expires };
    }
    const fill = (s: string) => s.replaceAll('{user}', String(uid));
    const res = await this.send('token exchange', new URL(auth.tokenUrl), 'GET', [200], {
      headers: { Authorization: `Bearer ${fill(auth.bearer)}`, 'X-KeyID': fill(auth.keyId) },
    });
    const body = JSON.parse(res.text) as { id: string; key: string; api_endpoint: string; duration: number };
    return { id: body.id, key: body.key, api_endpoint: body.api_endpoint, expires: this.now() + body.duration };
  }

  /**
   * A storage request (path after the user's endpoint, query included). A 401 is answered as
   * Firefox does: new credentials, the request once more.
   */
  async call(kind: string, method: string, path: string, expect: number[], opts: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Response> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { ...opts.headers };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    for (let attempt = 0; ; attempt++) {
      const credentials = await this.credentials(attempt > 0);
      const url = new URL(credentials.api_endpoint + path);
      const res = await this.send(kind, url, method, attempt === 0 ? [...expect, 401] : expect, { headers, body, credentials });
      if (res.status !== 401 || expect.includes(401)) return res;
      if (attempt > 0) throw new SessionAborted(`${kind}: 401 twice`);
    }
  }

  private async send(kind: string, url: URL, method: string, expect: number[], opts: { headers?: Record<string, string>; body?: string; credentials?: Credentials }): Promise<Response> {
    let res: Response;
    const start = performance.now();
    try {
      res = await request(url, method, { ...opts, timeoutMs: this.deps.timeoutMs });
    } catch (e) {
      this.deps.record({ kind, status: 0, ms: performance.now() - start, ok: false, shed: false, backoff: false, bytesOut: 0, bytesIn: 0, start, at: performance.now() });
      throw new SessionAborted(`${kind}: ${(e as Error).message}`);
    }
    const ts = Number(res.headers['x-weave-timestamp']);
    if (Number.isFinite(ts) && ts > 0) this.deps.clock.skewSeconds = ts - Date.now() / 1000;
    const ok = expect.includes(res.status);
    const shed = res.status === 503 || res.status === 429;
    const backoff = res.headers['x-weave-backoff'] !== undefined || res.headers['retry-after'] !== undefined;
    this.deps.record({ kind, status: res.status, ms: res.ms, ok, shed, backoff, bytesOut: res.bytesOut, bytesIn: res.bytesIn, start, at: performance.now() });
    if (!ok) throw new SessionAborted(`${kind}: ${res.status} ${res.text.slice(0, 200)}`);
    return res;
  }
}
