// The one outbound Couch client of the program. Every request goes through request(): a
// timeout on each, retries only for reads (a retried write could apply twice; the engine's
// compare-and-swap handles write conflicts instead), connection reuse by Node's fetch pool
// (keep-alive), and errors reduced to status, error and reason, with the credentials of
// COUCH_URL scrubbed from every message that could reach a log.
import nano from 'nano';
import { couchOutcome, type Metrics } from '../../common/metrics.js';

export class CouchError extends Error {
  constructor(
    /** HTTP status; 0 when the node could not be reached or timed out. */
    readonly statusCode: number,
    readonly error: string,
    readonly reason: string,
  ) {
    super(`couch ${statusCode} ${error}: ${reason}`);
    this.name = 'CouchError';
  }
}

/** A Couch that could not be reached, timed out or failed (5xx): a retry later, not a bug. */
export function couchUnavailable(err: unknown): err is CouchError {
  return err instanceof CouchError && (err.statusCode === 0 || err.statusCode >= 500);
}

export interface CouchRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  db?: string;
  doc?: string;
  path?: string;
  qs?: Record<string, unknown>;
  body?: unknown;
  /** Extra attempts for this read instead of the client's readRetries. */
  retries?: number;
  /** Abandons the request (a feed being stopped). */
  signal?: AbortSignal;
}

export interface CouchClientOptions {
  timeoutMs: number;
  /** Extra attempts for reads after a network error, timeout or 5xx. */
  readRetries: number;
  /** Counts each call on the gateway's metrics, labelled with this node's name. */
  metrics?: { metrics: Metrics; node: string };
}

/** URL without user and password, for messages and logs. */
export function scrubUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '[unparsable url]';
  }
}

export class CouchClient {
  private readonly server: nano.ServerScope;
  readonly publicUrl: string;
  readonly user: string | undefined;

  constructor(
    url: string,
    private readonly opts: CouchClientOptions,
  ) {
    this.server = nano({ url });
    this.publicUrl = scrubUrl(url);
    const u = new URL(url);
    this.user = u.username ? decodeURIComponent(u.username) : undefined;
  }

  /** How long a request may take before it is abandoned. */
  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  async request<T>(req: CouchRequest): Promise<T> {
    const { retries, signal, ...couchReq } = req;
    const attempts = req.method === 'GET' || req.method === 'HEAD' ? 1 + (retries ?? this.opts.readRetries) : 1;
    let last: CouchError | undefined;
    const counted = this.opts.metrics;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        counted?.metrics.couchRetries.inc({ node: counted.node });
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
      const started = counted ? performance.now() : 0;
      // A timer cleared on the answer, not AbortSignal.timeout(): each of those fires anyway
      // when its time is up (an exception object and an abort event per request, 15 s later),
      // which measured 35–71 ms of CPU per second on a gateway that had just been busy.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new DOMException('timed out', 'TimeoutError')), this.opts.timeoutMs);
      const cancel = () => abort.abort(signal?.reason);
      signal?.addEventListener('abort', cancel, { once: true });
      try {
        const answer = (await this.server.relax({
          ...couchReq,
          method: req.method.toLowerCase(),
          signal: abort.signal,
        } as nano.RequestOptions)) as T;
        if (counted) this.count(counted, req.method, 200, started, false);
        return answer;
      } catch (e) {
        last = this.toCouchError(e);
        const final = (last.statusCode !== 0 && last.statusCode < 500) || attempt === attempts - 1;
        if (counted) this.count(counted, req.method, last.statusCode, started, final);
        if (last.statusCode !== 0 && last.statusCode < 500) throw last;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', cancel);
      }
    }
    throw last as CouchError;
  }

  /**
   * One attempt on the metrics. A 404 or 409 is an answer the engine expects (a document not
   * there yet, a lost compare-and-swap), so only 5xx and unreachable count as errors.
   */
  private count(m: { metrics: Metrics; node: string }, method: string, status: number, started: number, final: boolean): void {
    const outcome = couchOutcome(status);
    m.metrics.couchRequests.inc({ node: m.node, method, outcome });
    m.metrics.couchDuration.observe({ node: m.node, method }, (performance.now() - started) / 1000);
    if (final && (outcome === 'server_error' || outcome === 'unreachable')) m.metrics.couchErrors.inc({ node: m.node, outcome });
  }

  private toCouchError(e: unknown): CouchError {
    const err = e as { statusCode?: number; error?: string; reason?: string; message?: string; name?: string };
    if (typeof err.statusCode === 'number' && err.statusCode > 0) {
      return new CouchError(err.statusCode, String(err.error ?? 'error'), this.scrub(String(err.reason ?? err.message ?? '')));
    }
    // nano wraps network failures in a plain Error whose message carries the cause.
    const message = String(err.message ?? 'unreachable');
    const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError' || /aborted due to timeout|timeout/i.test(message);
    const reason = timedOut ? 'timed out' : message.replace(/^error happened in your connection\. Reason: /, '');
    return new CouchError(0, 'unreachable', this.scrub(reason));
  }

  private scrub(text: string): string {
    return text.replace(/\/\/[^/@\s]*@/g, '//');
  }
}
