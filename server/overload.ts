// Overload never becomes a meltdown. At most `maxConcurrent` requests run at once; the rest wait
// in a queue run like Facebook's controlled-delay queue (CoDel applied to request queues): while
// it drains normally a request may wait up to `queueTimeoutMs`, but once the queue has not been
// empty for a whole interval (the server is given more than it can do) new syncs are turned
// away within milliseconds with 503 + Retry-After, so that the requests admitted stay fast
// instead of every request waiting seconds.
//
// Requests that start a sync (info/collections, info/configuration, a token) are the ones shed
// first: turning a client away there costs it nothing, while shedding a request in the middle of
// a sync wastes what it already uploaded and leaves its batch open. So the requests of syncs
// under way go first and keep the full wait; starters wait behind them, newest first while the
// queue stands, and only a tenth of the wait.
//
// While the queue stands (or above `backoffInflight`) every answer asks clients to back off
// (X-Weave-Backoff, which Firefox honours on any response). `maxInflight` bounds running plus
// waiting requests.
import type Koa from 'koa';
import { SyncError } from '../common/errors.js';

export interface OverloadLimits {
  /** Requests running at once; more wait in the queue (0: no limit and no queue). */
  maxConcurrent: number;
  /** Longest wait in the queue; for a request that starts a sync, a tenth of it while the queue stands. */
  queueTimeoutMs: number;
  /** Requests in flight (running and waiting) above which answers carry X-Weave-Backoff (0: never). */
  backoffInflight: number;
  /** Requests in flight above which new requests get 503 at once (0: never). */
  maxInflight: number;
  backoffSeconds: number;
}

/** How long the queue must stay non-empty before it counts as standing (CoDel's interval). */
const STANDING_AFTER_MS = 100;
/** How often waiting requests are checked for their timeout while any wait. */
const EXPIRE_EVERY_MS = 10;

/** A request that starts a sync is shed before one of a sync under way. */
export type Priority = 'starts-sync' | 'in-sync';

interface Waiter {
  at: number;
  admit: () => void;
  shed: () => void;
}

export class AdmissionQueue {
  running = 0;
  /** Requests shed so far (at arrival or after waiting). */
  shed = 0;
  /** Called for each request shed (the gateway's metrics). */
  onShed: (() => void) | undefined;
  /** Each in arrival order: the oldest at the front. */
  private readonly inSync: Waiter[] = [];
  private readonly starters: Waiter[] = [];
  private lastEmpty = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly limits: OverloadLimits) {}

  get waiting(): number {
    return this.inSync.length + this.starters.length;
  }

  get inflight(): number {
    return this.running + this.waiting;
  }

  /** The queue has not drained for a whole interval: more arrives than the server can do. */
  standing(now = performance.now()): boolean {
    return this.waiting > 0 && now - this.lastEmpty > STANDING_AFTER_MS;
  }

  /** Undefined when the request may run now; else a promise of its turn, rejected when shed. */
  enter(priority: Priority = 'in-sync'): Promise<void> | undefined {
    const { maxConcurrent, maxInflight } = this.limits;
    if (maxInflight > 0 && this.inflight >= maxInflight) throw this.refuse();
    if (maxConcurrent <= 0 || (this.running < maxConcurrent && this.waiting === 0)) {
      this.running++;
      return undefined;
    }
    const now = performance.now();
    if (this.waiting === 0) this.lastEmpty = now;
    return new Promise<void>((admit, reject) => {
      (priority === 'starts-sync' ? this.starters : this.inSync).push({ at: now, admit, shed: () => reject(this.refuse()) });
      this.timer ??= setInterval(() => this.expire(performance.now()), EXPIRE_EVERY_MS).unref();
    });
  }

  leave(): void {
    this.running--;
    const now = performance.now();
    this.expire(now);
    while (this.waiting > 0 && this.running < this.limits.maxConcurrent) {
      // Standing: the newest starter first, since the oldest are the ones about to be shed.
      const next = this.inSync.shift() ?? (this.standing(now) ? this.starters.pop() : this.starters.shift());
      this.running++;
      next!.admit();
      if (this.waiting === 0) this.lastEmpty = now;
    }
  }

  private expire(now: number): void {
    const { queueTimeoutMs } = this.limits;
    this.shedOlder(this.inSync, now - queueTimeoutMs);
    this.shedOlder(this.starters, now - (this.standing(now) ? queueTimeoutMs / 10 : queueTimeoutMs));
    if (this.waiting === 0) {
      this.lastEmpty = now;
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private shedOlder(queue: Waiter[], than: number): void {
    let late = 0;
    while (late < queue.length && queue[late]!.at < than) late++;
    for (const w of queue.splice(0, late)) w.shed();
  }

  private refuse(): SyncError {
    this.shed++;
    this.onShed?.();
    return new SyncError('unavailable', 'overloaded', { retryAfter: this.limits.backoffSeconds });
  }
}

/** Where a Sync client's sync begins: its token, then info/collections (or info/configuration). */
export function priorityOf(method: string, path: string): Priority {
  if (method === 'GET' && (path.endsWith('/info/collections') || path.endsWith('/info/configuration'))) return 'starts-sync';
  return path.startsWith('/1.0/') ? 'starts-sync' : 'in-sync';
}

export function overload(limits: OverloadLimits, queue = new AdmissionQueue(limits)): Koa.Middleware {
  const askToBackOff = (ctx: Koa.Context) => {
    if (queue.standing() || (limits.backoffInflight > 0 && queue.inflight > limits.backoffInflight)) {
      ctx.set('X-Weave-Backoff', String(limits.backoffSeconds));
    }
  };
  return async (ctx, next) => {
    if (ctx.path.startsWith('/__')) return next(); // health checks must answer even now
    try {
      await queue.enter(priorityOf(ctx.method, ctx.path));
    } catch (e) {
      ctx.set('X-Weave-Backoff', String(limits.backoffSeconds));
      // Turned away before routing: the log line and the metrics name it so.
      ctx.state.route ??= 'shed';
      throw e;
    }
    try {
      await next();
    } finally {
      // Koa writes the headers once the middleware has returned: the state at the end decides.
      askToBackOff(ctx);
      queue.leave();
    }
  };
}
