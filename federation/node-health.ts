// Watches every Couch node: a health check each interval, sooner once a check or a request
// failed. A node that fails `failuresToTrip` checks in a row trips this gateway's breaker
// (requests for its users stop going there at once) and is marked failed in the registry, so
// every gateway serves its users from their replicas. A failed node that answers
// `successesToRecover` checks in a row is marked reachable again; failback then merges its
// users before it is served (federation/failback.ts).
import type { Metrics } from '../common/metrics.js';
import type { Logger } from 'pino';
import { CouchClient, CouchError } from '../storage/couch/couch-client.js';
import type { NodeEndpoint } from './node-stores.js';
import { DEFAULT_NODE, type NodeDoc, type Registry } from './registry.js';

export interface NodeHealthOptions {
  intervalMs: number;
  /** Interval while a node is suspected (a failed check or request). */
  suspectIntervalMs: number;
  failuresToTrip: number;
  successesToRecover: number;
  checkTimeoutMs: number;
  /** The gateway's metrics: failovers this gateway declared. */
  metrics?: Metrics;
}

interface Breaker {
  failures: number;
  successes: number;
  tripped: boolean;
  lastCheck: number;
  checking: boolean;
}

export class NodeHealth {
  private readonly breakers = new Map<string, Breaker>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly endpoint: (node: string) => Promise<NodeEndpoint | undefined>,
    private readonly opts: NodeHealthOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(this.opts.suspectIntervalMs, this.opts.intervalMs) / 2));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** This gateway holds the node to be dead (its own checks), before or after the registry does. */
  isTripped(node: string): boolean {
    return this.breakers.get(node)?.tripped ?? false;
  }

  /** A request to the node failed as if it were dead: check it soon. */
  reportFailure(node: string): void {
    const b = this.breaker(node);
    b.lastCheck = 0;
  }

  /** Its own client per node with a short timeout, so a hung node counts as failed. */
  private async checkClient(node: string): Promise<CouchClient | undefined> {
    const e = await this.endpoint(node);
    if (!e) return undefined;
    const hit = this.clients.get(node);
    if (hit?.url === e.url) return hit.client;
    // One retry: a kept-alive connection the node closed just as the check was sent fails
    // without the node being dead; the retry opens a new one.
    const client = new CouchClient(e.url, { timeoutMs: this.opts.checkTimeoutMs, readRetries: 1 });
    this.clients.set(node, { url: e.url, client });
    return client;
  }
  private readonly clients = new Map<string, { url: string; client: CouchClient }>();

  private breaker(node: string): Breaker {
    let b = this.breakers.get(node);
    if (!b) {
      b = { failures: 0, successes: 0, tripped: false, lastCheck: 0, checking: false };
      this.breakers.set(node, b);
    }
    return b;
  }

  private watched(n: NodeDoc): boolean {
    return n.couchUrl !== undefined && n.name !== DEFAULT_NODE && !n.downed;
  }

  private tick(): void {
    const now = Date.now();
    for (const n of this.registry.allNodes()) {
      if (!this.watched(n)) continue;
      const b = this.breaker(n.name);
      const suspect = b.failures > 0 || b.tripped || n.failedAt !== undefined;
      const interval = suspect ? this.opts.suspectIntervalMs : this.opts.intervalMs;
      if (b.checking || now - b.lastCheck < interval) continue;
      b.checking = true;
      b.lastCheck = now;
      void this.check(n, b).finally(() => (b.checking = false));
    }
  }

  private async check(n: NodeDoc, b: Breaker): Promise<void> {
    let ok = false;
    // A refused or reset connection is a dead node; a slow answer may be an overloaded one,
    // which failing over would only move elsewhere: it counts half.
    let weight = 1;
    let outcome = 'ok';
    try {
      const client = await this.checkClient(n.name);
      if (!client) return;
      await client.request({ method: 'GET' });
      ok = true;
    } catch (e) {
      if (e instanceof CouchError && e.reason === 'timed out') weight = 0.5;
      outcome = weight < 1 ? 'timeout' : e instanceof CouchError && e.statusCode === 0 ? 'unreachable' : 'error';
    }
    this.opts.metrics?.healthChecks.inc({ node: n.name, outcome });
    if (ok) {
      b.failures = 0;
      b.successes++;
      const failed = this.registry.node(n.name)?.failedAt !== undefined;
      if ((b.tripped || failed) && b.successes >= this.opts.successesToRecover) {
        b.tripped = false;
        if (failed) await this.markRecovered(n.name);
      }
      return;
    }
    b.successes = 0;
    b.failures += weight;
    if (b.failures >= this.opts.failuresToTrip && !b.tripped) {
      b.tripped = true;
      this.logger.warn({ node: n.name, failures: b.failures }, 'node stopped answering: its users go to their replicas');
    }
    if (b.tripped && this.registry.node(n.name)?.failedAt === undefined) await this.markFailed(n.name);
  }

  private async markFailed(node: string): Promise<void> {
    let marked = false; // by this gateway (the change's last call is the one stored)
    await this.registry
      .updateNode(node, (n) => ((marked = n.failedAt === undefined) ? { ...n, failedAt: Date.now(), needsMerge: true } : undefined))
      .then(() => {
        if (!marked) return;
        this.opts.metrics?.failovers.inc({ node });
        return this.registry.recordEvent({ kind: 'failover', node });
      })
      .catch((err) => this.logger.warn({ err, node }, 'could not mark the node failed in the registry'));
  }

  private async markRecovered(node: string): Promise<void> {
    this.logger.info({ node }, 'node answers again: failback merges its users before it is served');
    await this.registry
      .updateNode(node, (n) => {
        if (n.failedAt === undefined) return undefined;
        const next = { ...n };
        delete next.failedAt;
        return next;
      })
      .catch((err) => this.logger.warn({ err, node }, 'could not mark the node recovered in the registry'));
  }

  /** For the admin API: what this gateway's monitor thinks of each node. */
  view(): Record<string, { tripped: boolean; failures: number }> {
    return Object.fromEntries([...this.breakers].map(([k, b]) => [k, { tripped: b.tripped, failures: b.failures }]));
  }
}
